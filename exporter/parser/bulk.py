"""A pre-filter on raw bytes for reading large logs fast. Pure.

Most lines of an etcd log are zap info lines that `parse_line` classifies as None on its fast
path: the fixed zap head with a message of no interest, and a closing brace. `is_boring`
recognises the most common of them on the undecoded bytes: `{"level":"info","ts":"…","caller":
"…","msg":"…"`, alone or after the kubelet's fixed-width prefix, so that a reader can skip them
without decoding. Whatever it accepts, `parse_line` returns None for; lines it rejects are parsed
normally (a logger field, a numeric ts, another level or prefix). Tests check that contract.
"""

from __future__ import annotations

import re

from exporter.parser.prefix import EMBEDDED_MIN_LENGTH
from exporter.parser.zap import HANDLERS, PREFIXES

_KUBELET = rb"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z "


def _pattern() -> re.Pattern[bytes]:
    interesting = [re.escape(msg.encode()) + rb'"' for msg in sorted(HANDLERS)]
    interesting += [re.escape(p.encode()) for p in PREFIXES]
    head = (
        rb'\{"level":"info","ts":"[^"\\]*","caller":"[^"\\]*","msg":"(?!'
        + b"|".join(interesting)
        + rb')[^"\\]*"'
    )
    return re.compile(rb"(?:" + _KUBELET + rb")?" + head)


_BORING = _pattern()


def is_boring(raw: bytes) -> bool:
    """True for a line (without its newline) that parse_line would classify as None cheaply."""
    return raw[-1:] == b"}" and len(raw) < EMBEDDED_MIN_LENGTH and _BORING.match(raw) is not None


def boring_matcher() -> re.Pattern[bytes]:
    """The compiled pattern behind `is_boring`, for readers that inline the checks."""
    return _BORING
