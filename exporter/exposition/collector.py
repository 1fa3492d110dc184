"""The collector: the Store as metric families, built fresh at every /metrics request.

`collect()` only reads in-memory state: it never awaits and does no I/O. Families are rebuilt on
every call, so the series of a removed target vanish with it. The walk over the store is written
once (`EtcdLatencyCollector.emit`) and feeds a sink: `MetricSink` builds prometheus_client
families (`collect()`, for any prometheus_client consumer); exporter.exposition.handler renders the
text formats straight from the same walk, because generic rendering of 2,000 targets × 100
series with nine labels each takes seconds. A test keeps the two byte-identical.

Example lines:

    etcd_latency_disk_wal_fsync_duration_seconds_bucket{disk_class="hdd",etcd="etcd-main",le="0.008",namespace="shoot--dev--a",pod="etcd-main-0",project="dev",pv="pv-1",pvc="main-etcd-etcd-main-0",shoot="a",storage_class="standard"} 12.0
    etcd_latency_slow_requests_total{etcd="etcd-main",namespace="shoot--dev--a",operation="range",pod="etcd-main-0",project="dev",read_only="true",resource="pods",shoot="a"} 3.0
"""  # noqa: E501

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
    UnknownMetricFamily,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample

from exporter import __version__
from exporter import metrics as m
from exporter.exposition.labels import LabelBase, Labels, TargetLabels
from exporter.model import EventKind, RelayedFamily
from exporter.model import Sample as RelayedSample
from exporter.state import Store, TargetState


@dataclass(frozen=True, slots=True)
class Family:
    """An exposed family as prometheus_client names it: a counter without `_total`, an info
    without `_info`; `type` is one of counter, gauge, histogram, summary, info, unknown."""

    name: str
    type: str
    help: str


def _rank() -> dict[str, int]:
    names = [m.WAL_FSYNC.name, m.BACKEND_COMMIT.name]
    for etcd_name in m.RELAYED:
        names += [m.relayed_name(etcd_name), m.relayed_name(etcd_name).removesuffix("_total")]
    names += [d.name for d in m.DEFINITIONS]
    return {name: i for i, name in enumerate(dict.fromkeys(names))}


RANK = _rank()


def family_rank(name: str) -> tuple[int, str]:
    """Sort key of a family: relayed, log-derived, volume, then self-metrics; unknown last."""
    return RANK.get(name, len(RANK)), name


EVENT_KINDS: tuple[str, ...] = tuple(str(k) for k in EventKind)
TARGET_STATES: tuple[str, ...] = ("up", "down", "unknown")


class Sink(Protocol):
    """Receives every sample of one collection, grouped by family by the sink itself."""

    def add(self, family: Family, sample: str, base: LabelBase, own: Labels, value: float) -> None:
        """One sample: its family, full sample name, the target's labels plus its own."""

    def add_relayed(
        self, family: Family, base: LabelBase, samples: tuple[RelayedSample, ...]
    ) -> None:
        """All samples of one relayed etcd family of one target, renamed by `relayed_name`."""


def _head(defn: m.MetricDef) -> Family:
    return Family(defn.name, defn.type, defn.help)


WAL_FSYNC, BACKEND_COMMIT = _head(m.WAL_FSYNC), _head(m.BACKEND_COMMIT)
SLOW_REQUESTS, SLOW_DURATION = _head(m.SLOW_REQUESTS), _head(m.SLOW_REQUEST_DURATION)
LOG_EVENTS, VOLUME_INFO = _head(m.LOG_EVENTS), _head(m.VOLUME_INFO)
MISMATCH, TARGET_UP = _head(m.STORAGE_CLASS_MISMATCH), _head(m.TARGET_UP)
STREAM_UP, LAST_SCRAPE = _head(m.LOG_STREAM_UP), _head(m.LAST_SCRAPE_SUCCESS)
LAST_SLOW, BUILD, SHARD = _head(m.LAST_SLOW_EVENT), _head(m.BUILD_INFO), _head(m.SHARD_INFO)
TARGETS, LINES, UNPARSED = _head(m.TARGETS), _head(m.LOG_LINES), _head(m.LOG_LINES_UNPARSED)
RECONNECTS, DURATION = _head(m.LOG_STREAM_RECONNECTS), _head(m.SCRAPE_DURATION)
ERRORS, DROPPED = _head(m.SCRAPE_ERRORS), _head(m.SERIES_DROPPED)
API_ERRORS, TLS_SECRET_ERRORS = _head(m.KUBERNETES_API_ERRORS), _head(m.TLS_SECRET_ERRORS)
MEMBER_STATE, MEMBER_RESTARTS = _head(m.MEMBER_STATE), _head(m.MEMBER_RESTARTS)
WITH_VOLUME = dict(zip(m.RELAYED_WITH_VOLUME, (WAL_FSYNC, BACKEND_COMMIT), strict=True))


class EtcdLatencyCollector(Collector):
    """Every per-target family plus the exporter's self-metrics, read from a Store."""

    def __init__(self, store: Store, *, shard: int = 0, total_shards: int = 1) -> None:
        self._store = store
        self._shard = (("shard", str(shard)), ("total_shards", str(total_shards)))
        self._build = (("python_version", platform.python_version()), ("version", __version__))
        self._labels: dict[str, TargetLabels] = {}
        self._none = LabelBase(())

    @property
    def store(self) -> Store:
        """The store this collector reads."""
        return self._store

    def collect(self) -> Iterable[Metric]:
        """Fresh prometheus_client families of the current state."""
        sink = MetricSink()
        self.emit(sink)
        return sink.metrics()

    def emit(self, sink: Sink) -> None:
        """Walk the store once and hand every sample to `sink` (no I/O, no await)."""
        states = self._store.states()
        self.labels_of(states)
        relayed_heads: dict[str, Family] = {}
        for state in states:
            labels = self._labels[state.target.key]
            _emit_relayed(sink, state.relayed, labels=labels, heads=relayed_heads)
            for _name, _key, emit_section in SECTIONS:
                emit_section(sink, state, labels)
        self.emit_self(sink, states)

    def labels_of(self, states: list[TargetState]) -> dict[str, TargetLabels]:
        """The labels of every state by target key (cached per Target object; the cache keeps
        exactly these targets)."""
        self._labels = {s.target.key: self._target_labels(s) for s in states}
        return self._labels

    def label_of(self, state: TargetState) -> TargetLabels:
        """The labels of one state, through the same cache (other targets stay cached)."""
        labels = self._labels[state.target.key] = self._target_labels(state)
        return labels

    def _target_labels(self, state: TargetState) -> TargetLabels:
        cached = self._labels.get(state.target.key)
        if cached is not None and cached.target is state.target:
            return cached
        return TargetLabels.of(state.target)

    def emit_self(self, sink: Sink, states: list[TargetState]) -> None:
        """The exporter's own families: build, shard, targets by state, API and Secret errors."""
        none = self._none
        sink.add(BUILD, BUILD.name + "_info", none, self._build, 1.0)
        sink.add(SHARD, SHARD.name + "_info", none, self._shard, 1.0)
        counts = dict.fromkeys(TARGET_STATES, 0)
        for state in states:
            counts["unknown" if state.up is None else "up" if state.up else "down"] += 1
        for name, n in counts.items():
            sink.add(TARGETS, TARGETS.name, none, (("state", name),), n)
        for (resource, verb, code), n in sorted(self._store.kubernetes_api_errors.items()):
            own = (("resource", resource), ("verb", verb), ("code", code))
            sink.add(API_ERRORS, API_ERRORS.name + "_total", none, own, n)
        tls_errors = self._store.tls_secret_errors
        for reason in m.TLS_SECRET_ERROR_REASONS:  # every reason from the start, 0 until seen
            why = (("reason", reason),)
            sink.add(
                TLS_SECRET_ERRORS, TLS_SECRET_ERRORS.name + "_total", none, why, tls_errors[reason]
            )


def _emit_relayed(
    sink: Sink,
    families: tuple[RelayedFamily, ...],
    *,
    labels: TargetLabels,
    heads: dict[str, Family],
) -> None:
    """etcd's families under our names; the latency histograms also get the volume labels."""
    for fam in families:
        head = heads.get(fam.name)
        if head is None:
            head = heads[fam.name] = relayed_head(fam)
        elif head.type != exposed_type(fam):
            continue  # another etcd version typed it differently: keep the first type only
        sink.add_relayed(head, relayed_base(fam, labels), fam.samples)


def relayed_head(fam: RelayedFamily) -> Family:
    """The family a relayed etcd family is exposed as (when it is the first of its name)."""
    return WITH_VOLUME.get(fam.name) or _relayed_head(fam)


def relayed_base(fam: RelayedFamily, labels: TargetLabels) -> LabelBase:
    """The latency histograms carry identity and volume labels, the rest identity only."""
    return labels.idvol if fam.name in WITH_VOLUME else labels.ident


def _relayed_head(fam: RelayedFamily) -> Family:
    name = m.relayed_name(fam.name)
    type_ = exposed_type(fam)
    if type_ == "counter":
        name = name.removesuffix("_total")
    help_ = f"Relayed from etcd's {fam.name}: {fam.help}" if fam.help else f"{fam.name} of etcd."
    return Family(name, type_, help_)


def exposed_type(fam: RelayedFamily) -> str:
    """The type a relayed family is exposed with."""
    if fam.type == "counter":
        # prometheus_client exposes a counter's samples as <family>_total
        return "counter" if fam.name.endswith("_total") else "unknown"
    return "unknown" if fam.type == "untyped" else fam.type


def _scraped(state: TargetState) -> bool:
    """A target with a metrics URL, or a member (down while pending, before it has an IP)."""
    return state.target.scrape is not None or state.target.member is not None


def _emit_scrape(sink: Sink, state: TargetState, base: LabelBase) -> None:
    if not _scraped(state):
        return
    if state.up is not None:
        sink.add(TARGET_UP, TARGET_UP.name, base, (), 1.0 if state.up else 0.0)
    if state.last_success_time is not None:
        sink.add(LAST_SCRAPE, LAST_SCRAPE.name, base, (), state.last_success_time)
    if state.last_scrape_duration is not None:
        sink.add(DURATION, DURATION.name, base, (), state.last_scrape_duration)


def _emit_errors(sink: Sink, state: TargetState, base: LabelBase) -> None:
    if not _scraped(state):
        return
    for reason in m.SCRAPE_ERROR_REASONS:
        own = (("reason", reason),)
        sink.add(ERRORS, ERRORS.name + "_total", base, own, state.scrape_errors[reason])


def _emit_stream(sink: Sink, state: TargetState, base: LabelBase) -> None:
    if state.target.log is not None:
        sink.add(STREAM_UP, STREAM_UP.name, base, (), 1.0 if state.stream_up else 0.0)
        sink.add(UNPARSED, UNPARSED.name + "_total", base, (), state.lines_unparsed)
        sink.add(RECONNECTS, RECONNECTS.name + "_total", base, (), state.reconnects)


def _emit_lines(sink: Sink, state: TargetState, base: LabelBase) -> None:
    if state.target.log is not None:
        sink.add(LINES, LINES.name + "_total", base, (), state.lines_read)


def _emit_events(sink: Sink, state: TargetState, base: LabelBase) -> None:
    if state.target.log is not None:
        for kind in EVENT_KINDS:  # all kinds from 0, so rate() sees the first event
            sink.add(
                LOG_EVENTS, LOG_EVENTS.name + "_total", base, (("event", kind),), state.events[kind]
            )
    for (op, read_only, resource), n in sorted(state.slow_requests.items()):
        own = (("operation", op), ("read_only", read_only), ("resource", resource))
        sink.add(SLOW_REQUESTS, SLOW_REQUESTS.name + "_total", base, own, n)
    for op, acc in sorted(state.slow_durations.items()):
        for le, count in acc.cumulative():
            bucket = (("operation", op), ("le", le))
            sink.add(SLOW_DURATION, SLOW_DURATION.name + "_bucket", base, bucket, count)
        sink.add(
            SLOW_DURATION, SLOW_DURATION.name + "_count", base, (("operation", op),), acc.count
        )
        sink.add(SLOW_DURATION, SLOW_DURATION.name + "_sum", base, (("operation", op),), acc.total)
    for kind, when in sorted(state.last_event_time.items()):
        sink.add(LAST_SLOW, LAST_SLOW.name, base, (("event", kind),), when)


def _emit_member(sink: Sink, state: TargetState, base: LabelBase) -> None:
    current = str(state.member_state)
    for name in m.MEMBER_STATES:
        own = (("state", name),)
        sink.add(MEMBER_STATE, MEMBER_STATE.name, base, own, 1.0 if name == current else 0.0)
    if state.target.member is not None:
        sink.add(MEMBER_RESTARTS, MEMBER_RESTARTS.name + "_total", base, (), state.restarts)


def _emit_volume(sink: Sink, labels: TargetLabels) -> None:
    sink.add(VOLUME_INFO, VOLUME_INFO.name + "_info", labels.ident, labels.volume_info, 1.0)
    mismatch = labels.target.volume.mismatch
    if mismatch is not None:
        sink.add(MISMATCH, MISMATCH.name, labels.ident, labels.mismatch, 1.0 if mismatch else 0.0)


def _scrape_section(sink: Sink, state: TargetState, labels: TargetLabels) -> None:
    _emit_scrape(sink, state, labels.ident)


def _errors_section(sink: Sink, state: TargetState, labels: TargetLabels) -> None:
    _emit_errors(sink, state, labels.ident)


def _stream_section(sink: Sink, state: TargetState, labels: TargetLabels) -> None:
    _emit_stream(sink, state, labels.ident)


def _lines_section(sink: Sink, state: TargetState, labels: TargetLabels) -> None:
    _emit_lines(sink, state, labels.ident)


def _events_section(sink: Sink, state: TargetState, labels: TargetLabels) -> None:
    _emit_events(sink, state, labels.ident)


def _member_section(sink: Sink, state: TargetState, labels: TargetLabels) -> None:
    _emit_member(sink, state, labels.ident)


def _volume_section(sink: Sink, state: TargetState, labels: TargetLabels) -> None:
    _emit_volume(sink, labels)
    sink.add(DROPPED, DROPPED.name + "_total", labels.ident, (), state.series_dropped)


def _scrape_key(s: TargetState) -> object:
    return (s.up, s.last_success_time, s.last_scrape_duration)


def _errors_key(s: TargetState) -> object:
    return s.scrape_errors.total()


def _stream_key(s: TargetState) -> object:
    return (s.stream_up, s.lines_unparsed, s.reconnects)


def _lines_key(s: TargetState) -> object:
    return s.lines_read


def _events_key(s: TargetState) -> object:
    return s.events.total()  # every slow request, duration and timestamp comes with an event


def _member_key(s: TargetState) -> object:
    return (s.member_state, s.restarts)


def _volume_key(s: TargetState) -> object:
    return s.series_dropped


SectionKey = Callable[[TargetState], object]
SectionEmit = Callable[[Sink, TargetState, TargetLabels], None]

# A target's non-relayed samples in sections. A section's key changes whenever its samples may
# have changed (its counters only grow), so a renderer may keep a section's text until the key
# moves or the target's labels change. Each family is written by exactly one section; sections
# are split by how often they change (lines at every log line, errors and volume rarely).
SECTIONS: tuple[tuple[str, SectionKey, SectionEmit], ...] = (
    ("scrape", _scrape_key, _scrape_section),
    ("errors", _errors_key, _errors_section),
    ("stream", _stream_key, _stream_section),
    ("lines", _lines_key, _lines_section),
    ("events", _events_key, _events_section),
    ("member", _member_key, _member_section),
    ("volume", _volume_key, _volume_section),
)


_CLASSES: dict[str, Callable[[str, str], Metric]] = {
    "counter": CounterMetricFamily,
    "gauge": GaugeMetricFamily,
    "histogram": HistogramMetricFamily,
    "summary": SummaryMetricFamily,
    "info": InfoMetricFamily,
    "unknown": UnknownMetricFamily,
}


class MetricSink:
    """Builds one prometheus_client family per name, across all targets."""

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}

    def add(self, family: Family, sample: str, base: LabelBase, own: Labels, value: float) -> None:
        """Append one sample to its family, creating the family on first use."""
        metric = self._families.get(family.name)
        if metric is None:
            metric = self._families[family.name] = _CLASSES[family.type](family.name, family.help)
        metric.samples.append(Sample(sample, base.merged(own), float(value)))

    def add_relayed(
        self, family: Family, base: LabelBase, samples: tuple[RelayedSample, ...]
    ) -> None:
        """Append one target's samples of a relayed family under our sample names."""
        for s in samples:
            self.add(family, m.relayed_name(s.name), base, s.labels, s.value)

    def metrics(self) -> list[Metric]:
        """The families in a stable order: relayed, log-derived, volume, self-metrics."""
        return sorted(self._families.values(), key=lambda f: family_rank(f.name))


def make_registry(
    store: Store, *, shard: int, total_shards: int, exporter_metrics: bool
) -> ExporterRegistry:
    """A private registry: our collector, plus process/platform/gc collectors unless disabled."""
    collector = EtcdLatencyCollector(store, shard=shard, total_shards=total_shards)
    return ExporterRegistry(collector, exporter_metrics=exporter_metrics)


class ExporterRegistry(CollectorRegistry):
    """A CollectorRegistry that also exposes its two parts for the fast /metrics renderer:
    `collector` (ours, rendered straight to text) and `extras` (process, platform, gc)."""

    def __init__(self, collector: EtcdLatencyCollector, *, exporter_metrics: bool) -> None:
        # collectors without describe() still answer `/metrics?name[]=…` (RestrictedRegistry)
        super().__init__(support_collectors_without_names=True)
        self.collector = collector
        self.extras = CollectorRegistry()
        if exporter_metrics:
            ProcessCollector(registry=self.extras)
            PlatformCollector(registry=self.extras)
            GCCollector(registry=self.extras)
        self.register(collector)
        self.register(self.extras)
