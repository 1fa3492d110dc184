"""Shared value types that flow between the stages: discovery → sources → parser → state.

Frozen dataclasses only (but `Event` and `Sample`, frozen msgspec Structs: one is built per event
line or relayed sample, and a Struct is built in a sixth of a frozen dataclass's time); no I/O and
no behaviour beyond small derived values. Every stage imports from here, and this module imports
nothing of the project's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import msgspec


class Label(enum.StrEnum):
    """A StrEnum that hashes as its value, as it compares: `Enum` hashes the member's name in
    Python code, which made every set or dict lookup of a member on the event path a Python call
    (and a lookup by the value string miss)."""

    __hash__ = str.__hash__


class EventKind(Label):
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
    DEFRAG_STARTED = "defrag_started"
    DEFRAG_FINISHED = "defrag_finished"


class Operation(Label):
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
    READ_INDEX = "read_index"  # traces only: etcd's linearizableReadLoop
    OTHER = "other"


class TraceStep(Label):
    """Where a traced request spent its time: etcd's step texts mapped to a small fixed set
    (exporter/parser/trace.py has the table)."""

    RAFT = "raft"  # agreement among members, the raft proposal (which includes the WAL fsync)
    INDEX = "index"  # the in-memory key index
    BOLT = "bolt"  # the bbolt backend
    APPLY = "apply"  # evaluating and applying the request
    AUTH = "auth"  # authentication metadata
    OTHER = "other"  # step texts not in the table


class Event(msgspec.Struct, frozen=True):
    """One recognised log line (`msgspec.structs.replace` makes a changed copy).

    `time` is etcd's own timestamp when the line carries one, else the kubelet prefix's, else None.
    `duration_seconds` is the line's main duration (took, sync duration, exceeded-duration, …).
    The slow-request fields are None for every other kind, but `operation`, which a slow trace
    has too. `steps` is a slow trace's time per step (each step once, in `TraceStep` order).
    """

    kind: EventKind
    time: datetime | None = None
    duration_seconds: float | None = None
    operation: Operation | None = None
    read_only: bool | None = None
    resource: str | None = None
    error: str | None = None
    expected_seconds: float | None = None
    steps: tuple[tuple[TraceStep, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Identity:
    """Who an etcd member is: the identity labels on every per-target series."""

    namespace: str = ""
    project: str = ""
    shoot: str = ""
    etcd: str = ""
    pod: str = ""


# A GiB in bytes: volumes are sized in binary units (`Volume.capacity_bytes`, budgets per GiB).
GIB = 1024**3


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
    # where the expectation came from: etcd | default-class | config | "" (none)
    expected_from: str = ""
    # the cloud's name of the disk (CSI volumeHandle, else the in-tree disk name), to join the
    # cloud's own disk metrics; "" if none
    volume_handle: str = ""
    capacity_bytes: int | None = None  # the PV's spec.capacity.storage
    # what the cloud documents for this disk type and size (exporter/discovery/disk_budget.py),
    # and the rule that says so ("GCE pd-standard: 1.5 write IOPS per GiB"); None/"" if unknown
    expected_write_iops: float | None = None
    iops_basis: str = ""

    @property
    def mismatch(self) -> bool | None:
        """True when the actual class differs from the expected one; None if none is expected."""
        if not self.expected_storage_class:
            return None
        return self.storage_class != self.expected_storage_class


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a Kubernetes member runs, held against what its seed declares
    (exporter/discovery/provider.py works it out).

    `namespace_provider` is the provider type its namespace declares (Gardener's
    `seed.gardener.cloud/provider`), `node_provider` the one its node runs on (from the node's
    `spec.providerID`; `node` names that node, "" when all of the seed's nodes agreed instead),
    `node_provider_id` that providerID; "" where unknown. `provider_mismatch` is None when
    either side is unknown (no verdict). `expected_class_missing` is None when nothing is
    expected, else whether `expected_storage_class` does not exist in the cluster.
    """

    namespace_provider: str = ""
    node_provider: str = ""
    node: str = ""
    node_provider_id: str = ""
    provider_mismatch: bool | None = None
    expected_storage_class: str = ""
    expected_class_missing: bool | None = None


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """Client TLS for scraping: files on disk, or PEM data (e.g. from a Kubernetes secret).

    `error` says why no usable TLS material exists (e.g. a referenced Secret is missing): the
    scrape then fails with reason `tls` without connecting, and `error` is its detail."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    ca_data: str | None = None
    cert_data: str | None = None
    key_data: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False
    error: str | None = None


# Where a member's relayed families are read (ScrapeSpec.source, --scrape.source).
SOURCE_ETCD = "etcd"
SOURCE_SHOOT_PROMETHEUS = "shoot-prometheus"


@dataclass(frozen=True, slots=True)
class ScrapeSpec:
    """Where and how to read an etcd member's relayed families.

    `source` SOURCE_ETCD: `url` is the member's own /metrics. SOURCE_SHOOT_PROMETHEUS: `url` is
    the base URL of the Prometheus that scrapes the member, whose /federate is asked; the member's
    series there are the ones labelled with its `namespace` and `pod` (no TLS material of etcd's
    is needed).
    """

    url: str
    tls: TLSConfig | None = None
    source: str = SOURCE_ETCD  # or SOURCE_SHOOT_PROMETHEUS
    namespace: str = ""
    pod: str = ""


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


class MemberState(Label):
    """Where a member's etcd container stands (the `state` of `etcd_latency_member_state`)."""

    RUNNING = "running"  # the etcd container runs
    RESTARTING = "restarting"  # it ran in this pod and does not run now (exited, back-off)
    PENDING = "pending"  # the pod exists, its etcd container has not run in it yet
    GONE = "gone"  # no pod right now; the member is kept for --kubernetes.member-grace


@dataclass(frozen=True, slots=True)
class Member:
    """The lifecycle of a Kubernetes member as discovery last saw its pod.

    A member is the pod's namespace and name, not one container: it outlives restarts and the
    pod's re-creation (new `uid`). `restart_count` is the etcd container's restartCount in the
    pod `uid`; `reason` says why it does not run (`CrashLoopBackOff`, `Error`, `pod gone`, …);
    `last_exit` the last termination (`Error, exit code 2`) and `last_exit_at` its Unix time;
    `pod_started_at` when the pod `uid` started (Unix time), None when unknown.
    """

    state: MemberState = MemberState.RUNNING
    uid: str = ""
    restart_count: int = 0
    reason: str = ""
    last_exit: str = ""
    last_exit_at: float | None = None
    pod_started_at: float | None = None

    @property
    def running(self) -> bool:
        """The etcd container runs: scrape it."""
        return self.state is MemberState.RUNNING


@dataclass(frozen=True, slots=True)
class Target:
    """One etcd member to watch. `key` is stable across re-discovery (e.g. `namespace/pod`).

    `member` and `placement` are None for static targets (a file entry always counts as
    running).
    """

    key: str
    identity: Identity = field(default_factory=Identity)
    volume: Volume = field(default_factory=Volume)
    scrape: ScrapeSpec | None = None
    log: LogSpec | None = None
    member: Member | None = None
    placement: Placement | None = None  # Kubernetes members: provider and expected class

    @property
    def running(self) -> bool:
        """The member's etcd runs (always, for a static target): its scrape loop should run."""
        return self.member is None or self.member.running


class Sample(msgspec.Struct, frozen=True, gc=False):
    """One sample of a relayed family: sample name (with _bucket/_sum/…), labels, value.

    A Struct, as `Event`: every scrape of every member builds about 130 of them, and a Struct
    is built in a sixth of a frozen dataclass's time (docs/performance.md). It holds strings
    and a float only, so the cycle collector need not track it (`gc=False`)."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


class Shape:
    """Stands for the names and labels of a family's samples, in order, by its identity alone.

    A scrape's layout (`scrape.layout`) and a fold (`scrape.fold`) build every family they read
    from one fixed list of sample names and labels; the families read from one such list carry the
    same `Shape`, shared across members where their lists are alike. The renderer keys the work
    it does once per list (`exposition.text.Template`) on it."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class RelayedFamily:
    """One etcd metric family extracted from a scrape, under etcd's own name and type; `shape`
    (not compared) is given by a reader that builds the family from a fixed list of sample names
    and labels: every family with that shape has exactly those names and labels, in that order."""

    name: str
    type: str  # counter | gauge | histogram | summary | untyped
    help: str
    samples: tuple[Sample, ...]
    shape: Shape | None = field(default=None, compare=False, repr=False)


# How long a log line may be: the one definition for the parser, the log sources and the commands.
# A line over its cap counts as unparsed, never parsed in part. The cap is in bytes where a reader
# has bytes and in characters where it has text; UTF-8 takes at most four bytes a character, so a
# line of more than MAX_LINE_BYTES bytes cannot be short enough and may be dropped unread.
MAX_LINE_LENGTH = 256 * 1024  # characters `parse_line` reads
MAX_LINE_BYTES = 4 * MAX_LINE_LENGTH  # the sources' default cap (--logs.max-line-bytes)
# Room on top of a cap for the prefix a reader splits off before the cap applies: the kubelet's
# time with an offset and its space (36 bytes), or a CRI log file's time, stream and tag (45).
PREFIX_ROOM = 64

# The settings' environment variables all start so (`ETCD_LATENCY_SCRAPE__INTERVAL`); here, not in
# exporter.settings, so that `parse` can tell there is none without importing pydantic.
ENV_PREFIX = "ETCD_LATENCY_"
# The formats of `parse --output`: its settings' type, and what its pydantic-free reader accepts.
ParseOutput = Literal["summary", "json", "events"]
