"""The user a pod of the chart runs the image as, and the user the image declares.

Kubernetes takes each of runAsUser, runAsGroup and runAsNonRoot from the container's
securityContext when it is set there, else from the pod's; readOnlyRootFilesystem exists on the
container only. The image's USER is `uid[:gid]`, numeric here (runAsNonRoot needs a number).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.helm import Manifest, container, workload


@dataclass(frozen=True)
class RunAs:
    """Who the exporter's container runs as, and whether its root filesystem is read-only."""

    user: int | None
    group: int | None
    non_root: bool | None
    read_only_root: bool | None


def chart_run_as(manifests: list[Manifest]) -> RunAs:
    """The effective settings of the exporter container of a rendered chart."""
    pod: dict[str, Any] = (
        workload(manifests)["spec"]["template"]["spec"].get("securityContext") or {}
    )
    own: dict[str, Any] = container(manifests).get("securityContext") or {}

    def pick(key: str) -> Any:
        return own[key] if key in own else pod.get(key)

    return RunAs(
        user=pick("runAsUser"),
        group=pick("runAsGroup"),
        non_root=pick("runAsNonRoot"),
        read_only_root=own.get("readOnlyRootFilesystem"),
    )


def image_user(user: str) -> tuple[int, int | None]:
    """`65532:65532` -> (65532, 65532); `65532` -> (65532, None). Names are refused."""
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), f"the image's USER must be numeric, got {user!r}"
    assert not gid or gid.isdigit(), f"the image's group must be numeric, got {user!r}"
    return int(uid), int(gid) if gid else None


def agree(chart: RunAs, user: str) -> list[str]:
    """What differs between the chart's settings and an image USER (empty when they agree)."""
    uid, gid = image_user(user)
    problems = []
    if chart.user != uid:
        problems.append(f"runAsUser {chart.user} != image user {uid}")
    if gid is not None and chart.group != gid:
        problems.append(f"runAsGroup {chart.group} != image group {gid}")
    if chart.non_root is not True or uid == 0:
        problems.append(f"runAsNonRoot {chart.non_root} with image user {uid}")
    if chart.read_only_root is not True:
        problems.append(f"readOnlyRootFilesystem {chart.read_only_root}")
    return problems
