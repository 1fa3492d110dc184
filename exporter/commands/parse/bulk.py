"""Pre-filters on raw bytes for reading large logs fast: one line, or a whole block of lines. Pure.

Most lines of an etcd log are lines that `parse_line` classifies as None on a fast path: zap info
lines (the fixed zap head with a message of no interest, and a closing brace) or capnslog lines
below warning level.

`is_boring` recognises the most common zap ones on one undecoded line: `{"level":"info","ts":"…",
"caller":"…","msg":"…"`, alone or after the kubelet's fixed-width prefix, so that the line-by-line
reader (`parse --output events`) can skip it without decoding. Whatever it accepts, `parse_line`
returns None for; lines it rejects are parsed normally (a logger field, a numeric ts, another level
or prefix).

`BLOCK_PATTERNS` does the same for a whole *block*: `\\n` + lines joined by `\\n` (every line
preceded by a newline, none after the last). `pattern.subn(b"", block)` deletes, at C speed, each
`\\n<line>` whose line is one of those (zap lines of level debug, info, warn or error; capnslog
lines of any level whose message cannot be of interest), and leaves the others, each still behind
its newline, for `parse_line`. Every deleted line is shorter than `EMBEDDED_MIN_LENGTH`, so that
no kubelet prefix would be stripped from its middle; a trailing `\\r` is allowed. The messages of
interest are excluded with the parser's own tables (`zap.HANDLERS`, `zap.PREFIXES`,
`text.STARTS`), so the two cannot drift apart. The patterns are applied in turn, each to what
the one before left; the first expects the most common shape (prefixed zap info lines).

A zap pattern comes in two forms. The strict one is exact by itself. The loose one is faster (a
field value is "anything but a quote") and exact under two conditions the caller checks after
the fact with two counts: every match deleted exactly one newline (no value ran into the next
line), and the deleted text held no backslash (no escape in the head's values). When either
fails, the caller uses the strict form on the same input instead. Tests check every pattern
against `parse_line`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from exporter.parser import prefix
from exporter.parser.prefix import EMBEDDED_MIN_LENGTH
from exporter.parser.text import QUIET_STARTS, STARTS
from exporter.parser.zap import HANDLERS, PREFIXES

# The kubelet's `timestamps=true` prefix, one character per byte, `d` standing for a digit.
KUBELET_SHAPE = prefix.KUBELET_SHAPE.encode()
_KUBELET = re.sub(rb"d+", lambda m: rb"[0-9]{%d}" % len(m[0]), re.escape(KUBELET_SHAPE))
_KUBELET_LENGTH = len(KUBELET_SHAPE)
_LONGEST = EMBEDDED_MIN_LENGTH - 1  # longest line a block pattern deletes
# Longest value of each zap field the block patterns accept; the rest of the line gets the rest.
ZAP_TS, _LOGGER, ZAP_CALLER, ZAP_MSG = 64, 32, 200, 400
_TS, _CALLER, _MSG = ZAP_TS, ZAP_CALLER, ZAP_MSG
_LEVELS = (b"info", b"warn", b"debug", b"error")


def interesting_starts() -> list[bytes]:
    """How a zap message of interest starts, right after `"msg":"`: an exact message and its
    closing quote, or a prefix (`trace[`, `raft.node: `)."""
    return [msg.encode() + b'"' for msg in sorted(HANDLERS)] + [p.encode() for p in PREFIXES]


def _not_interesting() -> bytes:
    """A lookahead that fails where a zap message of interest starts (exact or prefix match)."""
    return rb"(?!" + b"|".join(map(re.escape, interesting_starts())) + rb")"


def zap_tail(levels: tuple[bytes, ...]) -> int:
    """How long the rest of a deleted zap line may be, after the closing quote of its `msg` and
    before its closing brace: what `_LONGEST` leaves when every field is as long as accepted."""
    pieces = (b'{"level":"', b'","ts":"', b'","caller":"', b'","msg":"', b'"', b"}\r")
    fixed = _KUBELET_LENGTH + max(map(len, levels)) + sum(map(len, pieces))
    return _LONGEST - fixed - _TS - _CALLER - _MSG - (len(b'"logger":"",') + _LOGGER)


def _pattern() -> re.Pattern[bytes]:
    head = (
        rb'\{"level":"info","ts":"[^"\\]*","caller":"[^"\\]*","msg":"'
        + _not_interesting()
        + rb'[^"\\]*"'
    )
    return re.compile(rb"(?:" + _KUBELET + rb")?" + head)


_BORING = _pattern()


def is_boring(raw: bytes) -> bool:
    """True for a line (without its newline) that parse_line would classify as None cheaply."""
    return raw[-1:] == b"}" and len(raw) < EMBEDDED_MIN_LENGTH and _BORING.match(raw) is not None


@dataclass(frozen=True, slots=True)
class BlockPattern:
    """A block pattern; `strict` is None when `pattern` is exact by itself."""

    pattern: re.Pattern[bytes]
    strict: re.Pattern[bytes] | None = None


def _zap(prefix: bytes, levels: tuple[bytes, ...], value: bytes) -> re.Pattern[bytes]:
    """zap lines after `prefix`, `value` (a character class) standing for a field's characters;
    the general form (several levels) also takes raft's `"logger":"raft",`."""
    logger = rb'(?:"logger":"' + value + b'{0,%d}",)?' % _LOGGER if len(levels) > 1 else b""
    rest = zap_tail(levels)
    line = (
        rb'\{"level":"(?:' + b"|".join(levels) + rb')","ts":"' + value + b"{0,%d}" % _TS
        + rb'",' + logger + rb'"caller":"' + value + b"{0,%d}" % _CALLER
        + rb'","msg":"' + _not_interesting() + value + b"{0,%d}" % _MSG
        + rb'".{0,%d}\}\r?$' % rest
    )  # fmt: skip
    return re.compile(rb"(?m)\n" + prefix + line)


def _zap_pair(prefix: bytes, levels: tuple[bytes, ...]) -> BlockPattern:
    return BlockPattern(_zap(prefix, levels, rb'[^"]'), _zap(prefix, levels, rb'[^"\\\n]'))


def _capnslog() -> re.Pattern[bytes]:
    """capnslog lines that parse_capnslog returns None for: below warning level unless a leader
    change or a defrag, other levels unless the message starts like one of interest. As
    `_CAPNSLOG` does, a package (`etcdserver: `) is taken when there is one, and never given
    back."""
    starts = b"|".join(re.escape(s.encode()) for s in STARTS)
    quiet = b"|".join(re.escape(s.encode()) for s in QUIET_STARTS)
    package = rb"(?>(?:[\w./-]+: )?)"
    time = rb"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}"
    longest = rb"(?=.{0,%d}$)" % (_LONGEST - _KUBELET_LENGTH - len(b"2019-06-25 08:47:33.191089"))
    line = (
        time + longest + rb"(?: \[[^\]\n]*\])? "
        rb"(?:[INDT] \| " + package + rb"(?!" + quiet + rb")"
        rb"|[CEW] \| " + package + rb"(?!" + starts + rb"))"
    )
    return re.compile(rb"(?m)\n(?:" + _KUBELET + rb")?" + line + rb".*")


BLOCK_PATTERNS = (
    _zap_pair(_KUBELET, (b"info",)),
    _zap_pair(b"", (b"info",)),
    _zap_pair(rb"(?:" + _KUBELET + rb")?", _LEVELS),
    BlockPattern(_capnslog()),
)
