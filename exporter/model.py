"""Shared value types that flow between the stages: discovery → sources → parser → state.

Frozen dataclasses only; no I/O and no behaviour beyond small derived values. Every stage imports
from here, and this module imports nothing of the project's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class EventKind(enum.StrEnum):
    """What a recognised etcd log line means (the `kind` field and the `event` label)."""

    SLOW_REQUEST = "slow_request"
    SLOW_FDATASYNC = "slow_fdatasync"
    HEARTBEAT_LATE = "heartbeat_late"
    READ_INDEX_RETRY = "read_index_retry"
    READ_INDEX_TIMEOUT = "read_index_timeout"
    READ_INDEX_OUT_OF_DATE = "read_index_out_of_date"
    SLOW_TRACE = "slow_trace"
    SLOW_GRPC_REQUEST = "slow_grpc_request"
    LEADER_CHANGE = "leader_change"
    PEER_UNHEALTHY = "peer_unhealthy"
    CLOCK_DRIFT = "clock_drift"
    RAFT_MESSAGE_DROPPED = "raft_message_dropped"
    SNAPSHOT_TRANSFER_SLOW = "snapshot_transfer_slow"
    APPLY_ENTRIES_SLOW = "apply_entries_slow"


class Operation(enum.StrEnum):
    """The operation of a slow request, read from the request text."""

    RANGE = "range"
    TXN = "txn"
    PUT = "put"
    DELETE_RANGE = "delete_range"
    LEASE_GRANT = "lease_grant"
    LEASE_REVOKE = "lease_revoke"
    LEASE_CHECKPOINT = "lease_checkpoint"
    COMPACTION = "compaction"
    AUTHENTICATE = "authenticate"
    CLUSTER = "cluster"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Event:
    """One recognised log line.

    `time` is etcd's own timestamp when the line carries one, else the kubelet prefix's, else None.
    `duration_seconds` is the line's main duration (took, sync duration, exceeded-duration, …).
    The slow-request fields are None for every other kind.
    """

    kind: EventKind
    time: datetime | None = None
    duration_seconds: float | None = None
    operation: Operation | None = None
    read_only: bool | None = None
    resource: str | None = None
    error: str | None = None
    expected_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    """Who an etcd member is: the identity labels on every per-target series."""

    namespace: str = ""
    project: str = ""
    shoot: str = ""
    etcd: str = ""
    pod: str = ""


@dataclass(frozen=True, slots=True)
class Volume:
    """The disk under an etcd member: volume labels and `etcd_latency_volume_info`."""

    pvc: str = ""
    pv: str = ""
    storage_class: str = ""
    provisioner: str = ""
    disk_type: str = ""
    disk_class: str = "unknown"  # ssd | hdd | unknown
    expected_storage_class: str = ""

    @property
    def mismatch(self) -> bool | None:
        """True when the actual class differs from the expected one; None if none is expected."""
        if not self.expected_storage_class:
            return None
        return self.storage_class != self.expected_storage_class


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """Client TLS for scraping: files on disk, or PEM data (e.g. from a Kubernetes secret)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    ca_data: str | None = None
    cert_data: str | None = None
    key_data: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True, slots=True)
class ScrapeSpec:
    """Where and how to scrape an etcd member's /metrics."""

    url: str
    tls: TLSConfig | None = None


@dataclass(frozen=True, slots=True)
class FileLogSpec:
    """Follow a log file like `tail -F` (plain or CRI format); `-` is standard input."""

    path: str


@dataclass(frozen=True, slots=True)
class CommandLogSpec:
    """Follow a command's standard output, e.g. `journalctl -fu etcd -o cat`."""

    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KubernetesLogSpec:
    """Follow a pod's container log through the Kubernetes API."""

    namespace: str
    pod: str
    container: str = "etcd"
    uid: str = ""


LogSpec = FileLogSpec | CommandLogSpec | KubernetesLogSpec


@dataclass(frozen=True, slots=True)
class Target:
    """One etcd member to watch. `key` is stable across re-discovery (e.g. `namespace/pod`)."""

    key: str
    identity: Identity = field(default_factory=Identity)
    volume: Volume = field(default_factory=Volume)
    scrape: ScrapeSpec | None = None
    log: LogSpec | None = None

    def same_sources(self, other: Target) -> bool:
        """True when only labels differ, so running tasks (and counters) can be kept."""
        return self.scrape == other.scrape and self.log == other.log


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample of a relayed family: sample name (with _bucket/_sum/…), labels, value."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True, slots=True)
class RelayedFamily:
    """One etcd metric family extracted from a scrape, under etcd's own name and type."""

    name: str
    type: str  # counter | gauge | histogram | summary | untyped
    help: str
    samples: tuple[Sample, ...]
