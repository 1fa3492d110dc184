"""Schema-complete API objects shaped like a Gardener seed's etcd pods, volumes and classes.

Every required field of the client's models is present, so `kubernetes.aio` deserialises them
(tests/component/test_kube_emulator.py checks that).
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

JSON = dict[str, Any]

ETCD_IMAGE = "europe-docker.pkg.dev/gardener-project/releases/gardener/etcd-wrapper:v0.6.2"
BACKUP_IMAGE = "europe-docker.pkg.dev/gardener-project/releases/gardener/etcdbrctl:v0.30.1"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def rfc3339(ts: float | None = None) -> str:
    """Seconds-precision UTC time as the API server writes metav1.Time."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


def meta(name: str, namespace: str | None = None, **extra: Any) -> JSON:
    """ObjectMeta with uid and creation time."""
    out: JSON = {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": rfc3339()}
    if namespace is not None:
        out["namespace"] = namespace
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def druid_labels(etcd: str) -> dict[str, str]:
    """Labels etcd-druid puts on the pods of an Etcd."""
    return {
        "app.kubernetes.io/component": "etcd-statefulset",
        "app.kubernetes.io/managed-by": "etcd-druid",
        "app.kubernetes.io/name": etcd,
        "app.kubernetes.io/part-of": etcd,
    }


def container_status(name: str, *, image: str, ready: bool, restarts: int = 0) -> JSON:
    """A running container's status."""
    return {
        "name": name,
        "image": image,
        "imageID": image + "@sha256:" + "0" * 64,
        "containerID": "containerd://" + uuid.uuid4().hex,
        "ready": ready,
        "started": True,
        "restartCount": restarts,
        "state": {"running": {"startedAt": rfc3339()}},
        "lastState": {},
    }


def etcd_pod(
    *,
    namespace: str,
    name: str,
    etcd: str,
    pod_ip: str,
    claim: str,
    labels: dict[str, str] | None = None,
    ready: bool = True,
    data_dir: str = "/var/etcd/data",
) -> JSON:
    """A druid-style etcd pod: containers etcd + backup-restore, the PVC mounted at the data dir."""
    etcd_container = {
        "name": "etcd",
        "image": ETCD_IMAGE,
        "args": ["start-etcd", f"--backup-restore-host-port={etcd}-local:8080"],
        "ports": [{"containerPort": 2379, "name": "client", "protocol": "TCP"}],
        "volumeMounts": [
            {"name": etcd, "mountPath": data_dir},
            {"name": "etcd-config-file", "mountPath": "/var/etcd/config/"},
        ],
    }
    backup = {
        "name": "backup-restore",
        "image": BACKUP_IMAGE,
        "args": ["server", f"--data-dir={data_dir}/new.etcd"],
        "volumeMounts": [{"name": etcd, "mountPath": data_dir}],
    }
    owner = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": etcd,
        "uid": str(uuid.uuid4()),
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(
            name,
            namespace,
            labels=labels if labels is not None else druid_labels(etcd),
            ownerReferences=[owner],
        ),
        "spec": {
            "containers": [etcd_container, backup],
            "volumes": [
                {"name": etcd, "persistentVolumeClaim": {"claimName": claim}},
                {"name": "etcd-config-file", "configMap": {"name": f"{etcd}-config"}},
            ],
            "nodeName": "node-1",
            "restartPolicy": "Always",
        },
        "status": {
            "phase": "Running",
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "hostIP": "10.250.0.1",
            "startTime": rfc3339(),
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False"},
                {"type": "ContainersReady", "status": "True" if ready else "False"},
            ],
            "containerStatuses": [
                container_status("etcd", image=ETCD_IMAGE, ready=ready),
                container_status("backup-restore", image=BACKUP_IMAGE, ready=True),
            ],
        },
    }


def pvc(*, namespace: str, name: str, volume: str, storage_class: str | None) -> JSON:
    """A bound claim; `storage_class=None` leaves storageClassName unset (the incident)."""
    spec: JSON = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "25Gi"}},
        "volumeName": volume,
        "volumeMode": "Filesystem",
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta(name, namespace),
        "spec": spec,
        "status": {
            "phase": "Bound",
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "25Gi"},
        },
    }


def pv(*, name: str, claim_namespace: str, claim: str, storage_class: str, driver: str) -> JSON:
    """A CSI volume bound to a claim."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": meta(name),
        "spec": {
            "capacity": {"storage": "25Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": storage_class,
            "volumeMode": "Filesystem",
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": claim_namespace,
                "name": claim,
            },
            "csi": {"driver": driver, "volumeHandle": f"projects/p/zones/z/disks/{name}"},
        },
        "status": {"phase": "Bound"},
    }


def storage_class(
    *, name: str, provisioner: str, parameters: dict[str, str], default: bool = False
) -> JSON:
    """A StorageClass; `default=True` sets the is-default-class annotation."""
    annotations = {DEFAULT_CLASS_ANNOTATION: "true"} if default else None
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": meta(name, annotations=annotations),
        "provisioner": provisioner,
        "parameters": dict(parameters),
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }


def secret(*, namespace: str, name: str, data: dict[str, str]) -> JSON:
    """An Opaque secret; values are given as text and stored base64-encoded."""
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(name, namespace),
        "type": "Opaque",
        "data": encoded,
    }


def etcd_resource(*, namespace: str, name: str, storage_class: str | None) -> JSON:
    """A druid.gardener.cloud/v1alpha1 Etcd."""
    spec: JSON = {"replicas": 1, "storageCapacity": "25Gi", "labels": druid_labels(name)}
    if storage_class is not None:
        spec["storageClass"] = storage_class
    return {
        "apiVersion": "druid.gardener.cloud/v1alpha1",
        "kind": "Etcd",
        "metadata": meta(name, namespace),
        "spec": spec,
        "status": {"ready": True},
    }
