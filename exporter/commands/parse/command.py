"""`etcd-latency-exporter parse [FILE…|-]`: offline analysis of saved etcd logs.

Reads each input as a stream of bytes (plain or gzip, told by the magic bytes, also on stdin) in
fixed-size chunks, so memory stays flat on inputs of any size: a line longer than `MAX_LINE_BYTES`
is dropped unread and counted as unparsed, and durations go into bounded histograms (see
`summary` in this package). Lines are decoded as UTF-8 with replacement. The summaries read whole
blocks of lines (`scanner`: the lines of no interest are recognised in bulk, the
others parsed one by one), a large plain file in several processes; `events` reads line by line.

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

import json
import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TextIO

from exporter.commands.parse.bulk import is_boring
from exporter.commands.parse.input import (
    CHUNK_BYTES,
    GZIP_MAGIC,
    OVERLONG,
    Child,
    FileRange,
    Readable,
    open_input,
    read_batches,
    read_blocks,
    split_ranges,
)
from exporter.commands.parse.scanner import classify_raw, fold, summarize_block
from exporter.commands.parse.summary import Summary
from exporter.commands.parse.table import render
from exporter.model import Event, EventKind
from exporter.parser import UNPARSED

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
PARALLEL_MIN_BYTES = 32 << 20  # a plain file of at least twice this is split across processes
MAX_WORKERS = 4

Emit = Callable[[int, Event], None]


class ParseOptions(Protocol):
    """What `run_parse` needs of its settings (`exporter.settings.ParseSettings` has it)."""

    @property
    def files(self) -> Sequence[str]: ...

    @property
    def output(self) -> str: ...


def run_parse(settings: ParseOptions) -> int:
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
    try:
        if workers > 1:
            summary.merge(scan_parallel(name, workers))
            return True
        with open_input(name) as stream:
            if emit is None:
                summarize(stream, summary)
            else:
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


def summarize(stream: Readable, summary: Summary, *, chunk_size: int = CHUNK_BYTES) -> None:
    """Fold every line of a stream into `summary`, block by block."""
    for block in read_blocks(stream, chunk_size=chunk_size):
        summary.lines += block.overlong
        summary.unparsed += block.overlong
        summarize_block(block.data, summary, start=block.start, end=block.end)


def scan(batches: Iterator[list[bytes]], *, summary: Summary, emit: Emit | None) -> None:
    """Parse every line into `summary`; `emit(line_number, event)` for each event if given."""
    number = 0
    for lines in batches:
        summary.lines += len(lines)
        for raw in lines:
            number += 1
            if is_boring(raw):
                continue
            result = UNPARSED if raw is OVERLONG else classify_raw(raw)
            fold(summary, result)
            if emit is not None and isinstance(result, Event):
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
    """Summarize a plain file in `workers` processes (this one and forked children), each over a
    range of whole lines. A child that fails has its range read again here."""
    first, *others = split_ranges(path, workers)
    children: list[tuple[tuple[str, int, int], Child]] = []
    try:
        for part in others:
            children.append((part, Child(scan_range, *part)))
        total = scan_range(*first)
        while children:
            part, child = children.pop(0)
            summary = child.result()
            total.merge(summary if isinstance(summary, Summary) else scan_range(*part))
    finally:
        for _, child in children:  # left only after an exception
            child.stop()
    return total


def scan_range(path: str, start: int, end: int) -> Summary:
    """The summary of the lines in bytes [start, end) of a file (a worker process's share)."""
    summary = Summary()
    with open(path, "rb", buffering=0) as f:
        summarize(FileRange(f, start, end), summary)
    return summary


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
    if event.kind is EventKind.SLOW_TRACE:
        record["operation"] = str(event.operation) if event.operation else None
        record["steps"] = {str(step): seconds for step, seconds in event.steps}
    if event.error is not None:
        record["error"] = event.error
    return record
