"""Every target's exposition text kept between /metrics requests (the collector's walk, cached).

A 1,000-shoot seed is 2,000 members and about 260,000 sample lines with nine labels each,
50 MB of text. Rendering all of it at every request took seconds and blocked the event loop
(log lines and scrapes waited), so each target's text is kept as UTF-8 chunks:

- relayed etcd families, re-rendered when the target's scrape result is a new object (at most
  once per scrape interval), by `prerender` in the background within a second of the scrape;
- the other samples in sections (`collector.SECTIONS`), re-rendered when the section's key
  moved (log lines at every request, errors or volume almost never).

A request then re-renders what changed since the last one (at most a second of scrapes plus the
log counters) and joins kept bytes. The output is byte-identical to rendering everything afresh
(tests compare it with prometheus_client's encoders after every kind of state change): the
families, their order and the first-type-wins rule for relayed families of different etcd
versions are applied at join time. Nothing here does I/O; `prerender` yields between batches.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from exporter.exposition.collector import (
    SECTIONS,
    EtcdLatencyCollector,
    Family,
    exposed_type,
    family_rank,
    relayed_base,
    relayed_head,
)
from exporter.exposition.labels import TargetLabels
from exporter.exposition.textsink import TextSink, om_header, relayed_lines, text_header
from exporter.model import RelayedFamily
from exporter.state import TargetState

Chunk = tuple[Family, bytes]
RelayedChunk = tuple[str, Family, str, bytes]  # etcd family name, head, exposed type, lines
HEADS_MAX = 256
PRERENDER_INTERVAL = 1.0
PRERENDER_BATCH = 200
BACKGROUND_SECTIONS = frozenset({"scrape", "errors"})  # they change with the scrape


@dataclass(slots=True)
class _TargetText:
    """A target's kept text and the state it was rendered from."""

    labels: TargetLabels
    relayed_from: tuple[RelayedFamily, ...] | None = None
    relayed: list[RelayedChunk] = field(default_factory=list)
    keys: dict[str, object] = field(default_factory=dict)
    chunks: dict[str, list[Chunk]] = field(default_factory=dict)


class ChunkCache:
    """Renders a collector's families from kept per-target text."""

    def __init__(self, collector: EtcdLatencyCollector) -> None:
        self._collector = collector
        self._targets: dict[str, _TargetText] = {}
        self._heads: dict[tuple[str, str, str], tuple[Family, str]] = {}
        self._names: dict[str, str] = {}

    def render(self, *, openmetrics: bool) -> list[bytes]:
        """Our families in one exposition format (no `# EOF`), as parts to be joined."""
        states = self._collector.store.states()
        labels = self._collector.labels_of(states)
        groups = _Groups()
        relayed_heads: dict[str, Family] = {}
        kept: dict[str, _TargetText] = {}
        for state in states:
            text = kept[state.target.key] = self._refresh(state, labels[state.target.key])
            for etcd_name, candidate, exposed, chunk in text.relayed:
                head = relayed_heads.get(etcd_name)
                if head is None:
                    head = relayed_heads[etcd_name] = candidate
                elif head.type != exposed:
                    continue  # another etcd version typed it differently: the first type wins
                groups.add(head, chunk)
            for name, _key, _emit in SECTIONS:
                for head, chunk in text.chunks[name]:
                    groups.add(head, chunk)
        self._targets = kept
        own = TextSink()
        self._collector.emit_self(own, states)
        for head, chunk in own.chunks():
            groups.add(head, chunk)
        return groups.parts(openmetrics=openmetrics)

    def stale(self) -> list[TargetState]:
        """States scraped since their text was rendered (forgets targets that are gone)."""
        states = self._collector.store.states()
        keys = {s.target.key for s in states}
        self._targets = {k: v for k, v in self._targets.items() if k in keys}
        out = []
        for state in states:
            text = self._targets.get(state.target.key)
            if text is None or text.relayed_from is not state.relayed:
                out.append(state)
        return out

    def prerender(self, states: list[TargetState]) -> None:
        """Render the scrape-driven text (relayed families, scrape sections) of `states`."""
        for state in states:
            if self._collector.store.get(state.target.key) is state:  # still there
                labels = self._collector.label_of(state)
                self._targets[state.target.key] = self._refresh(
                    state, labels, sections=BACKGROUND_SECTIONS
                )

    def _refresh(
        self, state: TargetState, labels: TargetLabels, sections: frozenset[str] | None = None
    ) -> _TargetText:
        text = self._targets.get(state.target.key)
        if text is None or text.labels is not labels:
            text = _TargetText(labels)
        if text.relayed_from is not state.relayed:
            text.relayed_from = state.relayed
            text.relayed = [self._relayed(fam, labels) for fam in state.relayed]
        for name, key_of, emit in SECTIONS:
            if sections is not None and name not in sections:
                continue
            key = key_of(state)
            if name not in text.chunks or text.keys[name] != key:
                sink = TextSink()
                emit(sink, state, labels)
                text.keys[name], text.chunks[name] = key, sink.chunks()
        return text

    def _relayed(self, fam: RelayedFamily, labels: TargetLabels) -> RelayedChunk:
        key = (fam.name, fam.type, fam.help)
        found = self._heads.get(key)
        if found is None:
            if len(self._heads) >= HEADS_MAX:  # help texts come from etcd: keep this bounded
                self._heads.clear()
            found = self._heads[key] = (relayed_head(fam), exposed_type(fam))
        base = relayed_base(fam, labels)
        chunk = relayed_lines(base, fam.samples, self._names).encode()
        return fam.name, found[0], found[1], chunk


async def prerender(
    cache: ChunkCache, *, interval: float = PRERENDER_INTERVAL, batch: int = PRERENDER_BATCH
) -> None:
    """Keep the scrape-driven text rendered, `batch` targets at a time, until cancelled."""
    while True:
        await asyncio.sleep(interval)
        stale = cache.stale()
        for start in range(0, len(stale), batch):
            cache.prerender(stale[start : start + batch])
            await asyncio.sleep(0)


class _Groups:
    """Chunks grouped by family, each family's head the first one seen."""

    def __init__(self) -> None:
        self._heads: dict[str, Family] = {}
        self._parts: dict[str, list[bytes]] = {}

    def add(self, head: Family, chunk: bytes) -> None:
        """Append a chunk to its family."""
        parts = self._parts.get(head.name)
        if parts is None:
            self._heads[head.name] = head
            parts = self._parts[head.name] = []
        parts.append(chunk)

    def parts(self, *, openmetrics: bool) -> list[bytes]:
        """Every family's header and chunks, families in the collector's order."""
        header = om_header if openmetrics else text_header
        out: list[bytes] = []
        for name in sorted(self._parts, key=family_rank):
            out.append(header(self._heads[name]).encode())
            out.extend(self._parts[name])
        return out
