"""Every metric the exporter exposes: names, HELP, types and label sets, in one table.

The collector, docs/metrics.md and the tests all read this module; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

PREFIX = "etcd_latency_"

IDENTITY_LABELS: tuple[str, ...] = ("namespace", "project", "shoot", "etcd", "pod")
VOLUME_LABELS: tuple[str, ...] = ("pvc", "pv", "storage_class", "disk_class")

# Buckets of the log-derived slow-request histogram: etcd logs only requests above its warning
# threshold (100 ms by default), so the histogram starts there.
SLOW_REQUEST_BUCKETS: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)

# Scrape error reasons (bounded enum, the `reason` label). `no_data`: the member's Prometheus
# (--scrape.source=shoot-prometheus) answered, but without any series of the member.
SCRAPE_ERROR_REASONS: tuple[str, ...] = (
    "timeout",
    "connect",
    "tls",
    "http_status",
    "too_large",
    "parse",
    "no_data",
)

# Why a Secret with a member's TLS material is unusable (the `reason` label of
# etcd_latency_exporter_tls_secret_errors_total).
TLS_SECRET_ERROR_REASONS: tuple[str, ...] = ("not_found", "forbidden", "malformed", "error")

# etcd's own names of the two disk latency histograms ...
ETCD_WAL_FSYNC = "etcd_disk_wal_fsync_duration_seconds"
ETCD_BACKEND_COMMIT = "etcd_disk_backend_commit_duration_seconds"
# ... and the p99 each should stay below (https://etcd.io/docs/v3.5/faq/): the one definition of
# the limits the verdicts judge by and the HELP texts state; tests/meta/test_limits.py ties them
# to the alert rules (dashboards/etcd-latency.rules.yaml) and the chart's default thresholds.
WAL_FSYNC_LIMIT = 0.010
BACKEND_COMMIT_LIMIT = 0.025
# Slow for its class: a member whose p99 is at least CLASS_MEDIAN_FACTOR times the median p99 of
# the members on its StorageClass and above the floor (half the limit: below it a ratio between
# sub-millisecond p99s means nothing); a class has a median only with CLASS_MEDIAN_MIN_MEMBERS
# members or more. The one definition `diagnose` and the status page judge by;
# tests/meta/test_limits.py ties them to the …SlowForClass alerts, the class median recording rules
# and the chart's defaults.
CLASS_MEDIAN_FACTOR = 3.0
WAL_FSYNC_CLASS_FLOOR = WAL_FSYNC_LIMIT / 2
BACKEND_COMMIT_CLASS_FLOOR = BACKEND_COMMIT_LIMIT / 2
CLASS_MEDIAN_MIN_MEMBERS = 5

# etcd families relayed under the volume labels (latency histograms) ...
RELAYED_WITH_VOLUME: tuple[str, ...] = (ETCD_WAL_FSYNC, ETCD_BACKEND_COMMIT)
# ... and relayed with identity labels only, renamed by the `etcd_latency_<rest>` rule.
RELAYED: tuple[str, ...] = (
    "etcd_server_slow_apply_total",
    "etcd_server_slow_read_indexes_total",
    "etcd_server_read_indexes_failed_total",
    "etcd_server_heartbeat_send_failures_total",
    "etcd_server_leader_changes_seen_total",
    "etcd_server_has_leader",
    "etcd_server_is_leader",
    "etcd_server_proposals_failed_total",
    "etcd_server_proposals_pending",
    "etcd_server_proposals_committed_total",
    "etcd_server_proposals_applied_total",
    "etcd_mvcc_db_total_size_in_bytes",
    "etcd_mvcc_db_total_size_in_use_in_bytes",
    "etcd_server_quota_backend_bytes",
    "etcd_network_peer_round_trip_time_seconds",
    "etcd_disk_wal_write_bytes_total",
    "etcd_disk_defrag_inflight",
    "etcd_disk_backend_defrag_duration_seconds",
    # etcd 3.5+ (range: 3.6+); absent from older members' /metrics, so no series for them
    "etcd_disk_wal_write_duration_seconds",
    "etcd_server_range_duration_seconds",
    "etcd_server_apply_duration_seconds",
)
# Relayed families summed over some of etcd's labels, by the labels summed over. etcd's apply
# histogram is one histogram per request type (`op`, some twenty of them) and outcome (`success`):
# 46 series on an idle member, over 300 under load, as many as all other relayed families together.
# What it is relayed for (apply latency against etcd's --warning-apply-duration and its slow-apply
# counter) needs one histogram per member, so it is relayed summed over those labels and over
# `version` (etcd 3.5 writes a v2 and a v3 histogram; 23 lines per member instead of 46 idle and
# 300+ under load); the per-op breakdown stays on etcd's own /metrics.
FOLDED: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"etcd_server_apply_duration_seconds": ("op", "success", "version")}
)


def relayed_name(etcd_name: str) -> str:
    """`etcd_server_slow_apply_total` → `etcd_latency_server_slow_apply_total`."""
    if not etcd_name.startswith("etcd_"):
        raise ValueError(f"not an etcd metric name: {etcd_name!r}")
    return PREFIX + etcd_name[len("etcd_") :]


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One exposed family: its name (without _total/_info suffix rules applied by the client)."""

    name: str
    type: str  # counter | gauge | histogram | info
    labels: tuple[str, ...]
    help: str

    @property
    def exposed(self) -> tuple[str, str]:
        """The name and TYPE of the family on /metrics in the text format (`exposed`)."""
        return exposed(self.name, self.type)


def exposed(name: str, type_: str) -> tuple[str, str]:
    """The suffix rules, once: the name and TYPE a family has in the text format 0.0.4, as
    prometheus_client writes them, from its name and type as prometheus_client names them.

    A counter's samples and text header are `<name>_total`; an info's are `<name>_info`, typed
    gauge; an `unknown` family is `untyped`. A counter's or info's exposed name is also the
    name of its samples. OpenMetrics headers keep the bare name and type.
    """
    if type_ == "counter":
        return name + "_total", type_
    if type_ == "info":
        return name + "_info", "gauge"
    if type_ == "unknown":
        return name, "untyped"
    return name, type_


def _m(name: str, type_: str, labels: tuple[str, ...], help_: str) -> MetricDef:
    return MetricDef(PREFIX + name, type_, labels, help_)


ID = IDENTITY_LABELS
VOL = VOLUME_LABELS

WAL_FSYNC = _m(
    "disk_wal_fsync_duration_seconds",
    "histogram",
    ID + VOL,
    f"WAL fdatasync latency relayed from {ETCD_WAL_FSYNC}, labelled with the volume under the "
    f"member (etcd docs: p99 should be below {WAL_FSYNC_LIMIT * 1000:g}ms).",
)
BACKEND_COMMIT = _m(
    "disk_backend_commit_duration_seconds",
    "histogram",
    ID + VOL,
    f"bbolt backend commit latency relayed from {ETCD_BACKEND_COMMIT}, labelled with the volume "
    f"under the member (etcd docs: p99 should be below {BACKEND_COMMIT_LIMIT * 1000:g}ms).",
)
SLOW_REQUESTS = _m(
    "slow_requests",
    "counter",
    (*ID, "operation", "read_only", "resource"),
    "Requests etcd logged as taking too long, by operation, read-only flag and resource.",
)
SLOW_REQUEST_DURATION = _m(
    "slow_request_duration_seconds",
    "histogram",
    (*ID, "operation"),
    "Duration of requests etcd logged as too slow. Only requests above etcd's warning threshold "
    "(100ms by default) are logged, so this histogram sees nothing below it.",
)
LOG_EVENTS = _m(
    "log_events",
    "counter",
    (*ID, "event"),
    "Recognised etcd log events by kind.",
)
SLOW_REQUESTS_DURING_DEFRAG = _m(
    "slow_requests_during_defrag",
    "counter",
    ID,
    "Requests etcd logged as taking too long while a defragmentation ran (or that overlapped "
    "one), counted here and not in etcd_latency_slow_requests_total: a defrag stalls writes on "
    "any disk.",
)
TRACES = _m(
    "traces",
    "counter",
    (*ID, "operation"),
    "Request traces etcd logged (requests over 100ms, etcd 3.4+ with zap), by operation; "
    "read_index is etcd's linearizable read loop. Traces during a defragmentation are left out.",
)
TRACE_SECONDS = _m(
    "trace_seconds",
    "counter",
    (*ID, "operation"),
    "Total duration of the request traces etcd logged, by operation.",
)
TRACE_STEP_SECONDS = _m(
    "trace_step_seconds",
    "counter",
    (*ID, "operation", "step"),
    "Time of the traced requests by step (raft, index, bolt, apply, auth, other): divided by "
    "etcd_latency_trace_seconds_total, the share of the slow requests' time each step took. "
    "etcd lists only steps above 100ms/(steps+1), so the shares add up to less than 1.",
)
VOLUME_INFO = _m(
    "volume",
    "info",
    (
        *ID,
        "pvc",
        "pv",
        "storage_class",
        "provisioner",
        "disk_type",
        "disk_class",
        "expected_storage_class",
        "expected_from",
        "volume_handle",
    ),
    "The volume under an etcd member: PVC, PV, StorageClass, provisioner, disk type and class; "
    "the expected StorageClass and where the expectation came from (etcd, default-class, "
    "config, or empty); the cloud's name of the disk (CSI volumeHandle, else the in-tree disk "
    "name, or empty).",
)
# etcd's hardware guide (https://etcd.io/docs/v3.5/op-guide/hardware/): about 50 sequential IOPS
# at least, 500 for heavily loaded clusters.
ETCD_IOPS_FLOOR = 50
ETCD_IOPS_HEAVY_LOAD = 500
VOLUME_CAPACITY = _m(
    "volume_capacity_bytes",
    "gauge",
    ID,
    "Capacity of the PV under an etcd member (its spec.capacity.storage); absent when unknown.",
)
VOLUME_EXPECTED_WRITE_IOPS = _m(
    "volume_expected_write_iops",
    "gauge",
    (*ID, "storage_class", "disk_type"),
    "Write IOPS the cloud documents for the member's disk type and size (GCE pd-*, AWS EBS, "
    f"Azure Premium SSD; docs/metrics.md cites the sources); etcd asks for about "
    f"{ETCD_IOPS_FLOOR}, {ETCD_IOPS_HEAVY_LOAD} under heavy load. Absent where nothing is "
    "documented.",
)
STORAGE_CLASS_MISMATCH = _m(
    "storage_class_mismatch",
    "gauge",
    (*ID, "storage_class", "expected_storage_class"),
    "1 when the member's PVC is on another StorageClass than the Etcd resource (or the "
    "configured expectation) asks for.",
)
PROVIDER_MISMATCH = _m(
    "provider_mismatch",
    "gauge",
    (*ID, "namespace_provider", "node_provider"),
    "1 when the member's namespace declares another seed provider type "
    "(seed.gardener.cloud/provider) than its node runs on (from the node's spec.providerID), 0 "
    "when they agree; absent when either is unknown.",
)
EXPECTED_CLASS_MISSING = _m(
    "expected_class_missing",
    "gauge",
    (*ID, "expected_storage_class"),
    "1 when the StorageClass the member is expected on (the Etcd resource's, the default class "
    'for its "", or the configured one) does not exist in the cluster, 0 when it exists; '
    "absent when nothing is expected.",
)
TARGET_UP = _m(
    "target_up",
    "gauge",
    ID,
    "1 when the last scrape of the member's /metrics succeeded; 0 while its etcd container "
    "does not run. The exporter scrapes in the background every --scrape.interval and serves "
    "the cached result.",
)
LOG_STREAM_UP = _m(
    "log_stream_up",
    "gauge",
    ID,
    "1 while the member's log stream is connected.",
)
LAST_SCRAPE_SUCCESS = _m(
    "last_scrape_success_timestamp_seconds",
    "gauge",
    ID,
    "Unix time of the last successful scrape of the member's /metrics.",
)
LAST_SLOW_EVENT = _m(
    "last_slow_event_timestamp_seconds",
    "gauge",
    (*ID, "event"),
    "Unix time of the member's last slow-request, slow-fdatasync or late-heartbeat log event.",
)
# Member states (the `state` label of etcd_latency_member_state), one series each.
MEMBER_STATES: tuple[str, ...] = ("running", "restarting", "pending", "gone")
MEMBER_STATE = _m(
    "member_state",
    "gauge",
    (*ID, "state"),
    "1 for the member's current state, 0 for the others: running (the etcd container runs), "
    "restarting (it exited or backs off), pending (its pod has not started it yet), gone (no "
    "pod; kept for --kubernetes.member-grace). Static targets are always running.",
)
MEMBER_RESTARTS = _m(
    "member_restarts",
    "counter",
    ID,
    "Restarts of the member's etcd container, from its restartCount; never goes backwards "
    "(a re-created pod adds its own restarts). Kubernetes members only.",
)

# Self-metrics.
BUILD_INFO = _m(
    "exporter_build",
    "info",
    ("version", "python_version"),
    "Build information of the exporter.",
)
SHARD_INFO = _m(
    "exporter_shard",
    "info",
    ("shard", "total_shards"),
    "The shard this replica serves.",
)
TARGETS = _m(
    "exporter_targets",
    "gauge",
    ("state",),
    "Targets by state (up, down, unknown).",
)
LOG_LINES = _m(
    "exporter_log_lines_read",
    "counter",
    ID,
    "Log lines read from the member's log stream.",
)
LOG_LINES_UNPARSED = _m(
    "exporter_log_lines_unparsed",
    "counter",
    ID,
    "Log lines that were not etcd log lines (malformed, binary, truncated, unknown format).",
)
LOG_STREAM_RECONNECTS = _m(
    "exporter_log_stream_reconnects",
    "counter",
    ID,
    "Times the member's log stream was reopened after an end, cut or error.",
)
SCRAPE_DURATION = _m(
    "exporter_scrape_duration_seconds",
    "gauge",
    ID,
    "Duration of the last scrape of the member's /metrics.",
)
SCRAPE_ERRORS = _m(
    "exporter_scrape_errors",
    "counter",
    (*ID, "reason"),
    "Failed scrapes of the member's /metrics by reason (timeout, connect, tls, http_status, "
    "too_large, parse, no_data).",
)
SERIES_DROPPED = _m(
    "exporter_series_dropped",
    "counter",
    ID,
    "Series not exported because the member reached --limits.max-series-per-target.",
)
KUBERNETES_API_ERRORS = _m(
    "exporter_kubernetes_api_errors",
    "counter",
    ("resource", "verb", "code"),
    "Errors from the Kubernetes API by resource, verb and HTTP status (403 means RBAC is missing).",
)
TLS_SECRET_ERRORS = _m(
    "exporter_tls_secret_errors",
    "counter",
    ("reason",),
    "Times a Secret with an etcd member's client TLS material became unusable, by reason "
    "(not_found, forbidden, malformed, error).",
)

DEFINITIONS: tuple[MetricDef, ...] = (
    WAL_FSYNC,
    BACKEND_COMMIT,
    SLOW_REQUESTS,
    SLOW_REQUEST_DURATION,
    LOG_EVENTS,
    SLOW_REQUESTS_DURING_DEFRAG,
    TRACES,
    TRACE_SECONDS,
    TRACE_STEP_SECONDS,
    VOLUME_INFO,
    VOLUME_CAPACITY,
    VOLUME_EXPECTED_WRITE_IOPS,
    STORAGE_CLASS_MISMATCH,
    PROVIDER_MISMATCH,
    EXPECTED_CLASS_MISSING,
    TARGET_UP,
    LOG_STREAM_UP,
    LAST_SCRAPE_SUCCESS,
    LAST_SLOW_EVENT,
    MEMBER_STATE,
    MEMBER_RESTARTS,
    BUILD_INFO,
    SHARD_INFO,
    TARGETS,
    LOG_LINES,
    LOG_LINES_UNPARSED,
    LOG_STREAM_RECONNECTS,
    SCRAPE_DURATION,
    SCRAPE_ERRORS,
    SERIES_DROPPED,
    KUBERNETES_API_ERRORS,
    TLS_SECRET_ERRORS,
)
