"""The chart runs the built image as the user the image declares, on a read-only root."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.image.podman import Podman
from tests.support.helm import Helm, ci_values_files, find_helm, parse_manifests
from tests.support.security import RunAs, agree, chart_run_as

VALUE_SETS = [None, *ci_values_files()]


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = find_helm()
    if binary is None:
        pytest.skip("helm not found on PATH or in .tools/helm (run `make setup`)")
    return Helm(binary=binary, home=tmp_path_factory.mktemp("helm-home"))


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.name if p else "default")
def test_chart_security_context_matches_image_user(
    podman: Podman, helm: Helm, values: Path | None
) -> None:
    """runAsUser/runAsGroup are the image's USER, runAsNonRoot and readOnlyRootFilesystem hold."""
    user = podman.inspect_image()["Config"]["User"]
    result = helm.template(values=[values] if values else [])
    assert result.returncode == 0, result.stderr
    assert agree(chart_run_as(parse_manifests(result.stdout)), user) == []


def test_agree_names_each_difference() -> None:
    """The comparison is not vacuous: each mismatch is reported."""
    assert agree(RunAs(65532, 65532, True, True), "65532:65532") == []
    assert agree(RunAs(1000, 65532, True, True), "65532:65532") == [
        "runAsUser 1000 != image user 65532"
    ]
    assert agree(RunAs(65532, 0, None, False), "65532:65532") == [
        "runAsGroup 0 != image group 65532",
        "runAsNonRoot None with image user 65532",
        "readOnlyRootFilesystem False",
    ]
    with pytest.raises(AssertionError, match="numeric"):
        agree(RunAs(65532, 65532, True, True), "nobody")
