"""Every metric the exporter exposes: names, HELP, types and label sets, in one table.

The collector, docs/metrics.md and the tests all read this module; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

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

# etcd families relayed under the volume labels (latency histograms) ...
RELAYED_WITH_VOLUME: tuple[str, ...] = (
    "etcd_disk_wal_fsync_duration_seconds",
    "etcd_disk_backend_commit_duration_seconds",
)
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


def _m(name: str, type_: str, labels: tuple[str, ...], help_: str) -> MetricDef:
    return MetricDef(PREFIX + name, type_, labels, help_)


ID = IDENTITY_LABELS
VOL = VOLUME_LABELS

WAL_FSYNC = _m(
    "disk_wal_fsync_duration_seconds",
    "histogram",
    ID + VOL,
    "WAL fdatasync latency relayed from etcd_disk_wal_fsync_duration_seconds, "
    "labelled with the volume under the member (etcd docs: p99 should be below 10ms).",
)
BACKEND_COMMIT = _m(
    "disk_backend_commit_duration_seconds",
    "histogram",
    ID + VOL,
    "bbolt backend commit latency relayed from etcd_disk_backend_commit_duration_seconds, "
    "labelled with the volume under the member (etcd docs: p99 should be below 25ms).",
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
    ),
    "The volume under an etcd member: PVC, PV, StorageClass, provisioner, disk type and class; "
    "the expected StorageClass and where the expectation came from (etcd, default-class, "
    "config, or empty).",
)
STORAGE_CLASS_MISMATCH = _m(
    "storage_class_mismatch",
    "gauge",
    (*ID, "storage_class", "expected_storage_class"),
    "1 when the member's PVC is on another StorageClass than the Etcd resource (or the "
    "configured expectation) asks for.",
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
    VOLUME_INFO,
    STORAGE_CLASS_MISMATCH,
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
