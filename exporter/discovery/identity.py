"""Who an etcd pod is: project and shoot from the namespace, the etcd role from labels.

Pure functions over plain values; no Kubernetes client objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

SHOOT_PREFIX = "shoot--"

# Labels that name the Etcd resource a pod belongs to, most specific first: etcd-druid sets
# `app.kubernetes.io/part-of` (and `app.kubernetes.io/name`) to the Etcd name; StatefulSets made
# by older Gardener versions carry `instance: etcd-main` next to `app: etcd-statefulset`.
ROLE_LABELS: tuple[str, ...] = (
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/name",
    "instance",
)

_ORDINAL = re.compile(r"-\d+$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def project_and_shoot(namespace: str) -> tuple[str, str]:
    """`shoot--<project>--<shoot>` → (project, shoot); ("", "") for any other namespace.

    Gardener forbids `--` in project and shoot names alike (gardener
    `pkg/api/core/validation/utils.go`), so the first `--` after the prefix separates them; a
    name that broke the rule would still split there (`shoot--p1--a--b`: project `p1`, shoot
    `a--b`).
    """
    if not namespace.startswith(SHOOT_PREFIX):
        return "", ""
    project, sep, shoot = namespace[len(SHOOT_PREFIX) :].partition("--")
    if not sep or not project or not shoot:
        return "", ""
    return project, shoot


def etcd_role(
    *,
    labels: Mapping[str, str],
    owner_names: Iterable[tuple[str, str]] = (),
    pod_name: str = "",
) -> str:
    """The Etcd resource's name (`etcd-main`, `etcd-events`) of a pod.

    From the role labels; else the owning StatefulSet's name (druid names it after the Etcd);
    else the pod name without its `-<ordinal>`. `owner_names` holds (kind, name) pairs.
    """
    for key in ROLE_LABELS:
        value = labels.get(key, "")
        if value and _NAME.match(value) and value != "etcd":
            return value
    for kind, name in owner_names:
        if kind == "StatefulSet" and name:
            return name
    return _ORDINAL.sub("", pod_name)
