"""diagnose's log reading: the last `--since` of a file, through the real parser, counted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exporter.commands.diagnose import logread
from exporter.commands.diagnose.logread import LogReadError, read_events, within
from exporter.diagnosis.evidence import events_evidence
from exporter.model import CommandLogSpec, Event, EventKind, FileLogSpec

NOW = datetime.now(UTC).replace(microsecond=0)


def zap(ago: float, msg: str, **fields: object) -> str:
    ts = (NOW - timedelta(seconds=ago)).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return json.dumps({"level": "warn", "ts": ts, "caller": "x.go:1", "msg": msg, **fields})


def slow(ago: float, op: str = "put", key: str = "/registry/pods/ns/p") -> str:
    if op == "put":
        request = f'header:<ID:1 > put:<key:"{key}" value_size:2 >'
        prefix = ""
    else:
        request, prefix = f'key:"{key}" ', "read-only range "
    return zap(ago, "apply request took too long", took="335.1ms", **{
        "expected-duration": "100ms", "prefix": prefix, "request": request, "response": "size:4",
    })  # fmt: skip


def capnslog(ago: float, text: str) -> str:
    local = (NOW - timedelta(seconds=ago)).astimezone()  # capnslog writes local time
    return local.strftime("%Y-%m-%d %H:%M:%S.%f") + " " + text


LINES = [
    slow(7300),  # outside a 1 h window
    slow(3000),
    slow(2000),
    slow(1000, "range", "/registry/configmaps/ns/c"),
    zap(900, "slow fdatasync", took="1.1s", **{"expected-duration": "1s"}),
    zap(
        800,
        "waiting for ReadIndex response took too long, retrying",
        **{"sent-request-id": 1, "retry-timeout": "500ms"},
    ),
    capnslog(
        700,
        "W | etcdserver: failed to send out heartbeat on time (exceeded the 100ms "
        "timeout for 104.392067ms, to 92ead5a9687d4550)",
    ),
    zap(
        600,
        "raft.node: 91bc3c398fb3c146 elected leader 91bc3c398fb3c146 at term 3",
        logger="raft",
        level="info",
    ),
    "\x00\xff garbage that is no etcd line",
    # a kubelet CRI log file line around a zap line
    (NOW - timedelta(seconds=500)).strftime("%Y-%m-%dT%H:%M:%S.%f000Z") + " stderr F " + slow(500),
]


async def read(path: Path, since: float = 3600) -> list[Event]:
    return await read_events(FileLogSpec(str(path)), since=since, now=NOW, kube=None,
                             read_timeout=5)  # fmt: skip


async def test_file_window_is_counted_by_kind_operation_and_resource(tmp_path: Path) -> None:
    log = tmp_path / "etcd.log"
    log.write_text("\n".join(LINES) + "\n")
    evidence = events_evidence(await read(log), scope="in the last 1h")
    assert evidence.slow_requests == 4  # three plain lines and the CRI one; not the old one
    assert (evidence.top_operation, evidence.top_resource, evidence.top_count) == ("put", "pods", 3)
    assert evidence.slow_fdatasync == 1
    assert evidence.read_index == 1
    assert evidence.heartbeat_late == 1
    assert evidence.leader_changes == 1
    assert evidence.read is True
    narrow = events_evidence(await read(log, since=1500), scope="in the last 25m")
    assert narrow.slow_requests == 2


async def test_a_tail_read_skips_the_cut_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "etcd.log"
    log.write_text(slow(30) + "\n" + slow(20) + "\n")
    monkeypatch.setattr(logread, "MAX_FILE_BYTES", len(slow(20)) + 10)
    events = await read(log)
    assert len(events) == 1  # the first line was cut by the seek and is not parsed


def test_undated_events_take_the_time_before_them() -> None:
    old = Event(EventKind.SLOW_REQUEST, time=NOW - timedelta(hours=2))
    new = Event(EventKind.SLOW_REQUEST, time=NOW)
    undated = Event(EventKind.LEADER_CHANGE)
    cutoff = NOW - timedelta(hours=1)
    assert list(within([undated, old, undated, new, undated], cutoff)) == [new, undated]


async def test_unreadable_sources_are_reported_not_raised(tmp_path: Path) -> None:
    with pytest.raises(LogReadError, match="FileNotFoundError"):
        await read(tmp_path / "missing.log")
    with pytest.raises(LogReadError, match="followed only"):
        await read_events(CommandLogSpec(("journalctl", "-f")), since=60, now=NOW, kube=None,
                          read_timeout=5)  # fmt: skip
    with pytest.raises(LogReadError, match="standard input"):
        await read_events(FileLogSpec("-"), since=60, now=NOW, kube=None, read_timeout=5)
