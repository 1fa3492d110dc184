"""Pure extraction of the relayed families from an etcd /metrics payload (text format 0.0.4).

etcd serves about 1,500 lines; we keep about 23 families. Instead of parsing every line, each
wanted family's block is located with `str.find` on its `# HELP`/`# TYPE` header (the text format
keeps a family's lines together), and only the sample lines of that block are parsed.

The families of `metrics.FOLDED` come out summed over the labels it names (fold.py). Nothing here
does I/O. A wanted family whose lines are malformed, or a payload without any wanted family,
raises `ScrapeError("parse")`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from exporter.metrics import RELAYED, RELAYED_WITH_VOLUME
from exporter.model import RelayedFamily, Sample
from exporter.scrape.errors import ScrapeError
from exporter.scrape.fold import fold_families

if TYPE_CHECKING:
    from exporter.scrape.caches import Shared
    from exporter.scrape.fold import Fold, FoldKey

WANTED: tuple[str, ...] = RELAYED_WITH_VOLUME + RELAYED

TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})
NEWLINE = ord("\n")
_HEADER = len(b"# TYPE ")  # and of `# HELP `
_SAMPLE_NAME_ENDS = (b" ", b"{", b"\t")  # what may follow a sample's name
# The sample-name suffixes of a family of each type (also those federate.py reads).
SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("",),
    "gauge": ("",),
    "untyped": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}
_ANY_SUFFIX = ("", "_bucket", "_sum", "_count")

_LABEL_RE = r'([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\\n]|\\.)*)"'
_LABEL = re.compile(_LABEL_RE)
_LABEL_NC = r'[a-zA-Z_][a-zA-Z0-9_]*[ \t]*=[ \t]*"(?:[^"\\\n]|\\.)*"'
_LABELS = re.compile(rf"[ \t]*(?:{_LABEL_NC}[ \t]*,[ \t]*)*(?:{_LABEL_NC}[ \t]*)?")
_SAMPLE = re.compile(
    r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[^"}]|"(?:[^"\\\n]|\\.)*")*)\})?'
    r"[ \t]+(\S+)(?:[ \t]+(\S+))?"
)
_ESCAPE = re.compile(r"\\(.)")
_UNESCAPED = {"\\": "\\", '"': '"', "n": "\n"}
_HELP_UNESCAPED = {"\\": "\\", "n": "\n"}

Labels = tuple[tuple[str, str], ...]
# Parsed label sets by their text (`labels`, the process's `ScrapeCaches.labels`) are shared by
# every scrape of every target: 2,000 members scraped every 30 s would otherwise parse and keep
# their own copies of the same few hundred label sets (`le="0.001"`, `To="<peer>"`), which
# dominated the daemon's memory and its allocator churn. Long label texts are not shared.
LABEL_CACHE_TEXT_MAX = 256


def extract_payload(body: bytes | bytearray) -> tuple[RelayedFamily, ...]:
    """`extract_families` of a response body: UTF-8, invalid bytes replaced."""
    return extract_families(body.decode("utf-8", errors="replace"))


def extract_families(
    text: str,
    wanted: Iterable[str] = WANTED,
    *,
    labels: Shared[str, Labels] | None = None,
    folds: Shared[FoldKey, Fold] | None = None,
) -> tuple[RelayedFamily, ...]:
    """The wanted families found in `text`, in the order of `wanted`, folded (fold.py); label
    sets and folds are shared through `labels` and `folds` when given.

    Raises ScrapeError("parse") when none is found or a wanted family has a malformed line.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    found = extract_blocks("\n" + text, wanted, labels=labels)
    return fold_families(tuple(family for family, _ in found), folds=folds)


def extract_blocks(
    text: str, wanted: Iterable[str], *, labels: Shared[str, Labels] | None = None
) -> list[tuple[RelayedFamily, int]]:
    """The wanted families found in `text` (which starts with a newline; lines end with `\\n`
    alone), as etcd wrote them (not folded), each with the offset of its block's first line, in
    the order of `wanted`.

    Raises ScrapeError("parse") as extract_families does.
    """
    names = tuple(wanted)
    starts = _typed_blocks(text, frozenset(names))
    families = []
    for name in names:
        start = starts.get(name, -1)
        if start < 0:
            start = _untyped_block(text, name)
        family = _parse_block(text, start=start, name=name, labels=labels) if start >= 0 else None
        if family is not None:
            families.append((family, start))
    if not families:
        raise ScrapeError("parse", "no relayed etcd family in the response")
    return families


def has_family(body: bytes | bytearray, name: str) -> bool:
    """Whether the payload `body` (lines ending with `\\n` alone) has a line that starts a block of
    family `name` for extract_blocks: `# TYPE <name>`, `# HELP <name> `, or a sample `<name>`
    followed by a space, `{` or a tab.

    Each of these holds the name, so the body is searched for the name alone, once (a scrape
    checks every wanted family its target lacks), and each place it occurs is told by its
    surroundings."""
    encoded = name.encode()
    at = body.find(encoded)
    while at >= 0:
        after = at + len(encoded)
        if line_start(body, at):  # a sample
            if body[after : after + 1] in _SAMPLE_NAME_ENDS:
                return True
        elif at >= _HEADER and line_start(body, at - _HEADER):
            header = body[at - _HEADER : at]
            if header == b"# TYPE " and (after == len(body) or body[after] in b" \n"):
                return True
            if header == b"# HELP " and body[after : after + 1] == b" ":
                return True
        at = body.find(encoded, at + 1)
    return False


def line_start(body: bytes | bytearray, at: int) -> bool:
    """Whether offset `at` of `body` starts a line."""
    return at == 0 or body[at - 1] == NEWLINE


def _typed_blocks(text: str, wanted: frozenset[str]) -> dict[str, int]:
    """Start offsets of the wanted families that have a `# TYPE` line, in one pass over the text.

    A family's block starts at its `# HELP` line when that directly precedes `# TYPE`.
    """
    starts: dict[str, int] = {}
    marker = "\n# TYPE "
    pos = text.find(marker)
    while pos >= 0:
        begin = pos + len(marker)
        eol = text.find("\n", begin)
        eol = len(text) if eol < 0 else eol
        name = text[begin:eol].split(" ", 1)[0]
        if name in wanted and name not in starts:
            prev = text.rfind("\n", 0, pos)
            has_help = prev >= 0 and text.startswith(f"\n# HELP {name} ", prev)
            starts[name] = (prev if has_help else pos) + 1
        pos = text.find(marker, eol)
    return starts


def _untyped_block(text: str, name: str) -> int:
    """Start of a family without a `# TYPE` line (HELP only, or bare samples), or -1."""
    found = [p for p in (text.find(f"\n# HELP {name} "),) if p >= 0]
    if not found:
        found = [p for p in (text.find(f"\n{name}{c}") for c in " {\t") if p >= 0]
    return min(found) + 1 if found else -1


def _parse_block(
    text: str, *, start: int, name: str, labels: Shared[str, Labels] | None
) -> RelayedFamily | None:
    type_, help_ = "untyped", ""
    allowed = frozenset(name + s for s in _ANY_SUFFIX)
    samples: list[Sample] = []
    pos, size = start, len(text)
    while pos < size:
        if text.startswith("#", pos):
            eol = text.find("\n", pos)
            eol = size if eol < 0 else eol
            header = header_of(text[pos:eol])
            pos = eol + 1
            if header is None:
                continue  # a plain comment
            kw, hname, rest = header
            if hname != name:
                break
            if kw == "HELP":
                help_ = _unescape_help(rest)
            else:
                type_ = _family_type(name, rest)
                allowed = frozenset(name + s for s in SUFFIXES[type_])
            continue
        nxt = text.find("\n#", pos)
        nxt = size if nxt < 0 else nxt
        chunk = text[pos:nxt]
        if not _parse_lines(chunk, name=name, allowed=allowed, into=samples, labels=labels):
            break
        pos = nxt + 1
    if not samples:
        return None
    return RelayedFamily(name=name, type=type_, help=help_, samples=tuple(samples))


def _parse_lines(
    chunk: str,
    *,
    name: str,
    allowed: frozenset[str],
    into: list[Sample],
    labels: Shared[str, Labels] | None,
) -> bool:
    """Parse sample lines into `into`; False when a line of another family ends the block."""
    for raw in chunk.split("\n"):
        line = raw.strip()
        if not line:
            continue
        sample = _parse_sample(line, labels)
        if sample.name not in allowed:
            if not into and sample.name.startswith(name):
                raise ScrapeError("parse", f"unexpected sample {sample.name!r} in family {name!r}")
            return False  # the next family, written without a header
        into.append(sample)
    return True


def header_of(line: str) -> tuple[str, str, str] | None:
    """('HELP'|'TYPE', family name, rest) for a header line; None for any other comment."""
    parts = line[1:].lstrip().split(None, 2)
    if len(parts) < 2 or parts[0] not in ("HELP", "TYPE"):
        return None
    return parts[0], parts[1], parts[2] if len(parts) > 2 else ""


def _family_type(name: str, text: str) -> str:
    type_ = text.strip()
    if type_ not in TYPES:
        raise ScrapeError("parse", f"unknown type {type_!r} of family {name!r}")
    return type_


def _unescape_help(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPE.sub(_unescape_help_char, text)


def _unescape_help_char(m: re.Match[str]) -> str:
    return _HELP_UNESCAPED.get(m[1], m[0])


def parse_sample_line(line: str, *, labels: Shared[str, Labels] | None = None) -> Sample:
    """One sample line: `name{label="value",…} value [timestamp]` → Sample (timestamp dropped);
    its label set shared through `labels` when given.

    Raises ScrapeError("parse") quoting the line when it is malformed.
    """
    return _parse_sample(line.strip(), labels)


def _parse_sample(line: str, table: Shared[str, Labels] | None = None) -> Sample:
    m = _SAMPLE.fullmatch(line)
    if m is None:
        raise ScrapeError("parse", f"malformed sample line {line[:200]!r}")
    name, label_text, value, timestamp = m.groups()
    labels: Labels = ()
    if label_text and table is not None:
        labels = _shared(table, label_text, line)
    elif label_text:
        labels = _parse_labels(label_text, line)
    return Sample(name=sys.intern(name), labels=labels, value=sample_value(value, timestamp, line))


def sample_value(value: str, timestamp: str | None, line: str) -> float:
    """A sample line's value (its timestamp, in milliseconds, validated and dropped); raises
    ScrapeError("parse") quoting `line`."""
    try:
        number = float(value)
        if timestamp is not None:
            int(timestamp)
    except ValueError:
        raise ScrapeError("parse", f"malformed sample line {line[:200]!r}") from None
    if "_" in value:  # float() accepts "1_000", the text format does not
        raise ScrapeError("parse", f"malformed sample line {line[:200]!r}")
    return number


def _shared(table: Shared[str, Labels], text: str, line: str) -> Labels:
    """`_parse_labels` through the shared `table`; names and values interned."""
    labels = table.get(text)
    if labels is None:
        if not text.strip():
            return ()
        labels = tuple((sys.intern(k), sys.intern(v)) for k, v in _parse_labels(text, line))
        if len(text) <= LABEL_CACHE_TEXT_MAX:
            table.put(text, labels)
    return labels


def _parse_labels(text: str, line: str) -> Labels:
    if _LABELS.fullmatch(text) is None:
        raise ScrapeError("parse", f"malformed labels in {line[:200]!r}")
    pairs = _LABEL.findall(text)
    if len(pairs) > 1 and len({k for k, _ in pairs}) < len(pairs):
        raise ScrapeError("parse", f"duplicate label in {line[:200]!r}")
    if "\\" in text:
        pairs = [(k, _ESCAPE.sub(_unescape_label, v)) for k, v in pairs]
    return tuple(pairs)


def _unescape_label(m: re.Match[str]) -> str:
    return _UNESCAPED.get(m[1], m[0])
