"""Summaries of whole blocks of raw lines, with the same results as parsing every line. Pure.

A block is `\\n` + lines joined by `\\n` (each line preceded by its newline, none after the last),
as bytes. `summarize_block` deletes the etcd lines of no interest that `bulk`
recognises in bulk, at C speed, and decodes what is left (the events, the lines of other formats,
and anything malformed) in one piece. The commonest events (`zap.FAST_LINES`: traces, slow
requests and fdatasyncs, request stats, ReadIndex retries, late heartbeats) are then found with
one pattern over that text and built as `zap.fast_event` builds them, without splitting,
decoding and dispatching each line (`fold_text`); `parse_line` reads the lines left. So every
count of the summary is what the line-by-line reader finds, on any input; tests compare the two
on the captured fixtures, on generated corpora mixed with garbage, on generated and mutated event
lines, and on random bytes.

The first two block patterns (zap info lines of no interest, with and without the kubelet
prefix: most lines of a real log) are also implemented in C, in the optional extension
`_shapes` (this package), built when a compiler is present. Its `undeleted` makes one pass over
the block and returns the number of its lines and of those it keeps (counted on the way, so
neither the block nor what is left is read a second time) and exactly what
`BLOCK_PATTERNS[0].strict` and `BLOCK_PATTERNS[1].strict` leave, several times faster than the
regular expressions; the shape's numbers and the messages of interest are passed in from `bulk`,
and tests compare the two on boundaries and random input. Without the extension (`_undeleted`
is None) the patterns do all the work. When the extension has deleted at least three lines in
four, the other patterns are not run: what is left is mostly events, which they would be tried
on in vain, at a cost above what the few lines they delete save `parse_line` (the summary is the
same either way; tests run both).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from exporter.commands.parse.bulk import (
    BLOCK_PATTERNS,
    KUBELET_SHAPE,
    ZAP_CALLER,
    ZAP_MSG,
    ZAP_TS,
    BlockPattern,
    interesting_starts,
    zap_tail,
)
from exporter.commands.parse.summary import Summary
from exporter.model import MAX_LINE_BYTES, Event
from exporter.parser import UNPARSED, parse_line
from exporter.parser.events import Result
from exporter.parser.prefix import EMBEDDED_MIN_LENGTH
from exporter.parser.zap import FAST_LINES, fast_match

__all__ = ["MAX_LINE_BYTES", "classify_raw", "fold", "summarize_block"]


def _accelerator() -> Callable[[bytes, int, int], tuple[int, int, bytes]] | None:
    """`undeleted(data, start, end)`: the number of newlines in the block `data[start:end]` and
    in what it keeps, and the block without the lines `BLOCK_PATTERNS[0].strict` and `[1].strict`
    delete, from the C extension given the numbers those patterns are built from; None when the
    extension is not built."""
    try:
        from exporter.commands.parse._shapes import undeleted
    except ImportError:
        return None
    starts = tuple(interesting_starts())
    numbers = (ZAP_TS, ZAP_CALLER, ZAP_MSG, zap_tail((b"info",)))

    def shapes(data: bytes, start: int, end: int) -> tuple[int, int, bytes]:
        return undeleted(data, start, end, KUBELET_SHAPE, starts, *numbers)

    return shapes


# The C pass leaves fewer than 1/MOSTLY_DELETED of the lines: the other patterns are skipped.
MOSTLY_DELETED = 4
# The switch between the two paths, which give the same results (tests set it to None).
_undeleted = _accelerator()


def classify_raw(raw: bytes) -> Result:
    """One raw line without its newline: decoded as UTF-8 with replacement, `\\r` stripped."""
    if len(raw) > MAX_LINE_BYTES:
        return UNPARSED
    return parse_line(raw.decode("utf-8", "replace").rstrip("\r"))


def fold(summary: Summary, result: Result) -> None:
    """Count one classified line's result (not the line itself) into `summary`."""
    if result is UNPARSED:
        summary.unparsed += 1
    elif isinstance(result, Event):
        summary.add_event(result)


def summarize_block(data: bytes, summary: Summary, *, start: int = 0, end: int = -1) -> None:
    """Fold every line of the block `data[start:end]` (all of `data` by default) into `summary`:
    lines, unparsed, events. The block is read in place, not copied."""
    end = len(data) if end < 0 else end
    patterns: tuple[BlockPattern, ...]
    if _undeleted is not None:  # lines counted and BLOCK_PATTERNS[0:2] applied in C, one pass
        lines, left, rest = _undeleted(data, start, end)
        summary.lines += lines
        if not lines:
            return
        # Where C deleted most lines (a zap log), what is left is mostly events, which the other
        # patterns would be tried on in vain: they cost more than they save (docs/performance.md).
        patterns = BLOCK_PATTERNS[2:] if left > lines // MOSTLY_DELETED else ()
    else:
        lines = data.count(b"\n", start, end)
        summary.lines += lines
        if not lines:
            return
        rest, left = _delete(BLOCK_PATTERNS[0], data, start, end, lines)
        patterns = BLOCK_PATTERNS[1:]
    for pattern in patterns:
        if not left:
            return
        rest, left = _delete(pattern, rest, 0, len(rest), left)
    if len(rest) <= MAX_LINE_BYTES:  # no line of it is over the limit: text, events in bulk
        fold_text(summary, rest.decode("utf-8", "replace"))
        return
    for raw in rest.split(b"\n")[1:]:
        fold(summary, classify_raw(raw))


def fold_text(summary: Summary, text: str) -> None:
    """Fold every line of the decoded block `text` into `summary` (the caller counted them).

    The lines of the fast shapes (`zap.FAST_LINES`) are found and deleted in one pass, each
    event folded in as it is found, built as `zap.fast_event` builds it (a line whose values do
    not convert is kept); `parse_line` reads the lines that are left, with `\\r` stripped."""
    add = summary.add_event

    def take(m: re.Match[str]) -> str:
        # a longer line is left to `parse_line`: it could hold a copy of the kubelet prefix
        if m.end() - m.start() <= EMBEDDED_MIN_LENGTH:
            event = fast_match(m, counted=True)
            if event is not None:
                add(event)
                return ""
        return m.group()

    text = FAST_LINES.sub(take, text)
    for line in text.split("\n")[1:]:
        fold(summary, parse_line(line.rstrip("\r")))


def _delete(
    pattern: BlockPattern, data: bytes, start: int, end: int, lines: int
) -> tuple[bytes, int]:
    """What is left of the block `data[start:end]` of `lines` lines after deleting the lines
    `pattern` matches (a block too), and its number of lines. See exporter.commands.parse.bulk."""
    block = memoryview(data)[start:end]
    rest, deleted = pattern.pattern.subn(b"", block)
    left = rest.count(b"\n")
    if pattern.strict is None or not deleted:
        return rest, left
    if lines - left == deleted and _same_backslash_lines(data, start, end, rest, lines):
        return rest, left
    rest = pattern.strict.sub(b"", block)
    return rest, rest.count(b"\n")


def _same_backslash_lines(data: bytes, start: int, end: int, rest: bytes, lines: int) -> bool:
    """True when no line deleted from the block `data[start:end]` (leaving `rest`) held a
    backslash. Counting the lines with one (`find` is fast) beats counting backslashes unless
    most lines have one."""
    before = _lines_with_backslash(data, start, end, limit=lines // 8)
    if before is None:
        return rest.count(b"\\") == data.count(b"\\", start, end)
    return _lines_with_backslash(rest, 0, len(rest), limit=before) == before


def _lines_with_backslash(data: bytes, start: int, end: int, *, limit: int) -> int | None:
    """How many lines of `data[start:end]` hold a backslash; None once there are over `limit`."""
    found = 0
    at = data.find(b"\\", start, end)
    while at >= 0:
        found += 1
        if found > limit:
            return None
        line_end = data.find(b"\n", at, end)
        if line_end < 0:
            break
        at = data.find(b"\\", line_end, end)
    return found
