"""`etcd-latency-exporter parse [FILE…|-]`: offline analysis of saved etcd logs.

Reads each input as a stream of bytes (plain or gzip, told by the magic bytes, also on stdin),
line by line in fixed-size chunks, so memory stays flat on inputs of any size: a line longer than
`MAX_LINE_BYTES` is dropped unread and counted as unparsed, and durations go into bounded
histograms (see exporter.parser.summary). Lines are decoded as UTF-8 with replacement.

--output summary  a readable table: lines read/unparsed, events by kind with duration
                  percentiles, slow requests by operation and resource, first/last event time
--output json     the same summary as one JSON object
--output events   JSON Lines, one object per recognised event: line (1-based, per input), kind,
                  time (ISO 8601 or null), duration_seconds (or null); for slow requests also
                  operation, read_only, resource; error when present; file when several inputs
Exit code 0; 2 when an input cannot be opened; 1 when a gzip input is corrupt or truncated (the
report then covers what could be read).
"""

from __future__ import annotations

import gzip
import itertools
import json
import multiprocessing
import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, Protocol, TextIO, cast

from exporter.model import Event, EventKind
from exporter.parser import MAX_LINE_LENGTH, UNPARSED, parse_line
from exporter.parser.bulk import boring_matcher
from exporter.parser.prefix import EMBEDDED_MIN_LENGTH
from exporter.parser.report import render
from exporter.parser.summary import Summary
from exporter.settings import ParseSettings

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
CHUNK_BYTES = 1 << 20
MAX_LINE_BYTES = 4 * MAX_LINE_LENGTH  # longer lines cannot be short enough in characters
OVERLONG = b"\x00overlong"  # stands for a dropped line; compared by identity
GZIP_MAGIC = b"\x1f\x8b"
PARALLEL_MIN_BYTES = 64 << 20  # a plain file of at least twice this is split across processes
MAX_WORKERS = 4

Emit = Callable[[int, Event], None]


def run_parse(settings: ParseSettings) -> int:
    """Run the subcommand; returns the exit code."""
    names = list(settings.files) or ["-"]
    problems = [p for p in (_check(name) for name in names) if p]
    if problems:
        for problem in problems:
            print(f"etcd-latency-exporter parse: {problem}", file=sys.stderr)
        return EXIT_USAGE
    summary = Summary()
    code = EXIT_OK
    for name in names:
        emit = _event_writer(sys.stdout, name if len(names) > 1 else None)
        if not _parse_input(name, summary, emit if settings.output == "events" else None):
            code = EXIT_PROBLEM
    if settings.output == "json":
        sys.stdout.write(json.dumps(summary.as_json(), indent=2) + "\n")
    elif settings.output == "summary":
        sys.stdout.write(render(summary))
    sys.stdout.flush()
    return code


def _parse_input(name: str, summary: Summary, emit: Emit | None) -> bool:
    """Scan one input into `summary`; False, after a message, when it could not be read through."""
    workers = _workers(name) if emit is None else 1
    if workers > 1:
        summary.merge(scan_parallel(name, workers))
        return True
    try:
        with open_input(name) as stream:
            scan(read_batches(stream), summary=summary, emit=emit)
    except (OSError, EOFError, zlib.error) as err:  # a corrupt or truncated gzip stream
        print(f"etcd-latency-exporter parse: {name}: {err}", file=sys.stderr)
        return False
    return True


def _check(name: str) -> str | None:
    """A message when the input cannot be opened, else None."""
    if name == "-":
        return None
    try:
        with open(name, "rb"):
            return None
    except OSError as err:
        return f"cannot open {name}: {err.strerror or err}"


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


def scan(batches: Iterator[list[bytes]], *, summary: Summary, emit: Emit | None) -> None:
    """Parse every line into `summary`; `emit(line_number, event)` for each event if given."""
    boring = boring_matcher().match
    number = 0
    for lines in batches:
        summary.lines += len(lines)
        for raw in lines:
            number += 1
            if raw[-1:] == b"}" and len(raw) < EMBEDDED_MIN_LENGTH and boring(raw):
                continue
            if raw is OVERLONG:
                summary.unparsed += 1
                continue
            result = parse_line(raw.decode("utf-8", "replace").rstrip("\r"))
            if result is None:
                continue
            if result is UNPARSED:
                summary.unparsed += 1
            elif isinstance(result, Event):
                summary.add_event(result)
                if emit is not None:
                    emit(number, result)


def _workers(name: str) -> int:
    """Processes for one input: more than one only for a large plain file (not gzip, not stdin)."""
    if name == "-":
        return 1
    try:
        with open(name, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode) or f.read(2) == GZIP_MAGIC:
                return 1
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS, size // PARALLEL_MIN_BYTES))


def scan_parallel(path: str, workers: int) -> Summary:
    """Scan a plain file in `workers` processes, each over a range of whole lines."""
    ranges = split_ranges(path, workers)
    with multiprocessing.get_context("fork").Pool(len(ranges)) as pool:
        parts = pool.starmap(scan_range, ranges)
    total = Summary()
    for part in parts:
        total.merge(part)
    return total


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


def scan_range(path: str, start: int, end: int) -> Summary:
    """The summary of the lines in bytes [start, end) of a file (a worker process's share)."""
    summary = Summary()
    with open(path, "rb") as f:
        f.seek(start)
        scan(read_batches(_Slice(f, end - start)), summary=summary, emit=None)
    return summary


class _Slice:
    """The next `size` bytes of a binary file, read like a stream."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self._f, self._left = f, size

    def read(self, n: int) -> bytes:
        data = self._f.read(min(n, self._left))
        self._left -= len(data)
        return data


def _event_writer(out: TextIO, file: str | None) -> Emit:
    def emit(number: int, event: Event) -> None:
        out.write(json.dumps(event_record(number, event, file=file), ensure_ascii=False) + "\n")

    return emit


def event_record(number: int, event: Event, *, file: str | None = None) -> dict[str, Any]:
    """The JSON object of one event in `--output events`."""
    record: dict[str, Any] = {} if file is None else {"file": file}
    record |= {
        "line": number,
        "kind": str(event.kind),
        "time": event.time.isoformat() if event.time else None,
        "duration_seconds": event.duration_seconds,
    }
    if event.kind is EventKind.SLOW_REQUEST:
        record["operation"] = str(event.operation) if event.operation else None
        record["read_only"] = event.read_only
        record["resource"] = event.resource
    if event.error is not None:
        record["error"] = event.error
    return record
