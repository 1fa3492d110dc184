"""Every line of the captured real etcd logs, classified exactly as recorded in its expected file.

The fixtures (tests/fixtures/etcd-*/*.log) are stderr of real etcd 3.4.23 (capnslog and zap) and
3.5.1 (zap), captured by tests/fixtures/capture.sh on a disk slowed by strace fault injection,
with Kubernetes-shaped load, and a three-member cluster whose leader was slowed and then killed.

How the expected files were produced and reviewed: `python -m tests.unit.test_parser_fixtures
--write` ran the parser once over each fixture and wrote `<name>.expected.jsonl` (one object per
line: the line number, the kind or null or "unparsed", and the event's fields). Each file was
then reviewed by hand, kind by kind: every line holding a warning (capnslog `W`/`E`, zap
`"level":"warn"`/`"error"`), a raft leadership message or a trace was grepped out of the log and
checked against its entry (the message against the reference catalog, the operation and
resource against the request text, the duration against the text); the remaining lines were
checked to be etcd info lines (null) or non-log output (unparsed). Independently of the expected
files, `test_counts_agree_with_grep` counts each kind with plain text patterns.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.support.parse_corpus import classification

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LOGS = sorted(FIXTURES.glob("etcd-*/*.log"))


def expected_path(log: Path) -> Path:
    return log.with_suffix(".expected.jsonl")


def read_lines(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8", errors="replace").splitlines()


def test_fixtures_exist() -> None:
    names = {f"{p.parent.name}/{p.name}" for p in LOGS}
    assert {
        "etcd-3.4-capnslog/single.log",
        "etcd-3.4-zap/single.log",
        "etcd-3.5-zap/single.log",
    } <= names
    assert any(n.startswith("etcd-3.4-capnslog/cluster-") for n in names)
    assert any(n.startswith("etcd-3.5-zap/cluster-") for n in names)
    for log in LOGS:
        assert expected_path(log).exists(), f"{log.name} has no expected file"


@pytest.mark.parametrize("log", LOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_line(log: Path) -> None:
    expected = [json.loads(x) for x in expected_path(log).read_text().splitlines()]
    lines = read_lines(log)
    assert len(expected) == len(lines)
    for number, line in enumerate(lines, 1):
        got = classification(number, line)
        want = expected[number - 1]
        if got.get("duration_seconds") is not None:
            assert got.pop("duration_seconds") == pytest.approx(want.pop("duration_seconds"))
        assert got == want, f"line {number}: {line[:300]}"


# Text patterns per kind, written from etcd's format strings independently of the parser.
GREP: dict[str, str] = {
    "slow_request": r"took too long \(.*\) to execute\s*$|\"msg\":\"apply request took too long\"",
    "slow_fdatasync": r"sync duration of .*, expected less than|\"msg\":\"slow fdatasync\"",
    "read_index_retry": r"waiting for ReadIndex response took too long, retrying",
    "heartbeat_late": r"failed to send out heartbeat on time",
    "leader_change": r"raft\.node: \S+ (elected leader|changed leader from)",
    "slow_trace": r"\"msg\":\"trace\[\d+\] ",
    "slow_grpc_request": r"\"level\":\"warn\".*\"msg\":\"request stats\"",
    "peer_unhealthy": r"health check for peer .* could not connect|prober detected unhealthy",
    "snapshot_transfer_slow": r"snapshotting (is taking more than|taking too long)",
    "defrag_started": r"\"msg\":\"starting defragment\"|starting to defragment the storage",
    "defrag_finished": r"\"msg\":\"(defragmented|finished defragmenting directory|failed to "
    r"defragment)\"|(finished defragmenting|failed to defragment) the storage backend",
}


@pytest.mark.parametrize("log", LOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_counts_agree_with_grep(log: Path) -> None:
    lines = read_lines(log)
    kinds = [classification(n, line)["kind"] for n, line in enumerate(lines, 1)]
    for kind, pattern in GREP.items():
        grep = sum(1 for line in lines if re.search(pattern, line))
        assert kinds.count(kind) == grep, kind


def test_fixtures_cover_the_kinds_real_etcd_logs_here() -> None:
    kinds: set[str] = set()
    operations: set[str] = set()
    resources: set[str] = set()
    for log in LOGS:
        for n, line in enumerate(read_lines(log), 1):
            c = classification(n, line)
            kinds.add(c["kind"])
            operations.add(c.get("operation") or "")
            resources.add(c.get("resource") or "")
    assert {
        "slow_request",
        "slow_fdatasync",
        "read_index_retry",
        "heartbeat_late",
        "leader_change",
        "slow_trace",
        "slow_grpc_request",
        "peer_unhealthy",
        "snapshot_transfer_slow",
        "defrag_started",
        "defrag_finished",
        None,
    } <= kinds
    assert {"range", "txn", "put", "delete_range", "lease_grant", "lease_revoke"} <= operations
    assert {"compaction", "authenticate", "cluster"} <= operations
    assert {"pods", "deployments", "etcds", "services", "endpoints", "nodes", "other"} <= resources


def write_expected() -> None:
    """Regenerate every expected file from the parser (then review them by hand)."""
    for log in LOGS:
        records = [classification(n, line) for n, line in enumerate(read_lines(log), 1)]
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        expected_path(log).write_text(text, encoding="utf-8")
        print(f"{expected_path(log)}: {len(records)} lines")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.unit.test_parser_fixtures --write")
    write_expected()
