"""druid's `Etcd` resource → `EtcdInfo`: what the exporter takes from it. Pure.

Three things, all from `spec`:

- `storageClass`, kept as druid has it (`*string`): absent (None) means nothing was declared —
  in a Gardener seed, the provider's webhook never ran (the incident this exporter exists for);
  `""` means "the cluster's default StorageClass" (Gardener's etcd-events); a name is that class.
- `etcd.clientUrlTls`: the Secrets with the client certificate (`clientTLSSecretRef.name`, keys
  `tls.crt`/`tls.key`) and the CA that verifies etcd (`tlsCASecretRef.{name,dataKey}`; dataKey
  defaults to `ca.crt`, Gardener's bundle Secret uses `bundle.crt`). Gardener renames these
  Secrets on every rotation, so the names are followed here rather than configured.
- `etcd.clientPort`: the port etcd serves clients and /metrics on.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.kube.objects import JSON, as_dict

DEFAULT_CA_KEY = "ca.crt"


@dataclass(frozen=True, slots=True)
class EtcdInfo:
    """A druid Etcd resource, trimmed (see the module docstring)."""

    namespace: str
    name: str
    storage_class: str | None  # None: absent; "": the cluster's default class
    client_port: int | None = None
    client_secret: str = ""  # clientTLSSecretRef.name, "" if none
    ca_secret: str = ""  # tlsCASecretRef.name, "" if none
    ca_key: str = DEFAULT_CA_KEY  # tlsCASecretRef.dataKey


def _name(value: object) -> str:
    name = as_dict(value).get("name")
    return name if isinstance(name, str) else ""


def _port(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    return None


def trim_etcd(raw: JSON) -> EtcdInfo:
    """Etcd JSON → EtcdInfo; odd values (wrong types, ports out of range) count as absent."""
    meta, spec = as_dict(raw.get("metadata")), as_dict(raw.get("spec"))
    etcd = as_dict(spec.get("etcd"))
    tls = as_dict(etcd.get("clientUrlTls"))
    ca_ref = as_dict(tls.get("tlsCASecretRef"))
    ca_key = ca_ref.get("dataKey")
    sc = spec.get("storageClass")
    return EtcdInfo(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        storage_class=sc if isinstance(sc, str) else None,
        client_port=_port(etcd.get("clientPort")),
        client_secret=_name(tls.get("clientTLSSecretRef")),
        ca_secret=_name(ca_ref),
        ca_key=ca_key if isinstance(ca_key, str) and ca_key else DEFAULT_CA_KEY,
    )
