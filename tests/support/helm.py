"""Runs the real helm binary against the chart and parses what it renders.

helm comes from PATH or from `<repo>/.tools/helm/helm` (installed by `make setup`). It gets its own
HOME and XDG directories, so it neither reads nor writes the user's helm configuration.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "etcd-latency-exporter"
CI_DIR = CHART_DIR / "ci"
RELEASE = "etcd-latency-exporter"
NAMESPACE = "monitoring"
TIMEOUT = 60

Manifest = dict[str, Any]
Render = Callable[[str], list[Manifest]]  # the `render` fixture: values set name → manifests
RenderText = Callable[[str], str]  # the `render_text` fixture: values set name → helm's output


def find_helm() -> Path | None:
    """helm on PATH, else the copy `make setup` installs under .tools/."""
    found = shutil.which("helm")
    if found:
        return Path(found)
    local = REPO_ROOT / ".tools" / "helm" / "helm"
    return local if local.is_file() and os.access(local, os.X_OK) else None


@dataclass(frozen=True)
class Result:
    """Exit code and output of one helm call."""

    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Helm:
    """A helm binary with a private, writable home."""

    binary: Path
    home: Path

    def env(self) -> dict[str, str]:
        """PATH and locale of the caller; HOME and XDG dirs under `home`."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HELM_", "XDG_"))}
        env["HOME"] = str(self.home)
        for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
            env[name] = str(self.home / name.lower())
        env["KUBECONFIG"] = str(self.home / "no-kubeconfig")
        return env

    def run(self, args: Sequence[str]) -> Result:
        """Run helm with `args`; never raises on a non-zero exit."""
        proc = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=TIMEOUT,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def template(
        self,
        *,
        values: Iterable[Path] = (),
        sets: Iterable[str] = (),
        extra: Sequence[str] = (),
        chart: Path = CHART_DIR,
        namespace: str = NAMESPACE,
    ) -> Result:
        """`helm template` of the chart with values files and --set pairs."""
        args = ["template", RELEASE, str(chart), "--namespace", namespace]
        for path in values:
            args += ["--values", str(path)]
        for pair in sets:
            args += ["--set", pair]
        return self.run([*args, *extra])


def parse_manifests(text: str) -> list[Manifest]:
    """Every non-empty YAML document of a `helm template` output."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(manifests: Iterable[Manifest], kind: str) -> list[Manifest]:
    """The manifests of one kind."""
    return [m for m in manifests if m.get("kind") == kind]


def one(manifests: Iterable[Manifest], kind: str) -> Manifest:
    """The single manifest of `kind`; fails when there is none or more than one."""
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def workload(manifests: Iterable[Manifest]) -> Manifest:
    """The Deployment or, when sharded, the StatefulSet."""
    found = [m for m in manifests if m.get("kind") in ("Deployment", "StatefulSet")]
    assert len(found) == 1, f"expected one workload, found {[m['kind'] for m in found]}"
    return found[0]


def container(manifests: Iterable[Manifest]) -> dict[str, Any]:
    """The exporter container of the workload."""
    containers = workload(manifests)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["exporter"]
    result: dict[str, Any] = containers[0]
    return result


def gardener_preset_args(
    helm: Helm, *, source: str = "etcd", sets: Iterable[str] = ()
) -> list[str]:
    """The exporter's arguments as the chart's Gardener preset renders them, without `run`.

    Released into namespace `garden` with `gardener.enabled=true`, `scrape.source=<source>` and
    any further `--set` pairs; raises RuntimeError when helm fails. Meant for tests that run the
    daemon with exactly the chart's flags (`exporter.cli.load(RunSettings, "run", args)`).
    """
    result = helm.template(
        sets=["gardener.enabled=true", f"scrape.source={source}", *sets], namespace="garden"
    )
    if result.returncode != 0:
        raise RuntimeError(f"helm template failed: {result.stderr}")
    args: list[str] = container(parse_manifests(result.stdout))["args"]
    assert args[0] == "run", args
    return args[1:]


def ci_values_files() -> list[Path]:
    """The chart's ci/*-values.yaml files (chart-testing's convention)."""
    return sorted(CI_DIR.glob("*-values.yaml"))


# Every values set the chart tests render: `default` (values.yaml alone) and each ci/ file's name.
VALUE_SETS = ["default", *(p.name.removesuffix("-values.yaml") for p in ci_values_files())]


def values_files(name: str) -> list[Path]:
    """`default` renders values.yaml alone; any other name is ci/<name>-values.yaml."""
    return [] if name == "default" else [CI_DIR / f"{name}-values.yaml"]


def installed_args(home: Path, *, source: str, local: Sequence[str]) -> list[str]:
    """The Gardener preset's exporter flags exactly as the chart renders them, for a test process.

    Only what says where the process runs and how fast the test's clock goes is replaced: the
    listen address (the test picks a free port) and every flag named in `local` (e.g. the
    kubeconfig instead of the in-cluster config, a one-second scrape interval) — each rendered flag
    whose name is in `local` is dropped and `local` appended. Raises RuntimeError without helm.
    """
    binary = find_helm()
    if binary is None:
        raise RuntimeError("helm not found on PATH or in .tools/helm (run `make setup`)")
    rendered = gardener_preset_args(Helm(binary=binary, home=home), source=source)
    replaced = {flag.split("=", 1)[0] for flag in local} | {"--web.listen-address"}
    kept = [flag for flag in rendered if flag.split("=", 1)[0] not in replaced]
    return [*kept, *local]
