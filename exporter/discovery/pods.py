"""Pod JSON → `PodInfo`: the few fields discovery needs, read defensively. Pure.

The data volume is the claim the etcd container mounts at its data directory: the mount whose
path is the `--data-dir` argument (or `/var/etcd/data`, Gardener's) or a parent of it, with the
longest such path winning; `--kubernetes.data-volume` names the pod volume instead; failing both,
the pod's only PVC volume. Generic ephemeral volumes count as claims named `<pod>-<volume>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.kube.containers import ContainerStatus, container_status, rfc3339
from exporter.kube.objects import JSON, as_dict, as_list

DEFAULT_DATA_DIRS: tuple[str, ...] = ("/var/etcd/data",)


@dataclass(frozen=True, slots=True)
class PodInfo:
    """What discovery keeps of a pod."""

    namespace: str
    name: str
    uid: str
    labels: tuple[tuple[str, str], ...]
    owners: tuple[tuple[str, str], ...]  # (kind, name)
    pod_ip: str
    has_container: bool
    claim: str  # PVC name of the data volume, "" if none
    # Secrets of druid's TLS volumes (`etcd-client-tls`, `etcd-ca`), "" if none: where the
    # client certificate and CA are when no Etcd resource names them
    client_tls_secret: str = ""
    ca_secret: str = ""
    # the etcd container's full status (restarts, back-off, last exit) and the pod's start time
    container: ContainerStatus = field(default_factory=ContainerStatus)
    started_at: float | None = None
    node_name: str = ""  # spec.nodeName, "" until scheduled

    @property
    def key(self) -> str:
        """`namespace/name`, the target key."""
        return f"{self.namespace}/{self.name}"

    @property
    def label_map(self) -> dict[str, str]:
        """Labels as a dict."""
        return dict(self.labels)


def _str_map(value: object) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in as_dict(value).items()))


def _container(spec: JSON, name: str) -> JSON:
    for c in as_list(spec.get("containers")):
        if isinstance(c, dict) and c.get("name") == name:
            return c
    return {}


def _data_dirs(container: JSON) -> list[str]:
    args = [str(a) for a in as_list(container.get("command")) + as_list(container.get("args"))]
    dirs = []
    for i, arg in enumerate(args):
        if arg.startswith("--data-dir="):
            dirs.append(arg.split("=", 1)[1])
        elif arg == "--data-dir" and i + 1 < len(args):
            dirs.append(args[i + 1])
    return dirs + list(DEFAULT_DATA_DIRS)


def _claim_of(volume: JSON, pod_name: str) -> str:
    pvc = as_dict(volume.get("persistentVolumeClaim"))
    if pvc.get("claimName"):
        return str(pvc["claimName"])
    if "ephemeral" in volume:
        return f"{pod_name}-{volume.get('name', '')}"
    return ""


def data_claim(spec: JSON, *, pod_name: str, container: str, data_volume: str | None) -> str:
    """The PVC holding etcd's data (see the module docstring), "" when there is none."""
    volumes = {str(v.get("name")): v for v in as_list(spec.get("volumes")) if isinstance(v, dict)}
    if data_volume:
        return _claim_of(volumes.get(data_volume, {}), pod_name)
    etcd = _container(spec, container)
    best, best_len = "", -1
    for data_dir in _data_dirs(etcd):
        for mount in as_list(etcd.get("volumeMounts")):
            path = str(as_dict(mount).get("mountPath", "")).rstrip("/") or "/"
            inside = data_dir == path or data_dir.startswith(path.rstrip("/") + "/")
            claim = _claim_of(volumes.get(str(as_dict(mount).get("name")), {}), pod_name)
            if inside and claim and len(path) > best_len:
                best, best_len = claim, len(path)
        if best:
            return best
    claims = {c for c in (_claim_of(v, pod_name) for v in volumes.values()) if c}
    return claims.pop() if len(claims) == 1 else ""


CLIENT_TLS_VOLUME = "etcd-client-tls"
CA_VOLUME = "etcd-ca"


def secret_volume(spec: JSON, volume: str) -> str:
    """The Secret name of the pod volume `volume`, "" when it is not a Secret volume."""
    for v in as_list(spec.get("volumes")):
        if isinstance(v, dict) and v.get("name") == volume:
            name = as_dict(v.get("secret")).get("secretName")
            return name if isinstance(name, str) else ""
    return ""


def pod_info(raw: JSON, *, container: str, data_volume: str | None = None) -> PodInfo:
    """Read a pod object (as JSON) into a PodInfo; missing fields become empty values."""
    meta, spec, status = (
        as_dict(raw.get("metadata")),
        as_dict(raw.get("spec")),
        as_dict(raw.get("status")),
    )
    owners = tuple(
        (str(o.get("kind", "")), str(o.get("name", "")))
        for o in as_list(meta.get("ownerReferences"))
        if isinstance(o, dict)
    )
    name = str(meta.get("name", ""))
    return PodInfo(
        namespace=str(meta.get("namespace", "")),
        name=name,
        uid=str(meta.get("uid", "")),
        labels=_str_map(meta.get("labels")),
        owners=owners,
        pod_ip=str(status.get("podIP") or ""),
        has_container=bool(_container(spec, container)),
        claim=data_claim(spec, pod_name=name, container=container, data_volume=data_volume),
        client_tls_secret=secret_volume(spec, CLIENT_TLS_VOLUME),
        ca_secret=secret_volume(spec, CA_VOLUME),
        container=container_status(raw, container),
        started_at=rfc3339(status.get("startTime")),
        node_name=str(spec.get("nodeName") or ""),
    )
