"""etcd's request traces (zap `trace[<id>] <operation>`, info level, 3.4+): where a slow request's
time went. Pure.

etcd logs a trace when a request took longer than 100 ms, with `duration` (the whole request) and
`steps`, each `trace[<id>] '<text>' [<fields> ](duration: <d>)`: the time since the step before,
listed only when it is above 100 ms / (number of steps + 1). A step text can hold an apostrophe
(`get key's previous created_revision and leaseID`), so the text is what lies between the first
quote and the last `' ` before `(duration: `, not a quoted string.

Step texts map to a small fixed set (`exporter.model.TraceStep`), so the step label stays
bounded whatever a new etcd logs; a text not in `STEPS` is `other`. The table follows where etcd
spends the time, as measured on real etcd 3.4 and 3.5 (tests/fixtures/etcd-3.*-zap/trace-*.log):

- `raft`: waiting for the members. `process raft request` is the proposal until it is applied,
  which includes the leader's WAL fsync, so under a slow disk it grows too: the verdict weighs it
  against the WAL fsync latency (exporter/diagnosis/verdict.py), never alone.
- `index`: the in-memory key index. Under a slow disk these steps grow as well (they wait for the
  backend's lock while a commit runs: 21-22 % of the traced time in the capture, ~0 % under a
  delayed peer), which is what tells a slow disk from a slow network.
- `bolt`: the bbolt backend. `marshal mvccpb.KeyValue` is counted here: it runs inside the
  backend's write transaction and waits on the same lock (13-14 % under a slow disk, ~0 % under
  a delayed peer).
- `apply`: evaluating and applying the request (compare, filter, assemble, compaction steps).
- `auth`: authentication metadata.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from exporter.model import Event, EventKind, Operation, TraceStep
from exporter.parser.events import BadLine, Result, duration

R, IX, B, A = TraceStep.RAFT, TraceStep.INDEX, TraceStep.BOLT, TraceStep.APPLY

STEPS: Mapping[str, TraceStep] = {
    # raft: agreement among the members, the proposal, the read index
    "agreement among raft nodes before linearized reading": R,
    "process raft request": R,
    "read index received": R,
    "applied index is now lower than readState.Index": R,
    # index: the in-memory key index
    "range keys from in-memory index tree": IX,
    "count revisions from in-memory index tree": IX,
    "get key's previous created_revision and leaseID": IX,
    # bolt: the backend
    "range keys from bolt db": B,
    "marshal mvccpb.KeyValue": B,
    "store kv pair into bolt db": B,
    "physically apply compaction": B,
    # apply: evaluating and applying the request
    "compare": A,
    "check requests": A,
    "get previous kv pair": A,
    "attach lease to kv pair": A,
    "filter and sort the key-value pairs": A,
    "assemble the response": A,
    "check and update compact revision": A,
    "schedule compaction": A,
    # auth
    "get authentication metadata": TraceStep.AUTH,
}

OPERATIONS: Mapping[str, Operation] = {
    "range": Operation.RANGE,
    "put": Operation.PUT,
    "delete_range": Operation.DELETE_RANGE,
    "transaction": Operation.TXN,
    "compact": Operation.COMPACTION,
    "linearizableReadLoop": Operation.READ_INDEX,
}

_STEP = re.compile(r"trace\[\d+\] '(.*)' (?:.*? )?\(duration: ([^()]*)\)", re.ASCII | re.DOTALL)
# `_STEP` over the text of a JSON list of strings without escapes (`"…","…"`), for `findall`:
# each match is one item's, with the groups `_STEP.fullmatch` gives on that item (an item holds
# no quote, so `[^"]` keeps the match inside it and the closing quote stands for its end), and
# an item `_STEP` does not match gives none.
STEPS_IN_LIST = re.compile(
    r'"trace\[\d+\] \'([^"]*)\' (?:[^"]*? )?\(duration: ([^()"]*)\)"', re.ASCII
)
_ORDER = {step: n for n, step in enumerate(TraceStep)}


def step_of(text: str) -> TraceStep:
    """The step a trace step text stands for; `other` for a text not in the table."""
    return STEPS.get(text, TraceStep.OTHER)


def operation_of(msg: str) -> Operation:
    """`trace[123] range` → range; an operation not in the table is `other`."""
    _, _, name = msg.partition("] ")
    return OPERATIONS.get(name.strip(), Operation.OTHER)


def steps_of(steps: object) -> tuple[tuple[TraceStep, float], ...]:
    """Seconds per step of a trace's `steps` field, each step once in `TraceStep` order.

    A missing field is no steps; a field that is not a list of strings is a BadLine; a string
    of another shape is left out (its duration cannot be read)."""
    if steps is None:
        return ()
    if not isinstance(steps, list):
        raise BadLine("trace steps are not a list")
    read: list[tuple[str, str]] = []
    for item in steps:
        if not isinstance(item, str):
            raise BadLine(f"not a trace step: {item!r}")
        m = _STEP.fullmatch(item)
        if m is not None:
            read.append((m.group(1), m.group(2)))
    return step_totals(read)


def step_totals(read: Sequence[tuple[str, str]]) -> tuple[tuple[TraceStep, float], ...]:
    """Seconds per step of (step text, duration text) pairs, each step once in `TraceStep`
    order."""
    if len(read) == 1:  # most traces list one step
        ((text, took),) = read
        return ((step_of(text), duration(took)),)
    totals: dict[TraceStep, float] = {}
    for text, took in read:
        step = step_of(text)
        totals[step] = totals.get(step, 0.0) + duration(took)
    if len(totals) < 2:  # none, or steps of one kind: nothing to order
        return tuple(totals.items())
    if len(totals) == 2:  # two (most of the rest)
        first, second = totals.items()
        return (first, second) if _ORDER[first[0]] < _ORDER[second[0]] else (second, first)
    return tuple(sorted(totals.items(), key=lambda pair: _ORDER[pair[0]]))


def trace_event(
    fields: Mapping[str, object], operation: Operation, time: datetime | None
) -> Result:
    """The slow_trace event of a trace line of `operation` (`operation_of` its message): its
    duration and time per step."""
    return Event(
        EventKind.SLOW_TRACE,
        time,
        duration(fields.get("duration")),
        operation=operation,
        steps=steps_of(fields.get("steps")),
    )
