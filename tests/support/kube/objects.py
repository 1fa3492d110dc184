"""Schema-complete API objects shaped like a Gardener seed's etcd pods, volumes, classes, Etcd
resources and Secrets, as Gardener, etcd-druid and etcd-wrapper make them.

Every required field of the client's models is present, so `kubernetes.aio` deserialises them
(tests/component/test_kube_emulator.py checks that). What a real seed has and these follow:

- pods carry druid's labels and Gardener's (`app`, `role`, `gardener.cloud/role`,
  `networking.gardener.cloud/to-*`); the etcd container runs etcd-wrapper's `start-etcd` with
  `--etcd-server-name=<etcd>-local`; the data volume is `main-etcd` (etcd-main) or the Etcd's name
  (etcd-events), claims `<volume>-<etcd>-<ordinal>`; Secret volumes `etcd-ca`, `etcd-server-tls`,
  `etcd-client-tls` and `backup-restore-*` name the hash-suffixed Secrets.
- Secrets of one namespace's etcd PKI (`EtcdSecrets`): `etcd-client-<8hex>` (kubernetes.io/tls,
  only `tls.crt`/`tls.key`), `ca-etcd-bundle-<8hex>` (`bundle.crt`), `ca-etcd-<8hex>` (`ca.crt`
  AND `ca.key`: the CA's private key, which nothing may read), `etcd-server-cr-<8hex>`; all
  immutable, renamed on rotation.
- PVs have the shape of their provisioner: CSI (`pd.csi.storage.gke.io` with volumeHandle
  `projects/<project>/zones/<zone>/disks/pvc-<claim uid>`, `ebs.csi.aws.com` with `vol-…`,
  `disk.csi.azure.com` with the disk's resource ID) or the in-tree source (`gcePersistentDisk`,
  `awsElasticBlockStore`, `azureDisk`), and the claim's size (Gardener: etcd-main 25Gi,
  etcd-events 10Gi).
- the `Etcd` names them in `spec.etcd.clientUrlTls`, with `clientPort`, `volumeClaimTemplate`,
  `metrics` and `storageClass` absent, `""` or a class name.
- shoot namespaces carry gardenlet's labels (`gardener.cloud/role=shoot`,
  `seed.gardener.cloud/provider`, `shoot.gardener.cloud/provider`, …; gardener
  `pkg/gardenlet/operation/botanist/namespaces.go`); nodes carry the cloud's `spec.providerID`
  (GCE: `gce://<project>/<zone>/<instance>`) and the topology labels.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass
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


def etcd_role(etcd: str) -> str:
    """Gardener's `role` label: `main` for etcd-main, `events` for etcd-events."""
    return etcd.rsplit("-", 1)[-1]


def gardener_labels(etcd: str) -> dict[str, str]:
    """The Etcd's `spec.labels` as Gardener writes them (pods get these and druid's)."""
    allowed = "allowed"
    return {
        "app": "etcd-statefulset",
        "role": etcd_role(etcd),
        "gardener.cloud/role": "controlplane",
        "networking.gardener.cloud/to-dns": allowed,
        "networking.gardener.cloud/to-public-networks": allowed,
        "networking.gardener.cloud/to-private-networks": allowed,
        "networking.gardener.cloud/to-runtime-apiserver": allowed,
    }


def pod_labels(etcd: str, pod: str | None = None) -> dict[str, str]:
    """Labels of a real seed's etcd pod: Gardener's, druid's and the StatefulSet controller's."""
    pod = pod or f"{etcd}-0"
    return {
        **gardener_labels(etcd),
        **druid_labels(etcd),
        "apps.kubernetes.io/pod-index": pod.rsplit("-", 1)[-1],
        "controller-revision-hash": f"{etcd}-7d9f8b6c5d",
        "statefulset.kubernetes.io/pod-name": pod,
    }


def data_volume(etcd: str) -> str:
    """Gardener's volumeClaimTemplate: `main-etcd` for etcd-main, else the Etcd's name."""
    return "main-etcd" if etcd == "etcd-main" else etcd


def claim_name(etcd: str, ordinal: int = 0) -> str:
    """The StatefulSet's claim: `<volumeClaimTemplate>-<etcd>-<ordinal>`."""
    return f"{data_volume(etcd)}-{etcd}-{ordinal}"


@dataclass(frozen=True, slots=True)
class EtcdSecrets:
    """The Secret names of one namespace's etcd PKI (Gardener's secrets manager hashes them)."""

    client: str  # etcd-client-<8hex>: tls.crt, tls.key
    ca_bundle: str  # ca-etcd-bundle-<8hex>: bundle.crt
    ca: str  # ca-etcd-<8hex>: ca.crt, ca.key (never to be read)
    server: str  # etcd-server-cr-<8hex>: tls.crt, tls.key
    backup: str = "etcd-backup"  # the backup bucket's credentials (never to be read)

    def all(self) -> tuple[str, ...]:
        """Every name."""
        return (self.client, self.ca_bundle, self.ca, self.server, self.backup)


def secret_hash(*parts: object) -> str:
    """8 hex digits, stable for the same parts (like the secrets manager's name suffix)."""
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8]


def etcd_secret_names(namespace: str, generation: int = 0) -> EtcdSecrets:
    """The names of a namespace's etcd Secrets; a new `generation` is a rotation's new names."""
    return EtcdSecrets(
        client=f"etcd-client-{secret_hash(namespace, 'client', generation)}",
        ca_bundle=f"ca-etcd-bundle-{secret_hash(namespace, 'bundle', generation)}",
        ca=f"ca-etcd-{secret_hash(namespace, 'ca', generation)}",
        server=f"etcd-server-cr-{secret_hash(namespace, 'server', generation)}",
    )


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


def secret_volume(name: str, secret_name: str) -> JSON:
    """A pod volume of a Secret, as druid mounts them (mode 0640)."""
    return {"name": name, "secret": {"secretName": secret_name, "defaultMode": 0o640}}


def etcd_args(etcd: str) -> list[str]:
    """etcd-wrapper's arguments as druid writes them (TLS on)."""
    return [
        "start-etcd",
        f"--backup-restore-host-port={etcd}-local:8080",
        f"--etcd-server-name={etcd}-local",
        "--backup-restore-tls-enabled=true",
        "--backup-restore-ca-cert-bundle-path=/var/etcdbr/ssl/ca/bundle.crt",
        "--etcd-client-cert-path=/var/etcd/ssl/client/tls.crt",
        "--etcd-client-key-path=/var/etcd/ssl/client/tls.key",
    ]


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
    secrets: EtcdSecrets | None = None,
    client_port: int = 2379,
    node: str = "node-1",
) -> JSON:
    """A druid-style etcd pod on `node`: containers etcd + backup-restore, the PVC mounted at
    the data dir, the TLS Secrets of `secrets` (default: the namespace's generation 0) as
    volumes."""
    names = secrets or etcd_secret_names(namespace)
    volume = data_volume(etcd)
    etcd_container = {
        "name": "etcd",
        "image": ETCD_IMAGE,
        "args": etcd_args(etcd),
        "ports": [
            {"containerPort": client_port, "name": "client", "protocol": "TCP"},
            {"containerPort": 2380, "name": "server", "protocol": "TCP"},
        ],
        "volumeMounts": [
            {"name": volume, "mountPath": data_dir},
            {"name": "etcd-config-file", "mountPath": "/var/etcd/config/"},
            {"name": "etcd-ca", "mountPath": "/var/etcd/ssl/ca"},
            {"name": "etcd-server-tls", "mountPath": "/var/etcd/ssl/server"},
            {"name": "etcd-client-tls", "mountPath": "/var/etcd/ssl/client"},
            {"name": "backup-restore-ca", "mountPath": "/var/etcdbr/ssl/ca"},
        ],
    }
    backup = {
        "name": "backup-restore",
        "image": BACKUP_IMAGE,
        "args": ["server", f"--data-dir={data_dir}/new.etcd", "--insecure-transport=false"],
        "volumeMounts": [
            {"name": volume, "mountPath": data_dir},
            {"name": "backup-restore-ca", "mountPath": "/var/etcdbr/ssl/ca"},
            {"name": "backup-restore-server-tls", "mountPath": "/var/etcdbr/ssl/server"},
            {"name": "backup-restore-client-tls", "mountPath": "/var/etcdbr/ssl/client"},
            {"name": "etcd-backup-secret", "mountPath": "/var/etcd-backup/"},
        ],
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
            labels=labels if labels is not None else pod_labels(etcd, name),
            ownerReferences=[owner],
        ),
        "spec": {
            "containers": [etcd_container, backup],
            "volumes": [
                {"name": volume, "persistentVolumeClaim": {"claimName": claim}},
                {"name": "etcd-config-file", "configMap": {"name": f"{etcd}-config"}},
                secret_volume("etcd-ca", names.ca_bundle),
                secret_volume("etcd-server-tls", names.server),
                secret_volume("etcd-client-tls", names.client),
                secret_volume("backup-restore-ca", names.ca_bundle),
                secret_volume("backup-restore-server-tls", names.server),
                secret_volume("backup-restore-client-tls", names.client),
                secret_volume("etcd-backup-secret", names.backup),
            ],
            "nodeName": node,
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


def pvc(
    *, namespace: str, name: str, volume: str, storage_class: str | None, capacity: str = "25Gi"
) -> JSON:
    """A bound claim; `storage_class=None` leaves storageClassName unset (a cluster without a
    default StorageClass: admission fills in the default class where there is one)."""
    spec: JSON = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": capacity}},
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
            "capacity": {"storage": capacity},
        },
    }


# The disk behind a PV as each cloud names it (`pvc-<claim uid>` is the external provisioners'
# disk name; the in-tree plugins keep their own volume source, also under CSI migration).
GCE_PROJECT, GCE_ZONE = "seed-project", "europe-west1-b"
AWS_ZONE = "eu-west-1a"
AZURE_RG = "/subscriptions/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/resourceGroups/shoot--garden--seed"


def volume_source(driver: str, disk: str) -> JSON:
    """The PV's volume source for a provisioner: CSI with the driver's volumeHandle shape, or the
    in-tree plugin's own source (gcePersistentDisk, awsElasticBlockStore, azureDisk)."""
    ebs_id = "vol-" + hashlib.sha256(disk.encode()).hexdigest()[:17]
    in_tree: dict[str, JSON] = {
        "kubernetes.io/gce-pd": {"gcePersistentDisk": {"pdName": disk, "fsType": "ext4"}},
        "kubernetes.io/aws-ebs": {
            "awsElasticBlockStore": {"volumeID": f"aws://{AWS_ZONE}/{ebs_id}", "fsType": "ext4"}
        },
        "kubernetes.io/azure-disk": {
            "azureDisk": {
                "diskName": disk,
                "diskURI": f"{AZURE_RG}/providers/Microsoft.Compute/disks/{disk}",
                "kind": "Managed",
            }
        },
    }
    if driver in in_tree:
        return in_tree[driver]
    handles = {
        "pd.csi.storage.gke.io": f"projects/{GCE_PROJECT}/zones/{GCE_ZONE}/disks/{disk}",
        "ebs.csi.aws.com": ebs_id,
        "disk.csi.azure.com": f"{AZURE_RG}/providers/Microsoft.Compute/disks/{disk}",
    }
    return {"csi": {"driver": driver, "volumeHandle": handles.get(driver, disk), "fsType": "ext4"}}


def pv(
    *,
    name: str,
    claim_namespace: str,
    claim: str,
    storage_class: str,
    driver: str,
    claim_uid: str = "",
    capacity: str = "25Gi",
) -> JSON:
    """A volume of `driver` (the class's provisioner) bound to a claim; its disk is named after
    the claim's uid (`pvc-<uid>`), its capacity the claim's request."""
    disk = f"pvc-{claim_uid or uuid.uuid5(uuid.NAMESPACE_URL, claim_namespace + '/' + claim)}"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": meta(name, annotations={"pv.kubernetes.io/provisioned-by": driver}),
        "spec": {
            "capacity": {"storage": capacity},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": storage_class,
            "volumeMode": "Filesystem",
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": claim_namespace,
                "name": claim,
                "uid": claim_uid,
            },
            **volume_source(driver, disk),
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


def secret(
    *,
    namespace: str,
    name: str,
    data: dict[str, str],
    type_: str = "Opaque",
    immutable: bool | None = None,
    labels: dict[str, str] | None = None,
) -> JSON:
    """A Secret; values are given as text and stored base64-encoded."""
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    out: JSON = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(name, namespace, labels=labels),
        "type": type_,
        "data": encoded,
    }
    if immutable is not None:
        out["immutable"] = immutable
    return out


def _managed(config_name: str, **more: str) -> dict[str, str]:
    """Labels of the secrets manager on the Secrets it generates."""
    return {
        "managed-by": "secrets-manager",
        "manager-identity": "gardenlet",
        "name": config_name,
        "persist": "true",
        **more,
    }


def tls_secret(
    *, namespace: str, name: str, cert_pem: str, key_pem: str, config_name: str = "etcd-client"
) -> JSON:
    """A certificate as Gardener publishes it: kubernetes.io/tls with only tls.crt and tls.key
    (SkipPublishingCACertificate), immutable."""
    return secret(
        namespace=namespace,
        name=name,
        data={"tls.crt": cert_pem, "tls.key": key_pem},
        type_="kubernetes.io/tls",
        immutable=True,
        labels=_managed(config_name),
    )


def bundle_secret(*, namespace: str, name: str, bundle_pem: str) -> JSON:
    """`ca-etcd-bundle-<hash>`: the CA certificates in use, concatenated, key bundle.crt."""
    return secret(
        namespace=namespace,
        name=name,
        data={"bundle.crt": bundle_pem},
        immutable=True,
        labels=_managed("ca-etcd-bundle", **{"bundle-for": "ca-etcd"}),
    )


def ca_secret(*, namespace: str, name: str, cert_pem: str, key_pem: str) -> JSON:
    """`ca-etcd-<hash>`: the CA itself, WITH its private key (ca.key) — never to be read."""
    return secret(
        namespace=namespace,
        name=name,
        data={"ca.crt": cert_pem, "ca.key": key_pem},
        immutable=True,
        labels=_managed("ca-etcd"),
    )


def etcd_resource(
    *,
    namespace: str,
    name: str,
    storage_class: str | None,
    secrets: EtcdSecrets | None = None,
    client_port: int = 2379,
    ca_key: str | None = "bundle.crt",
    replicas: int = 1,
) -> JSON:
    """A druid.gardener.cloud/v1alpha1 Etcd as Gardener writes it; `storage_class=None` leaves
    spec.storageClass absent (the webhook never ran), `""` means the default class; `ca_key=None`
    leaves tlsCASecretRef.dataKey unset (druid's default ca.crt)."""
    names = secrets or etcd_secret_names(namespace)
    ca_ref: JSON = {"name": names.ca_bundle, "namespace": namespace}
    if ca_key is not None:
        ca_ref["dataKey"] = ca_key
    client_tls: JSON = {
        "tlsCASecretRef": ca_ref,
        "serverTLSSecretRef": {"name": names.server, "namespace": namespace},
        "clientTLSSecretRef": {"name": names.client, "namespace": namespace},
    }
    role = etcd_role(name)
    spec: JSON = {
        "replicas": replicas,
        "labels": {**gardener_labels(name)},
        "selector": {"matchLabels": {"app": "etcd-statefulset", "role": role}},
        "etcd": {
            "clientUrlTls": client_tls,
            "serverPort": 2380,
            "clientPort": client_port,
            "metrics": "extensive" if role == "main" else "basic",
            "quota": "8Gi",
        },
        "backup": {"port": 8080, "tls": dict(client_tls)},
        "storageCapacity": "25Gi",
        "volumeClaimTemplate": data_volume(name),
    }
    if storage_class is not None:
        spec["storageClass"] = storage_class
    return {
        "apiVersion": "druid.gardener.cloud/v1alpha1",
        "kind": "Etcd",
        "metadata": meta(
            name, namespace, labels={"role": role, "gardener.cloud/role": "controlplane"}
        ),
        "spec": spec,
        "status": {"ready": True},
    }


def namespace_object(name: str) -> JSON:
    """An active Namespace (created by the emulator for every namespace that holds objects)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": meta(name, labels={"kubernetes.io/metadata.name": name}),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def shoot_namespace(
    name: str, *, seed_provider: str, shoot_provider: str = "gcp", networking: str = "calico"
) -> JSON:
    """A shoot's control-plane namespace in the seed, labelled as gardenlet does
    (`DeployControlPlaneNamespace`): `seed.gardener.cloud/provider` is the Seed's
    `spec.provider.type`, which scopes the provider extension's seedprovider webhook."""
    ns = namespace_object(name)
    ns["metadata"]["labels"].update(
        {
            "gardener.cloud/role": "shoot",
            "seed.gardener.cloud/provider": seed_provider,
            "shoot.gardener.cloud/provider": shoot_provider,
            "networking.shoot.gardener.cloud/provider": networking,
            "backup.gardener.cloud/provider": seed_provider,
            "pod-security.kubernetes.io/enforce": "privileged",
            "high-availability-config.resources.gardener.cloud/consider": "true",
        }
    )
    ns["metadata"]["annotations"] = {
        "shoot.gardener.cloud/uid": str(uuid.uuid4()),
        "high-availability-config.resources.gardener.cloud/failure-tolerance-type": "",
    }
    return ns


def node(*, name: str, provider_id: str, zone: str, region: str, instance_type: str) -> JSON:
    """A Ready node with its cloud's `spec.providerID` and topology labels."""
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": instance_type,
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": zone,
        "worker.gardener.cloud/pool": "worker-z1",
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta(name, labels=labels),
        "spec": {"providerID": provider_id, "podCIDR": "100.96.0.0/24"},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": "10.250.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady"},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure"},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": str(uuid.uuid4()),
                "containerRuntimeVersion": "containerd://1.7.22",
                "kernelVersion": "6.6.62-cloud-amd64",
                "kubeProxyVersion": "",
                "kubeletVersion": "v1.31.4",
                "machineID": uuid.uuid4().hex,
                "operatingSystem": "linux",
                "osImage": "Garden Linux 1592.4",
                "systemUUID": str(uuid.uuid4()),
            },
        },
    }


def compaction_job_pod(*, namespace: str, etcd: str, pod_ip: str, succeeded: bool = False) -> JSON:
    """A pod of etcd-druid's compaction Job: it carries druid's `managed-by` and `part-of` labels
    (so the default selectors match it) but runs `compact-backup`, not `etcd`."""
    name = f"{etcd}-compactor-{uuid.uuid4().hex[:5]}"
    labels = {
        "app.kubernetes.io/component": "etcd-compaction-job",
        "app.kubernetes.io/managed-by": "etcd-druid",
        "app.kubernetes.io/name": f"{etcd}-compactor",
        "app.kubernetes.io/part-of": etcd,
        "batch.kubernetes.io/job-name": f"{etcd}-compactor",
    }
    owner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": f"{etcd}-compactor",
        "uid": str(uuid.uuid4()),
        "controller": True,
        "blockOwnerDeletion": True,
    }
    status = container_status("compact-backup", image=BACKUP_IMAGE, ready=not succeeded)
    if succeeded:
        status["state"] = {"terminated": {"exitCode": 0, "reason": "Completed",
                                          "containerID": status["containerID"]}}  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(name, namespace, labels=labels, ownerReferences=[owner]),
        "spec": {
            "containers": [
                {"name": "compact-backup", "image": BACKUP_IMAGE, "args": ["compact"]},
            ],
            "restartPolicy": "Never",
            "nodeName": "node-1",
        },
        "status": {
            "phase": "Succeeded" if succeeded else "Running",
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "hostIP": "10.250.0.1",
            "startTime": rfc3339(),
            "conditions": [{"type": "Ready", "status": "False" if succeeded else "True"}],
            "containerStatuses": [status],
        },
    }
