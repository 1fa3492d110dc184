"""Our /metrics body kept between requests: per-target text, per-family columns, gzip blocks.

A 1,000-shoot seed is 2,000 members and about 260,000 sample lines with nine labels each,
50 MB of text, 2 MB gzipped. Rendering and gzipping all of it at every request took 0.3-0.7 s
on a loaded machine, and a log event became visible only after the request that followed it
had done all that. So the work of a request is proportional to what changed since the last one:

- each target's text is kept per family (`Entry`): the relayed etcd families re-rendered when the
  target's scrape result is a new object (by `prerender` in the background, within a second of
  the scrape), its other samples in sections (`collector.SECTIONS`) re-rendered when the
  section's key moved (log lines at every request, errors or volume almost never);
- the entries sit in one column per family, one slot per target in store order; a request
  updates the slots of the entries that changed since the last request and joins the columns;
- each column is gzipped in blocks of about `BLOCK_BYTES` (a block is some consecutive targets,
  the count fixed per column), each block its own raw deflate stream ending at a byte boundary,
  kept until one of its slots changes. The gzip body is the header, the blocks as they are, an
  empty final block and the CRC-32 (`crc32_combine` of the blocks'), so a request compresses
  only the blocks with changed slots. Blocks of 128 KB make the body 3 % larger than one
  stream (64 KB: 10 %; 256 KB: nothing, but twice the work per changed target); ISA-L gzips
  (the `isal` package, six times zlib's speed at level 1, with `crc32_combine`).

The output is byte-identical to rendering everything afresh (tests compare it with
prometheus_client's encoders after every kind of state change): family order, family heads and
the first-type-wins rule for relayed families of different etcd versions are applied when the
columns are joined. Nothing here does I/O; `gzip` yields to the event loop after each
`GZIP_SLICE` of work (time, not text: a yield waits for every ready task, hundreds of log streams
under a storm, and most blocks are kept packed), and one request at a time works on the body (a
lock).
"""

from __future__ import annotations

import asyncio
import struct
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgspec
from isal import isal_zlib

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
from exporter.exposition.text import RelayedText, TextSink, header
from exporter.model import RelayedFamily
from exporter.state import TargetState

HEADS_MAX = 256
PRERENDER_INTERVAL = 1.0
PRERENDER_BATCH = 200
BACKGROUND_SECTIONS = frozenset({"scrape", "errors"})  # they change with the scrape
RELAYED = "relayed"  # the part of a target's text that its scrape result renders
BLOCK_BYTES = 128 << 10
GZIP_LEVEL = 1  # a third of the default level's CPU for a 25 % larger body
GZIP_SLICE = 0.25  # seconds of work between two yields of a gzip request to the event loop
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no mtime
GZIP_END = b"\x03\x00"  # an empty final block


class Entry(msgspec.Struct, frozen=True, gc=False):
    """One target's lines of one family, with the head it brings and its exposed type (for a
    relayed family, the first target's head and type win). A Struct: every scrape of every
    member makes one per relayed family, built in an eighth of a frozen dataclass's time."""

    head: Family
    type: str
    lines: bytes


@dataclass(frozen=True, slots=True)
class Packed:
    """Text as a raw deflate stream ending at a byte boundary (no final block), with the
    CRC-32 and length of the text."""

    data: bytes
    crc: int
    size: int


def pack(text: bytes) -> Packed:
    """`text` compressed on its own, to be concatenated with other packed texts."""
    packer = isal_zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    data = packer.compress(text) + packer.flush(isal_zlib.Z_SYNC_FLUSH)
    return Packed(data, isal_zlib.crc32(text), len(text))


def gzip_member(packed: list[Packed]) -> bytes:
    """A gzip member of the packed texts in order (their text joined, without a timestamp)."""
    crc, size = 0, 0
    out = [GZIP_HEADER]
    for p in packed:
        out.append(p.data)
        crc = isal_zlib.crc32_combine(crc, p.crc, p.size)
        size += p.size
    out += (GZIP_END, struct.pack("<II", crc, size & 0xFFFFFFFF))
    return b"".join(out)


@dataclass(slots=True)
class _TargetText:
    """A target's kept entries, the state they were rendered from, and which changed since the
    columns took them."""

    labels: TargetLabels
    relayed_from: tuple[RelayedFamily, ...] | None = None
    keys: dict[str, object] = field(default_factory=dict)  # section → key rendered at
    parts: dict[str, tuple[str, ...]] = field(default_factory=dict)  # section → column keys
    entries: dict[str, Entry] = field(default_factory=dict)  # column key → entry
    changed: set[str] = field(default_factory=set)

    def reset(self, labels: TargetLabels) -> None:
        """Forget everything rendered (the labels changed); the columns drop the old entries."""
        self.changed.update(self.entries)
        self.labels, self.relayed_from = labels, None
        self.keys.clear()
        self.parts.clear()
        self.entries.clear()

    def replace(self, part: str, entries: dict[str, Entry]) -> None:
        """The entries of one section (or of the relayed families) rendered anew."""
        for key in self.parts.get(part, ()):
            self.entries.pop(key, None)
            self.changed.add(key)
        self.entries.update(entries)
        self.changed.update(entries)
        self.parts[part] = tuple(entries)


class _Column:
    """One family's entries, one slot per target in store order, gzipped in blocks."""

    __slots__ = ("entries", "lines", "packed", "per_block", "types")

    def __init__(self, slots: int, typical: Entry) -> None:
        self.entries: list[Entry | None] = [None] * slots
        self.lines: list[bytes] = [b""] * slots
        self.types: Counter[str] = Counter()
        # targets per block from the first entry put: a family's entries are alike in size
        self.per_block = max(1, BLOCK_BYTES // max(len(typical.lines), 1))
        self.packed: list[Packed | None] = [None] * -(-slots // self.per_block)

    def put(self, slot: int, entry: Entry | None) -> None:
        """Set a target's entry (None: it has none) and drop its block's packed text."""
        old = self.entries[slot]
        if old is None or entry is None or old.type != entry.type:  # else the count stays
            if old is not None:
                self.types[old.type] -= 1
                if not self.types[old.type]:
                    del self.types[old.type]
            if entry is not None:
                self.types[entry.type] += 1
        self.entries[slot] = entry
        self.lines[slot] = b"" if entry is None else entry.lines
        self.packed[slot // self.per_block] = None

    def first(self) -> Entry | None:
        """The first target's entry: its head is the family's (None: the column is empty)."""
        return next(filter(None, self.entries), None) if self.types else None

    def text(self, first: Entry, start: int = 0, stop: int | None = None) -> list[bytes]:
        """The lines of slots [start, stop): the first entry's, and those of the type of the
        first entry's head (a relayed family typed otherwise by another etcd is left out)."""
        if self._uniform(first):
            return self.lines[start:stop]
        win = first.head.type
        entries = self.entries[start:stop]
        return [e.lines for e in entries if e is not None and (e.type == win or e is first)]

    def blocks(self, first: Entry) -> Iterator[Packed]:
        """The packed blocks, packing those whose slots changed. A mixed column (rare: etcd
        versions typing a family differently) is packed afresh every time."""
        uniform = self._uniform(first)
        for i, packed in enumerate(self.packed):
            if packed is None or not uniform:
                start = i * self.per_block
                packed = pack(b"".join(self.text(first, start, start + self.per_block)))
                if uniform:
                    self.packed[i] = packed
            yield packed

    def _uniform(self, first: Entry) -> bool:
        return len(self.types) == 1 and first.head.type in self.types


class Body:
    """A collector's families kept as text and gzip blocks between requests.

    One request at a time: `text` and `gzip` hold a lock (`gzip` yields between blocks)."""

    def __init__(self, collector: EtcdLatencyCollector) -> None:
        self._collector = collector
        self._texts: dict[str, _TargetText] = {}
        self._order: list[str] = []
        self._slots: dict[str, int] = {}  # target key → its slot in the columns (`_order`)
        self._columns: dict[str, _Column] = {}
        self._heads: dict[tuple[str, str, str], tuple[Family, str]] = {}
        self._headers: dict[tuple[Family, bool], Packed] = {}
        self._relayed_text = RelayedText()
        self._lock = asyncio.Lock()

    async def text(self, *, openmetrics: bool) -> list[bytes]:
        """Our families in one text format (no `# EOF`), as parts to be joined."""
        async with self._lock:
            out: list[bytes] = []
            for head, first, column, own in self._families():
                out.append(header(head, openmetrics=openmetrics).encode())
                out.extend(own if column is None or first is None else column.text(first))
            return out

    async def gzip(self, *, openmetrics: bool, tail: bytes = b"") -> bytes:
        """Our families in one text format followed by `tail`, as one gzip member."""
        async with self._lock:
            packed: list[Packed] = []
            clock = time.perf_counter
            since = clock()
            for head, first, column, own in self._families():
                packed.append(self._header(head, openmetrics))
                if column is None or first is None:
                    packed.append(pack(b"".join(own)))
                    continue
                for block in column.blocks(first):
                    packed.append(block)
                    # A yield per slice of work, not of text: each one waits for every ready
                    # task, which under a log storm is hundreds of streams.
                    if clock() - since >= GZIP_SLICE:
                        await asyncio.sleep(0)
                        since = clock()
            packed.append(pack(tail))
            return gzip_member(packed)

    def stale(self) -> list[TargetState]:
        """States scraped since their text was rendered (forgets targets that are gone)."""
        states = self._collector.store.states()
        keys = {s.target.key for s in states}
        self._texts = {k: v for k, v in self._texts.items() if k in keys}
        out = []
        for state in states:
            text = self._texts.get(state.target.key)
            if text is None or text.relayed_from is not state.relayed:
                out.append(state)
        return out

    def prerender(self, states: list[TargetState]) -> None:
        """Render the scrape-driven text (relayed families, scrape sections) of `states`, and
        put it in the columns at once unless a request is reading them: the text it replaces is
        let go now, not at the next request (two copies of every member's text, 40 MB more at
        2,000 members, by then)."""
        for state in states:
            key = state.target.key
            if self._collector.store.get(key) is state:  # still there
                text = self._text(state, self._collector.label_of(state))
                self._render(text, state, sections=BACKGROUND_SECTIONS)
                slot = self._slots.get(key)
                if slot is not None and not self._lock.locked():
                    self._apply(slot, text)

    def _families(self) -> list[tuple[Family, Entry | None, _Column | None, list[bytes]]]:
        """Every family in the collector's order: its head, its column and the column's first
        entry, or for a self-metric family its lines."""
        states = self._update()
        found: list[tuple[Family, Entry | None, _Column | None, list[bytes]]] = []
        for column in self._columns.values():
            first = column.first()
            if first is not None:
                found.append((first.head, first, column, []))
        own = TextSink()
        self._collector.emit_self(own, states)
        found += [(head, None, None, [chunk]) for head, chunk in own.chunks()]
        found.sort(key=lambda f: family_rank(f[0].name))
        return found

    def _update(self) -> list[TargetState]:
        """Bring every target's text and the columns up to date with the store."""
        states = self._collector.store.states()
        labels = self._collector.labels_of(states)
        order = [s.target.key for s in states]
        if order != self._order:  # targets came or went: the slots move
            self._order = order
            self._slots = {key: slot for slot, key in enumerate(order)}
            self._texts = {k: self._texts[k] for k in order if k in self._texts}
            for text in self._texts.values():
                text.changed.update(text.entries)
            self._columns.clear()
        for slot, state in enumerate(states):
            text = self._text(state, labels[state.target.key])
            self._render(text, state)
            self._apply(slot, text)
        return states

    def _apply(self, slot: int, text: _TargetText) -> None:
        """Put a target's changed entries in its slot of the columns (slots as in `_order`)."""
        for key in text.changed:
            entry = text.entries.get(key)
            column = self._columns.get(key)
            if column is None:
                if entry is None:
                    continue
                column = self._columns[key] = _Column(len(self._order), entry)
            column.put(slot, entry)
        text.changed.clear()

    def _text(self, state: TargetState, labels: TargetLabels) -> _TargetText:
        text = self._texts.get(state.target.key)
        if text is None:
            text = self._texts[state.target.key] = _TargetText(labels)
        elif text.labels is not labels:
            text.reset(labels)
        return text

    def _render(
        self, text: _TargetText, state: TargetState, sections: frozenset[str] | None = None
    ) -> None:
        if text.relayed_from is not state.relayed:
            text.relayed_from = state.relayed
            # a scrape has each family once (extract, layout and federate yield wanted names)
            families = state.relayed
            bases = [relayed_base(fam, text.labels) for fam in families]
            texts = self._relayed_text.lines(families, bases)
            relayed = {f.name: self._relayed(f, t) for f, t in zip(families, texts, strict=True)}
            text.replace(RELAYED, relayed)
        for name, key_of, emit in SECTIONS:
            if sections is not None and name not in sections:
                continue
            key = key_of(state)
            if name not in text.keys or text.keys[name] != key:
                sink = TextSink()
                emit(sink, state, text.labels)
                text.keys[name] = key
                text.replace(name, {h.name: Entry(h, h.type, chunk) for h, chunk in sink.chunks()})

    def _relayed(self, fam: RelayedFamily, lines: str) -> Entry:
        key = (fam.name, fam.type, fam.help)
        found = self._heads.get(key)
        if found is None:
            if len(self._heads) >= HEADS_MAX:  # help texts come from etcd: keep this bounded
                self._heads.clear()
            found = self._heads[key] = (relayed_head(fam), exposed_type(fam))
        return Entry(found[0], found[1], lines.encode())

    def _header(self, head: Family, openmetrics: bool) -> Packed:
        packed = self._headers.get((head, openmetrics))
        if packed is None:
            if len(self._headers) >= 2 * HEADS_MAX:
                self._headers.clear()
            text = header(head, openmetrics=openmetrics).encode()
            packed = self._headers[(head, openmetrics)] = pack(text)
        return packed


async def prerender(
    body: Body, *, interval: float = PRERENDER_INTERVAL, batch: int = PRERENDER_BATCH
) -> None:
    """Keep the scrape-driven text rendered, `batch` targets at a time, until cancelled."""
    while True:
        await asyncio.sleep(interval)
        stale = body.stale()
        for start in range(0, len(stale), batch):
            body.prerender(stale[start : start + batch])
            await asyncio.sleep(0)
