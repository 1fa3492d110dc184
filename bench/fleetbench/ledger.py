"""What the simulator wrote into each member's log, and the comparison with what the exporter
counted: lost and double-counted lines, per member.

The simulator keeps the ledger (every line per member, slow requests per member and operation,
as the exporter labels the operation); the harness reads it together with the exporter's
`/metrics` at two quiet moments (log writing paused, the exporter caught up) and compares the
differences, so that whatever was written before the exporter followed a log does not count.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.fleetbench.loglines import Line

P = "etcd_latency_"
SLOW = (P + "slow_requests_total{").encode()
READ = (P + "exporter_log_lines_read_total{").encode()
_LABEL = re.compile(rb'(namespace|pod|operation)="((?:[^"\\]|\\.)*)"')

# member key ("namespace/pod") → count
PerMember = dict[str, int]
# member key → operation → count
PerOperation = dict[str, dict[str, int]]


def member_key(namespace: str, pod: str) -> str:
    """The ledger's name of a member."""
    return f"{namespace}/{pod}"


@dataclass
class Ledger:
    """Lines written per member, and slow requests per member and operation (simulator side)."""

    lines: Counter[str] = field(default_factory=Counter)
    slow: dict[str, Counter[str]] = field(default_factory=dict)

    def record(self, key: str, lines: Iterable[Line]) -> None:
        """Count lines written to member `key`'s log."""
        n = 0
        ops: Counter[str] | None = None
        for line in lines:
            n += 1
            if line.operation is not None:
                if ops is None:
                    ops = self.slow.setdefault(key, Counter())
                ops[line.operation] += 1
        self.lines[key] += n

    def as_json(self) -> dict[str, Any]:
        """Both tables as plain dicts."""
        return {"lines": dict(self.lines), "slow": {k: dict(v) for k, v in self.slow.items()}}


@dataclass(frozen=True)
class Counted:
    """What the exporter's /metrics says: slow requests per member and operation (summed over
    the other labels), and log lines read per member."""

    slow: PerOperation
    lines: PerMember


def counted(body: bytes) -> Counted:
    """The exporter's slow-request and lines-read counters from a /metrics body.

    A line scan of two families, not a parse of 50 MB of text: the other families are skipped by
    their first bytes.
    """
    slow: dict[str, Counter[str]] = {}
    lines: dict[str, int] = {}
    for raw in body.split(b"\n"):
        if raw.startswith(SLOW):
            labels, value = _labels_value(raw)
            key = member_key(labels.get("namespace", ""), labels.get("pod", ""))
            slow.setdefault(key, Counter())[labels.get("operation", "")] += int(value)
        elif raw.startswith(READ):
            labels, value = _labels_value(raw)
            key = member_key(labels.get("namespace", ""), labels.get("pod", ""))
            lines[key] = lines.get(key, 0) + int(value)
    return Counted({k: dict(v) for k, v in slow.items()}, lines)


def merged(readings: Sequence[Counted]) -> Counted:
    """The counters of several replicas (shards: each member on one of them) as one reading."""
    slow: dict[str, Counter[str]] = {}
    lines: dict[str, int] = {}
    for reading in readings:
        for key, per_op in reading.slow.items():
            slow.setdefault(key, Counter()).update(per_op)
        for key, count in reading.lines.items():
            lines[key] = lines.get(key, 0) + count
    return Counted({k: dict(v) for k, v in slow.items()}, lines)


def _labels_value(raw: bytes) -> tuple[dict[str, str], float]:
    close = raw.index(b"} ")  # the label values here (names, operations) hold no "} "
    labels = {k.decode(): v.decode() for k, v in _LABEL.findall(raw[:close])}
    return labels, float(raw[close + 2 :].split()[0])


@dataclass(frozen=True)
class Difference:
    """Per member: lines sent but not counted (lost) and counted but not sent (double)."""

    lost: PerMember
    double: PerMember

    @property
    def lost_total(self) -> int:
        """All lost lines."""
        return sum(self.lost.values())

    @property
    def double_total(self) -> int:
        """All lines counted more often than sent."""
        return sum(self.double.values())


def compare_slow(
    sent: tuple[PerOperation, PerOperation], seen: tuple[PerOperation, PerOperation]
) -> Difference:
    """Slow requests sent between two ledger readings against the counter increase between the
    matching /metrics readings, per member and operation (a loss on one operation is not hidden
    by a double count on another)."""
    lost: Counter[str] = Counter()
    double: Counter[str] = Counter()
    before_sent, after_sent = sent
    before_seen, after_seen = seen
    for key in set(after_sent) | set(after_seen):
        ops = set(after_sent.get(key, {})) | set(after_seen.get(key, {}))
        for op in ops:
            d_sent = _get(after_sent, key, op) - _get(before_sent, key, op)
            d_seen = _get(after_seen, key, op) - _get(before_seen, key, op)
            if d_sent > d_seen:
                lost[key] += d_sent - d_seen
            elif d_seen > d_sent:
                double[key] += d_seen - d_sent
    return Difference(dict(lost), dict(double))


def compare_lines(
    sent: tuple[PerMember, PerMember], seen: tuple[PerMember, PerMember]
) -> Difference:
    """Every line sent between two readings against the exporter's lines-read increase."""
    lost: dict[str, int] = {}
    double: dict[str, int] = {}
    for key in set(sent[1]) | set(seen[1]):
        d_sent = sent[1].get(key, 0) - sent[0].get(key, 0)
        d_seen = seen[1].get(key, 0) - seen[0].get(key, 0)
        if d_sent > d_seen:
            lost[key] = d_sent - d_seen
        elif d_seen > d_sent:
            double[key] = d_seen - d_sent
    return Difference(lost, double)


def _get(table: Mapping[str, Mapping[str, int]], key: str, op: str) -> int:
    return table.get(key, {}).get(op, 0)


def sent_slow(table: PerOperation, keys: Iterable[str]) -> int:
    """Slow requests of `keys` in a ledger reading."""
    return sum(sum(table.get(k, {}).values()) for k in keys)
