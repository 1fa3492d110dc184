"""Extraction that remembers where the families were: one target's scrapes after the first. Pure.

An etcd member writes the same families, in the same order, with the same label sets, on every
scrape; only the values change. `Extractor.extract` does a full `extract_families` once and keeps
the layout it found: for each relayed family, its header (`# HELP`/`# TYPE` lines), its offset,
and the text of each sample line up to its value (`name{labels} `). On the next payload it finds
each header near its last offset and reads the family's values with one regular expression, on
the body's bytes as received (no decoding, no label parsing): about a fifth of the full
extraction's CPU, which is most of the exporter's CPU per scrape.

Anything else falls back to the full extraction, which learns the new layout: a header not found
near its place, a sample line with other labels, one line more or fewer in a family, a timestamp,
whitespace, a comment inside a family, a family that appeared, a value that is not plain ASCII.
A folded family (`metrics.FOLDED`) is read as etcd wrote it and folded with the `fold.Fold` its
place keeps, worked out when the layout was learned. For a payload that holds each family once,
as the text format requires, the result is always
`extract.extract_payload(body)`'s (UTF-8, invalid bytes replaced); tests compare the two on
captured payloads and on random edits of them. No layout is learned from a body that is not valid
UTF-8 (its character and byte offsets could not be matched up).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from exporter.model import RelayedFamily, Sample, Shape
from exporter.scrape import extract as ex
from exporter.scrape.caches import ScrapeCaches
from exporter.scrape.errors import ScrapeError
from exporter.scrape.fold import Fold, apply_folds, fold_of

# How far (in bytes) a family's header may move between two scrapes and still be found
# without a full search: the values before it changing length.
WINDOW = 16384
NEAR = 256  # searched first: a search costs what it reads, and most headers moved less


@dataclass(frozen=True, slots=True)
class Line:
    """A sample line's text before its value (`name{labels} `), and what it parses to."""

    key: str
    name: str
    labels: ex.Labels


@dataclass(frozen=True, slots=True)
class Place:
    """Where a family was: its header (its `# HELP`/`# TYPE` lines as UTF-8), the header's byte
    offset, its sample lines, a pattern that matches them with any values (one group per
    value), the shape of the families read through them, and its fold when it is folded."""

    name: str
    type: str
    help: str
    header: bytes
    offset: int
    lines: tuple[Line, ...]
    pattern: re.Pattern[bytes]
    shape: Shape
    fold: Fold | None = None


@dataclass(frozen=True, slots=True)
class Layout:
    """The places of the wanted families found, and the wanted families that were not."""

    places: tuple[Place, ...]
    absent: tuple[str, ...]


class Extractor:
    """`extract_families` for one target's successive payloads (see the module docstring);
    label sets and layout pieces alike across targets are shared through `caches`."""

    __slots__ = ("_caches", "_layout", "full", "reused", "wanted")

    def __init__(
        self, wanted: Iterable[str] = ex.WANTED, *, caches: ScrapeCaches | None = None
    ) -> None:
        self.wanted = tuple(wanted)
        self._caches = caches if caches is not None else ScrapeCaches()
        self._layout: Layout | None = None
        self.reused = 0  # extractions done from the layout
        self.full = 0  # full extractions

    def extract(self, body: bytes | bytearray) -> tuple[RelayedFamily, ...]:
        """The wanted families of the payload `body` (which is not kept); raises
        ScrapeError("parse") as extract_families does."""
        if b"\r" in body:
            body = body.replace(b"\r\n", b"\n")
        if self._layout is not None:
            families = _reuse(body, self._layout)
            if families is not None:
                self.reused += 1
                return families
        self.full += 1
        self._layout = None
        try:
            text, exact = body.decode("utf-8"), True
        except UnicodeDecodeError:
            text, exact = body.decode("utf-8", errors="replace"), False
        # offsets one past `text`'s
        found = ex.extract_blocks("\n" + text, self.wanted, labels=self._caches.labels)
        families = tuple(family for family, _ in found)
        # looked up once: the layout keeps each fold, and this extraction folds with it
        folds = [fold_of(family, self._caches.folds) for family in families]
        if exact:  # learn where each family starts, in characters and in bytes
            ascii_only = body.isascii()
            starts = []
            for (family, start), fold in zip(found, folds, strict=True):
                at = start - 1
                starts.append((family, at, at if ascii_only else len(text[:at].encode()), fold))
            self._layout = _learn(self._caches, text, self.wanted, starts)
        return apply_folds(families, folds)


def _learn(
    caches: ScrapeCaches,
    text: str,
    wanted: tuple[str, ...],
    found: list[tuple[RelayedFamily, int, int, Fold | None]],
) -> Layout | None:
    """The layout of `text`, whose `found` families start at the given character and byte
    offsets (each with its fold), or None when a family's block is not plain: a header and
    sample lines, each `name{labels} value`, then another family's header."""
    places = []
    for family, start, offset, fold in found:
        place = _place(caches, text, family, start, offset, fold)
        if place is None:
            return None
        places.append(place)
    names = {family.name for family, _, _, _ in found}
    return Layout(tuple(places), tuple(name for name in wanted if name not in names))


def _place(
    caches: ScrapeCaches,
    text: str,
    family: RelayedFamily,
    start: int,
    offset: int,
    fold: Fold | None,
) -> Place | None:
    first = start
    while text.startswith("#", first):  # the header lines
        first = text.find("\n", first) + 1
        if first == 0:
            return None
    lines = []
    pos = first
    for sample in family.samples:
        eol = text.find("\n", pos)
        eol = len(text) if eol < 0 else eol
        key, space, value = text[pos:eol].rpartition(" ")
        if not space or not _plain_value(value):
            return None
        line = Line(key + " ", sample.name, sample.labels)
        try:
            parsed = ex.parse_sample_line(text[pos:eol], labels=caches.labels)
        except ScrapeError:
            return None  # a line the full parser skipped (a comment, a blank line)
        if (parsed.name, parsed.labels) != (line.name, line.labels) or not _same(
            parsed.value, float(value)
        ):
            return None  # not the canonical form (whitespace, a timestamp)
        lines.append(line)
        pos = eol + 1
    if not _ends_family(text, pos, family.name):
        return None
    lines_, compiled, shape = _shared_lines(caches, tuple(lines))
    header = _shared_header(caches, text[start:first])
    return Place(
        family.name, family.type, family.help, header, offset, lines_, compiled, shape, fold
    )


# Layouts of the members of one seed are mostly alike (the same histogram buckets, the same
# headers): their lines, patterns and header texts are shared (`caches.headers`, `caches.lines`)
# instead of held once per target (2,000 targets held 70 MB of them). Bounded: emptied when full;
# a layout keeps what it holds.


def _shared_header(caches: ScrapeCaches, header: str) -> bytes:
    """The shared UTF-8 copy of `header`."""
    found = caches.headers.get(header)
    return found if found is not None else caches.headers.put(header, header.encode())


def _shared_lines(
    caches: ScrapeCaches, lines: tuple[Line, ...]
) -> tuple[tuple[Line, ...], re.Pattern[bytes], Shape]:
    """The shared copy of `lines`, the pattern that reads their values, and the shape of the
    families read through them (the same lines give the same sample names and labels)."""
    keys = tuple(line.key for line in lines)
    found = caches.lines.get(keys)
    if found is not None:
        return found
    # A value: no whitespace that float() would not also strip, no `_` (float() takes `1_000`).
    value = rb"([^ \t\n_]+)"
    pattern = b"\n".join(re.escape(key.encode()) + value for key in keys) + rb"(?:\n|\Z)"
    return caches.lines.put(keys, (lines, re.compile(pattern), Shape()))


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _plain_value(value: str) -> bool:
    return bool(value) and "_" not in value and value == value.strip() and "\t" not in value


def _ends_family(text: str, pos: int, name: str) -> bool:
    """Whether the line at `pos` ends a family `name` for the full parser: the end of the text, or
    a `# HELP`/`# TYPE` line of another family."""
    if pos >= len(text):
        return True
    if not text.startswith(("# HELP ", "# TYPE "), pos):
        return False
    at = pos + len("# HELP ")
    if at < len(text) and not text[at].isspace():  # the name starts here (the common case)
        after = at + len(name)
        same = text.startswith(name, at) and (after == len(text) or text[after].isspace())
        return not same
    eol = text.find("\n", pos)
    header = ex.header_of(text[pos : len(text) if eol < 0 else eol])
    return header is not None and header[1] != name


def _ends_family_at(body: bytes | bytearray, pos: int, name: str) -> bool:
    """`_ends_family` at byte offset `pos` of a body: the line there decides."""
    if pos >= len(body):
        return True
    if not body.startswith((b"# HELP ", b"# TYPE "), pos):
        return False
    at = pos + len(b"# HELP ")
    # the common case, told apart on the bytes: another family's name starts right there
    if at < len(body) and body[at] in _NAME_START and not body.startswith(name.encode(), at):
        return True
    eol = body.find(b"\n", pos)
    line = body[pos : len(body) if eol < 0 else eol].decode("utf-8", errors="replace")
    return _ends_family(line, 0, name)


# Bytes a metric name starts with: none is whitespace, nor starts a longer UTF-8 character.
_NAME_START = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_:")


def _find_header(body: bytes | bytearray, place: Place) -> int:
    """Where `place`'s header is in `body`, or -1: looked for within `NEAR` bytes of where it was
    first (the values before it change length by a few bytes from scrape to scrape), then within
    `WINDOW`. A family is in a payload once (client_golang refuses to gather one twice), so the
    header found first is the family's."""
    size = len(place.header)
    for reach in (NEAR, WINDOW):
        at = body.find(place.header, max(0, place.offset - reach), place.offset + reach + size)
        if at >= 0:
            return at
    return -1


def _reuse(body: bytes | bytearray, layout: Layout) -> tuple[RelayedFamily, ...] | None:
    """The families of `body` read with `layout`, or None where the layout does not fit."""
    for name in layout.absent:
        if ex.has_family(body, name):
            return None
    families = []
    for place in layout.places:
        at = _find_header(body, place)
        if at < 0 or not ex.line_start(body, at):
            return None
        matched = place.pattern.match(body, at + len(place.header))
        if matched is None:
            return None
        try:
            values = [float(value) for value in matched.groups()]
        except ValueError:
            return None  # not a number, or not ASCII (the full extraction decides)
        if not _ends_family_at(body, matched.end(), place.name):
            return None
        if place.fold is not None:
            families.append(place.fold.apply(values))
            continue
        samples = tuple(
            [
                Sample(line.name, line.labels, value)
                for line, value in zip(place.lines, values, strict=True)
            ]
        )
        families.append(RelayedFamily(place.name, place.type, place.help, samples, place.shape))
    return tuple(families)
