"""The collector: the Store as metric families, one walk written once.

`collect()` only reads in-memory state: it never awaits and does no I/O. Families are rebuilt on
every call, so the series of a removed target vanish with it. The walk over the store is written
once and feeds a sink: `MetricSink` builds prometheus_client families (`collect()`, for any
prometheus_client consumer, and the reference the tests compare with); `body.Body` keeps the
same walk's text between requests, per target and per section, because generic rendering of
2,000 targets × 130 series with nine labels each takes seconds.

Example lines:

    etcd_latency_disk_wal_fsync_duration_seconds_bucket{disk_class="hdd",etcd="etcd-main",le="0.008",namespace="shoot--dev--a",pod="etcd-main-0",project="dev",pv="pv-1",pvc="main-etcd-etcd-main-0",shoot="a",storage_class="standard"} 12.0
    etcd_latency_slow_requests_total{etcd="etcd-main",namespace="shoot--dev--a",operation="range",pod="etcd-main-0",project="dev",read_only="true",resource="pods",shoot="a"} 3.0
"""  # noqa: E501

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector
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
    # the name of its samples, for a counter, gauge, info or unknown family: worked out once, not
    # at each of the sample lines it heads
    sample: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sample", m.exposed(self.name, self.type)[0])


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
PROVIDER, CLASS_MISSING = _head(m.PROVIDER_MISMATCH), _head(m.EXPECTED_CLASS_MISSING)
CAPACITY, WRITE_IOPS = _head(m.VOLUME_CAPACITY), _head(m.VOLUME_EXPECTED_WRITE_IOPS)
DURING_DEFRAG, TRACES = _head(m.SLOW_REQUESTS_DURING_DEFRAG), _head(m.TRACES)
TRACE_SECONDS, TRACE_STEPS = _head(m.TRACE_SECONDS), _head(m.TRACE_STEP_SECONDS)
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
        states = self._store.states()
        labels = self.labels_of(states)
        relayed_heads: dict[str, Family] = {}
        for state in states:
            target = labels[state.target.key]
            emit_relayed(sink, state.relayed, labels=target, heads=relayed_heads)
            for section in SECTIONS:
                section.emit(sink, state, target)
        self.emit_self(sink, states)
        return sink.metrics()

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
        sink.add(BUILD, BUILD.sample, none, self._build, 1.0)
        sink.add(SHARD, SHARD.sample, none, self._shard, 1.0)
        counts = dict.fromkeys(TARGET_STATES, 0)
        for state in states:
            counts["unknown" if state.up is None else "up" if state.up else "down"] += 1
        for name, n in counts.items():
            sink.add(TARGETS, TARGETS.sample, none, (("state", name),), n)
        for (resource, verb, code), n in sorted(self._store.kubernetes_api_errors.items()):
            own = (("resource", resource), ("verb", verb), ("code", code))
            sink.add(API_ERRORS, API_ERRORS.sample, none, own, n)
        tls_errors = self._store.tls_secret_errors
        for reason in m.TLS_SECRET_ERROR_REASONS:  # every reason from the start, 0 until seen
            why = (("reason", reason),)
            sink.add(TLS_SECRET_ERRORS, TLS_SECRET_ERRORS.sample, none, why, tls_errors[reason])


def emit_relayed(
    sink: Sink,
    families: tuple[RelayedFamily, ...],
    *,
    labels: TargetLabels,
    heads: dict[str, Family],
) -> None:
    """etcd's families under our names; the latency histograms also get the volume labels.
    The first target's type of a family wins (`heads` holds the winners)."""
    for fam in families:
        head = heads.get(fam.name)
        if head is None:
            head = heads[fam.name] = relayed_head(fam)
        elif head.type != exposed_type(fam):
            continue  # another etcd version typed it differently: keep the first type only
        sink.add_relayed(head, relayed_base(fam, labels), fam.samples)


def relayed_head(fam: RelayedFamily) -> Family:
    """The family a relayed etcd family is exposed as (when it is the first of its name)."""
    found = WITH_VOLUME.get(fam.name)
    if found is not None:
        return found
    type_ = exposed_type(fam)
    # prometheus_client names a counter without the `_total` its samples carry
    name = m.relayed_name(fam.name)
    name = name.removesuffix("_total") if type_ == "counter" else name
    help_ = f"Relayed from etcd's {fam.name}: {fam.help}" if fam.help else f"{fam.name} of etcd."
    return Family(name, type_, help_)


def relayed_base(fam: RelayedFamily, labels: TargetLabels) -> LabelBase:
    """The latency histograms carry identity and volume labels, the rest identity only."""
    return labels.idvol if fam.name in WITH_VOLUME else labels.ident


def exposed_type(fam: RelayedFamily) -> str:
    """The type a relayed family is exposed with."""
    if fam.type == "counter":
        # prometheus_client exposes a counter's samples as <family>_total
        return "counter" if fam.name.endswith("_total") else "unknown"
    return "unknown" if fam.type == "untyped" else fam.type


# -- a target's own samples, in sections ---------------------------------------------------------


def _scraped(state: TargetState) -> bool:
    """A target with a metrics URL, or a member (down while pending, before it has an IP)."""
    return state.target.scrape is not None or state.target.member is not None


def _emit_scrape(sink: Sink, state: TargetState, labels: TargetLabels) -> None:
    if not _scraped(state):
        return
    base = labels.ident
    if state.up is not None:
        sink.add(TARGET_UP, TARGET_UP.sample, base, (), 1.0 if state.up else 0.0)
    if state.last_success_time is not None:
        sink.add(LAST_SCRAPE, LAST_SCRAPE.sample, base, (), state.last_success_time)
    if state.last_scrape_duration is not None:
        sink.add(DURATION, DURATION.sample, base, (), state.last_scrape_duration)


def _emit_errors(sink: Sink, state: TargetState, labels: TargetLabels) -> None:
    if not _scraped(state):
        return
    for reason in m.SCRAPE_ERROR_REASONS:
        own = (("reason", reason),)
        sink.add(ERRORS, ERRORS.sample, labels.ident, own, state.scrape_errors[reason])


def _emit_stream(sink: Sink, state: TargetState, labels: TargetLabels) -> None:
    if state.target.log is not None:
        base = labels.ident
        sink.add(STREAM_UP, STREAM_UP.sample, base, (), 1.0 if state.stream_up else 0.0)
        sink.add(UNPARSED, UNPARSED.sample, base, (), state.lines_unparsed)
        sink.add(RECONNECTS, RECONNECTS.sample, base, (), state.reconnects)


def _emit_lines(sink: Sink, state: TargetState, labels: TargetLabels) -> None:
    if state.target.log is not None:
        sink.add(LINES, LINES.sample, labels.ident, (), state.lines_read)


def _emit_events(sink: Sink, state: TargetState, labels: TargetLabels) -> None:
    base = labels.ident
    own: Labels
    if state.target.log is not None:
        for kind in EVENT_KINDS:  # all kinds from 0, so rate() sees the first event
            own = (("event", kind),)
            sink.add(LOG_EVENTS, LOG_EVENTS.sample, base, own, state.events[kind])
    for (op, read_only, resource), n in sorted(state.slow_requests.items()):
        own = (("operation", op), ("read_only", read_only), ("resource", resource))
        sink.add(SLOW_REQUESTS, SLOW_REQUESTS.sample, base, own, n)
    name = SLOW_DURATION.name
    for op, acc in sorted(state.slow_durations.items()):
        for le, count in acc.cumulative():
            sink.add(SLOW_DURATION, name + "_bucket", base, (("operation", op), ("le", le)), count)
        sink.add(SLOW_DURATION, name + "_count", base, (("operation", op),), acc.count)
        sink.add(SLOW_DURATION, name + "_sum", base, (("operation", op),), acc.total)
    for kind, when in sorted(state.last_event_time.items()):
        sink.add(LAST_SLOW, LAST_SLOW.sample, base, (("event", kind),), when)
    _emit_traces(sink, state, base)


def _emit_traces(sink: Sink, state: TargetState, base: LabelBase) -> None:
    """Slow requests during defrags (from 0, so rate() sees the first) and the traces."""
    if state.target.log is not None:
        sink.add(DURING_DEFRAG, DURING_DEFRAG.sample, base, (), state.slow_during_defrag)
    traces = state.traces
    own: Labels
    for op, n in sorted(traces.count.items()):
        own = (("operation", op),)
        sink.add(TRACES, TRACES.sample, base, own, n)
        sink.add(TRACE_SECONDS, TRACE_SECONDS.sample, base, own, traces.seconds.get(op, 0.0))
    for (op, step), seconds in sorted(traces.steps.items()):
        own = (("operation", op), ("step", step))
        sink.add(TRACE_STEPS, TRACE_STEPS.sample, base, own, seconds)


def _emit_member(sink: Sink, state: TargetState, labels: TargetLabels) -> None:
    current = str(state.member_state)
    for name in m.MEMBER_STATES:
        own = (("state", name),)
        value = 1.0 if name == current else 0.0
        sink.add(MEMBER_STATE, MEMBER_STATE.sample, labels.ident, own, value)
    if state.target.member is not None:
        sink.add(MEMBER_RESTARTS, MEMBER_RESTARTS.sample, labels.ident, (), state.restarts)


def _emit_volume(sink: Sink, state: TargetState, labels: TargetLabels) -> None:
    ident = labels.ident
    sink.add(VOLUME_INFO, VOLUME_INFO.sample, ident, labels.volume_info, 1.0)
    mismatch = labels.target.volume.mismatch
    if mismatch is not None:
        sink.add(MISMATCH, MISMATCH.sample, ident, labels.mismatch, 1.0 if mismatch else 0.0)
    _emit_placement(sink, labels)
    _emit_budget(sink, labels)
    sink.add(DROPPED, DROPPED.sample, ident, (), state.series_dropped)


def _emit_placement(sink: Sink, labels: TargetLabels) -> None:
    """The seed provider and expected-class verdicts (exporter/discovery/provider.py), each
    only where it has one (a new Target when they change, so its labels' text is new too)."""
    p = labels.target.placement
    if p is None:
        return
    if p.provider_mismatch is not None:
        types = (("namespace_provider", p.namespace_provider), ("node_provider", p.node_provider))
        sink.add(PROVIDER, PROVIDER.sample, labels.ident, types, float(p.provider_mismatch))
    if p.expected_class_missing is not None:
        expected = (("expected_storage_class", p.expected_storage_class),)
        missing = float(p.expected_class_missing)
        sink.add(CLASS_MISSING, CLASS_MISSING.sample, labels.ident, expected, missing)


def _emit_budget(sink: Sink, labels: TargetLabels) -> None:
    """The volume's capacity and expected write IOPS (exporter/discovery/disk_budget.py), each
    only where known (a new Target when they change, so its labels' text is new too)."""
    v = labels.target.volume
    if v.capacity_bytes is not None:
        sink.add(CAPACITY, CAPACITY.sample, labels.ident, (), float(v.capacity_bytes))
    if v.expected_write_iops is not None:
        iops = float(v.expected_write_iops)
        sink.add(WRITE_IOPS, WRITE_IOPS.sample, labels.ident, labels.budget, iops)


class Section(NamedTuple):
    """Some of a target's non-relayed samples: `key(state)` changes whenever they may have
    changed (their counters only grow), so a renderer may keep their text until it moves or the
    target's labels change."""

    name: str
    key: Callable[[TargetState], object]
    emit: Callable[[Sink, TargetState, TargetLabels], None]


# Each family is written by exactly one section; sections are split by how often they change
# (lines at every log line, errors and volume rarely). Used by the collector and body.py only.
SECTIONS: tuple[Section, ...] = (
    Section("scrape", lambda s: (s.up, s.last_success_time, s.last_scrape_duration), _emit_scrape),
    Section("errors", lambda s: s.scrape_errors.total(), _emit_errors),
    Section("stream", lambda s: (s.stream_up, s.lines_unparsed, s.reconnects), _emit_stream),
    Section("lines", lambda s: s.lines_read, _emit_lines),
    # every slow request, duration and timestamp comes with an event
    Section("events", lambda s: s.events.total(), _emit_events),
    Section("member", lambda s: (s.member_state, s.restarts), _emit_member),
    Section("volume", lambda s: s.series_dropped, _emit_volume),
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
