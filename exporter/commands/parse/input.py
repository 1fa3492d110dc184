"""Reading the inputs of `parse`: streams, lines and blocks of lines, file ranges, child processes.

Every reader works in fixed-size chunks, so memory stays flat on inputs of any size; a line longer
than the limit is dropped unread (the caller counts it as unparsed).
"""

from __future__ import annotations

import gzip
import itertools
import os
import pickle
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, NamedTuple, Protocol, cast

from exporter.commands.parse.scanner import MAX_LINE_BYTES

CHUNK_BYTES = 1 << 20
OVERLONG = b"\x00overlong"  # stands for a dropped line; compared by identity
GZIP_MAGIC = b"\x1f\x8b"


@contextmanager
def open_input(name: str) -> Iterator[IO[bytes]]:
    """A binary stream of the input's lines: a file or stdin (`-`), gunzipped when gzip."""
    raw: IO[bytes] = sys.stdin.buffer if name == "-" else open(name, "rb")  # noqa: SIM115
    try:
        head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        if head == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield cast(IO[bytes], unzipped)
        else:
            yield raw
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()


class Readable(Protocol):
    """Anything with a binary `read(n)`."""

    def read(self, n: int, /) -> bytes: ...


def read_batches(
    stream: Readable, *, limit: int = MAX_LINE_BYTES, chunk_size: int = CHUNK_BYTES
) -> Iterator[list[bytes]]:
    """Lists of lines (without newline) read in chunks; an overlong line becomes OVERLONG."""
    pending = b""
    dropping = False  # inside a line that has grown past `limit`
    while chunk := stream.read(chunk_size):
        lines = chunk.split(b"\n")
        last = lines.pop()
        if lines:
            lines[0] = OVERLONG if dropping else pending + lines[0]
            pending, dropping = b"", False
        if not dropping:
            pending += last
            if len(pending) > limit:
                pending, dropping = b"", True
        yield lines
    if dropping:
        yield [OVERLONG]
    elif pending:
        yield [pending]


class Block(NamedTuple):
    """Lines for `scanner`: the block `data[start:end]`, and how many lines longer
    than the limit were dropped unread before it."""

    data: bytes
    start: int
    end: int
    overlong: int = 0


def read_blocks(
    stream: Readable, *, limit: int = MAX_LINE_BYTES, chunk_size: int = CHUNK_BYTES
) -> Iterator[Block]:
    """Every line of the stream, as blocks (`\\n` + lines joined by `\\n`) read in chunks: the
    whole lines of a chunk in place, and a line split across chunks on its own."""
    pending = b""
    dropping = False  # inside a line that has grown past `limit`
    while chunk := stream.read(chunk_size):
        first = chunk.find(b"\n")
        if first < 0:
            if not dropping:
                pending += chunk
                if len(pending) > limit:
                    pending, dropping = b"", True
            continue
        yield Block(b"", 0, 0, overlong=1) if dropping else _joined(pending, chunk[:first])
        last = chunk.rfind(b"\n")
        if first < last:
            yield Block(chunk, first, last)
        pending, dropping = chunk[last + 1 :], False
        if len(pending) > limit:
            pending, dropping = b"", True
    if dropping:
        yield Block(b"", 0, 0, overlong=1)
    elif pending:
        yield _joined(pending, b"")


def _joined(pending: bytes, head: bytes) -> Block:
    """The block of the one line made of `pending` and `head`."""
    line = b"".join((b"\n", pending, head))
    return Block(line, 0, len(line))


def split_ranges(path: str, parts: int) -> list[tuple[str, int, int]]:
    """(path, start, end) byte ranges that together cover the file, each ending after a newline."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        bounds = [0]
        for i in range(1, parts):
            f.seek(max(bounds[-1], size * i // parts))
            f.readline()
            bounds.append(f.tell())
    bounds.append(size)
    return [(path, a, b) for a, b in itertools.pairwise(bounds) if b > a]


class FileRange:
    """The bytes [start, end) of a file, read like a stream."""

    def __init__(self, f: IO[bytes], start: int, end: int) -> None:
        f.seek(start)
        self._f, self._left = f, end - start

    def read(self, n: int) -> bytes:
        """Up to `n` bytes, b"" at the end of the range."""
        data = self._f.read(min(n, self._left))
        self._left -= len(data)
        return data


class Child:
    """A forked process that computes `work(*args)` and sends the result back pickled.

    The child shares nothing with this process but the call: it never returns from the fork and
    never runs this process's cleanup (`os._exit`). Read its result once with `result()`; call
    `stop()` instead if it is no longer wanted.
    """

    def __init__(self, work: Callable[..., object], *args: object) -> None:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(read_end)
                with open(write_end, "wb") as out:
                    out.write(pickle.dumps(work(*args)))
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        self.pid, self._fd = pid, read_end

    def result(self) -> object | None:
        """What the child computed, or None when it failed."""
        with open(self._fd, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(self.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0 or not data:
            return None
        result: object = pickle.loads(data)  # written by our own child
        return result

    def stop(self) -> None:
        """End a child whose result is not wanted, and reap it."""
        os.close(self._fd)
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
