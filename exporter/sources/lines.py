"""Bytes → lines for log sources, and the `Sink` protocol that sources deliver lines to.

`LineSplitter` caps line length and joins CRI partial lines; it is shared by the file, stdin and
command sources and is on the hot path, so it stays small and allocation-light.
"""

from __future__ import annotations

import re
from typing import Protocol

from exporter.model import PREFIX_ROOM
from exporter.parser.prefix import TIME_PATTERN

# A CRI log file line: `<RFC3339Nano> stdout|stderr F|P <text>` (kubelet/containerd format).
_CRI = re.compile(b"(" + TIME_PATTERN.encode() + rb") (?:stdout|stderr) ([FP]) ?")


class Sink(Protocol):
    """What a log source talks to (LineSink, or a recorder in tests)."""

    @property
    def max_line_bytes(self) -> int:
        """Longest line kept; sources may drop the excess and still deliver the line."""
        ...

    def feed(self, line: str, received_ns: int | None = None) -> None:
        """One line of text, without its newline. A source that has split off the kubelet
        prefix already (the pod-log follower) passes the rest of the line and the prefix's
        time, in nanoseconds since the epoch (`exporter.parser.prefix.prefix_ns`)."""

    def connected(self, up: bool) -> None:
        """The stream is (up=True) or is not (up=False) delivering."""

    def reconnected(self) -> None:
        """The stream was reopened after an end, cut, rotation or error."""


class LineSplitter:
    """Bytes → complete lines: caps line length, joins CRI `P` fragments up to their `F` line.

    An over-long line keeps its first `max_line_bytes + 1` bytes (so the sink still sees it as too
    long) and the rest is dropped without buffering. CRI lines are recognised per line; the joined
    text is delivered as `<timestamp> <text>`, the shape of a kubelet-prefixed line.
    """

    __slots__ = ("_buf", "_cri", "_cri_len", "_cri_ts", "_dropping", "_max")

    def __init__(self, *, max_line_bytes: int, cri: bool = True) -> None:
        self._max = max_line_bytes
        self._buf = bytearray()
        self._dropping = False
        self._cri: list[bytes] | None = [] if cri else None
        self._cri_ts = b""
        self._cri_len = 0

    def push(self, data: bytes) -> list[str]:
        """Append a chunk; returns the lines it completed."""
        out: list[str] = []
        start = 0
        while True:
            if self._cri is None and not self._buf and not self._dropping:
                return self._whole_lines(data, start, out)
            nl = data.find(b"\n", start)
            if nl < 0:
                self._append(data, start, len(data))
                return out
            self._append(data, start, nl)
            self._emit(bytes(self._buf), out)
            self._buf.clear()
            self._dropping = False
            start = nl + 1

    def _whole_lines(self, data: bytes, start: int, out: list[str]) -> list[str]:
        """`push` of `data[start:]` with nothing pending and no CRI lines to join: the complete
        lines are decoded and split in one call each (a pod log under an incident's storm comes
        in chunks of hundreds of lines), unless one of them may be over the cap, which the
        line-by-line path applies in bytes. A line of c characters has at most 4c bytes."""
        last = data.rfind(b"\n", start)
        if last < 0:
            self._append(data, start, len(data))
            return out
        text = data[start:last].decode("utf-8", "replace")
        lines = text.split("\n")
        if 4 * max(map(len, lines)) > self._max + 1:
            for raw in data[start:last].split(b"\n"):
                self._emit(raw, out)
        elif "\r" in text:
            out += [line[:-1] if line.endswith("\r") else line for line in lines]
        else:
            out += lines
        self._append(data, last + 1, len(data))
        return out

    def flush(self) -> list[str]:
        """The pending partial line (and CRI fragments) as final lines; used when a file ends."""
        out: list[str] = []
        if self._buf:
            self._emit(bytes(self._buf), out)
            self._buf.clear()
            self._dropping = False
        if self._cri:
            self._deliver(self._cri_ts, b"".join(self._cri), out)
            self._cri.clear()
            self._cri_len = 0
        return out

    def _append(self, data: bytes, start: int, end: int) -> None:
        if self._dropping or start == end:
            return
        room = self._max + PREFIX_ROOM + 1 - len(self._buf)
        if end - start > room:
            end = start + room
            self._dropping = True
        self._buf += data[start:end]

    def _emit(self, raw: bytes, out: list[str]) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        cri = self._cri
        m = _CRI.match(raw) if cri is not None else None
        if m is None or cri is None:
            out.append(raw[: self._max + 1].decode("utf-8", "replace"))
            return
        text = raw[m.end() :]
        if not cri:
            self._cri_ts = m.group(1)
        if self._cri_len <= self._max:
            cri.append(text)
            self._cri_len += len(text)
        if m.group(2) == b"F":
            self._deliver(self._cri_ts, b"".join(cri), out)
            cri.clear()
            self._cri_len = 0

    def _deliver(self, ts: bytes, text: bytes, out: list[str]) -> None:
        if len(text) > self._max + 1:
            text = text[: self._max + 1]
        out.append((ts + b" " + text).decode("utf-8", "replace"))
