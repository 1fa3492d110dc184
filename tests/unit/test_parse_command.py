"""`etcd-latency-exporter parse`: reading (chunks, gzip, stdin), outputs, exit codes."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import random
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest

from exporter.cli import load
from exporter.commands.parse import command as parse_command
from exporter.commands.parse.command import (
    OVERLONG,
    read_batches,
    read_blocks,
    run_parse,
    scan,
    scan_parallel,
    scan_range,
    split_ranges,
    summarize,
)
from exporter.commands.parse.scanner import MAX_LINE_BYTES
from exporter.commands.parse.summary import Summary
from exporter.settings import ENV_PREFIX, ParseSettings

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "etcd-3.4-capnslog" / "single.log"

SLOW_RANGE = (
    '2020-09-03 06:00:07.556157 W | etcdserver: read-only range request "key:\\"/registry/'
    'deployments/shoot--a--b/kube-apiserver\\" " with result "range_response_count:1 size:9566" '
    "took too long (13.95374909s) to execute"
)
SLOW_TXN = (
    '{"level":"warn","ts":"2024-04-22T17:18:03.213763Z","caller":"etcdserver/util.go:170","msg":'
    '"apply request took too long","took":"300ms","expected-duration":"100ms","prefix":"",'
    '"request":"header:<ID:1 > txn:<compare:<target:MOD key:\\"/registry/leases/a/b\\" > >",'
    '"response":"","error":"context deadline exceeded"}'
)
FSYNC = (
    "2019-03-06T19:00:59.117515322Z "
    '{"level":"warn","ts":"2023-03-03T01:45:11.871Z","caller":"wal/wal.go:805","msg":"slow '
    'fdatasync","took":"1.044022245s","expected-duration":"1s"}'
)
INFO = '{"level":"info","ts":"2023-03-03T01:45:11.871Z","caller":"x/y.go:1","msg":"hello"}'
LOG = "\n".join([INFO, SLOW_RANGE, "garbage", INFO, SLOW_TXN, "", FSYNC]) + "\n"


def batches(data: bytes, **kwargs: int) -> list[bytes]:
    return [line for batch in read_batches(io.BytesIO(data), **kwargs) for line in batch]


def test_read_batches_across_chunks() -> None:
    data = b"one\ntwo\r\nthree\n\nfour"
    for chunk_size in (1, 2, 3, 5, 100):
        assert batches(data, chunk_size=chunk_size) == [b"one", b"two\r", b"three", b"", b"four"]
    assert batches(b"") == []
    assert batches(b"\n") == [b""]


def test_read_batches_drops_overlong_lines() -> None:
    data = b"short\n" + b"x" * 50 + b"\nafter\n" + b"y" * 30
    got = batches(data, chunk_size=7, limit=20)
    assert got == [b"short", OVERLONG, b"after", OVERLONG]
    assert got[1] is OVERLONG


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_parse(load(ParseSettings, "parse", args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "etcd.log"
    path.write_text(LOG, encoding="utf-8")
    return path


def test_events_output(log_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--output", "events", str(log_file)], capsys)
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert records == [
        {
            "line": 2,
            "kind": "slow_request",
            "time": "2020-09-03T06:00:07.556157+00:00",
            "duration_seconds": 13.95374909,
            "operation": "range",
            "read_only": True,
            "resource": "deployments",
        },
        {
            "line": 5,
            "kind": "slow_request",
            "time": "2024-04-22T17:18:03.213763+00:00",
            "duration_seconds": 0.3,
            "operation": "txn",
            "read_only": False,
            "resource": "leases",
            "error": "context deadline exceeded",
        },
        {
            "line": 7,
            "kind": "slow_fdatasync",
            "time": "2023-03-03T01:45:11.871000+00:00",
            "duration_seconds": 1.044022245,
        },
    ]


def test_events_of_several_files_name_the_file(
    log_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.log"
    other.write_text(FSYNC + "\n", encoding="utf-8")
    _, out, _ = run(["--output", "events", str(log_file), str(other)], capsys)
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["file"], r["line"]) for r in records] == [
        (str(log_file), 2),
        (str(log_file), 5),
        (str(log_file), 7),
        (str(other), 1),
    ]


def test_json_output(log_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--output=json", str(log_file)], capsys)
    doc = json.loads(out)
    assert code == 0
    assert doc["lines"] == {"read": 7, "unparsed": 2, "events": 3}  # "garbage" and ""
    assert doc["events_by_kind"] == {"slow_request": 2, "slow_fdatasync": 1}
    assert doc["slow_requests"]["by_resource"] == {"deployments": 1, "leases": 1}
    assert doc["first_event_time"] == "2020-09-03T06:00:07.556157+00:00"


def test_summary_output(log_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([str(log_file)], capsys)
    assert code == 0
    assert "lines read      7" in out
    assert "slow requests by resource" in out


def test_gzip_told_by_magic_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "etcd.log"  # no .gz extension
    path.write_bytes(gzip.compress(LOG.encode()))
    _, out, _ = run(["--output", "json", str(path)], capsys)
    assert json.loads(out)["lines"]["read"] == 7


def test_truncated_gzip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "etcd.log.gz"
    path.write_bytes(gzip.compress((LOG * 3000).encode())[:-30])  # > one read chunk
    code, out, err = run(["--output", "json", str(path)], capsys)
    assert code == 1
    assert "etcd.log.gz" in err
    assert json.loads(out)["lines"]["read"] > 0


def test_missing_file(log_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run([str(log_file), "/nonexistent/etcd.log"], capsys)
    assert code == 2
    assert out == ""
    assert "cannot open /nonexistent/etcd.log: No such file or directory" in err


def test_binary_junk_and_invalid_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = random.Random(1).randbytes(20_000).replace(b"\n", b"").replace(b"\x1f", b"")
    lines = [junk[i : i + 1000] for i in range(0, len(junk), 1000)]
    broken = SLOW_RANGE.encode().replace(b"deployments", b"deploy\xc3\x28ments")
    path = tmp_path / "junk.log"
    path.write_bytes(b"\n".join([*lines, broken]) + b"\n")
    code, out, _ = run(["--output", "json", str(path)], capsys)
    doc = json.loads(out)
    assert code == 0
    assert doc["lines"] == {"read": len(lines) + 1, "unparsed": len(lines), "events": 1}
    assert doc["slow_requests"]["by_resource"] == {"other": 1}  # "deploy\ufffd(ments"


def test_parallel_scan_equals_sequential(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    path.write_bytes((FIXTURE.read_bytes() + LOG.encode()) * 40)
    ranges = split_ranges(str(path), 3)
    assert ranges[0][1] == 0
    assert ranges[-1][2] == path.stat().st_size
    data = path.read_bytes()
    for (_, _, end), (_, start, _) in itertools.pairwise(ranges):
        assert end == start
        assert data[end - 1 : end] == b"\n"
    sequential = Summary()
    with path.open("rb") as f:
        scan(read_batches(f), summary=sequential, emit=None)
    assert scan_parallel(str(path), 3).as_json() == sequential.as_json()
    assert sequential.lines == data.count(b"\n")


def python_m_exporter(args: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", "parse", *args],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def _event_schema(line: bytes) -> dict[str, object]:
    record = json.loads(line)
    assert set(record) >= {"line", "kind", "time", "duration_seconds"}
    assert isinstance(record["line"], int)
    assert record["line"] >= 1
    assert record["time"] is None or isinstance(record["time"], str)
    assert record["duration_seconds"] is None or isinstance(record["duration_seconds"], float)
    if record["kind"] == "slow_request":
        assert isinstance(record["operation"], str)
        assert isinstance(record["read_only"], bool)
        assert isinstance(record["resource"], str)
    else:
        assert not set(record) & {"operation", "read_only", "resource"}
    return record


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_subprocess_stdin(compress: bool) -> None:
    data = FIXTURE.read_bytes()
    expected = python_m_exporter(["--output", "events", str(FIXTURE)], b"")
    assert expected.returncode == 0, expected.stderr
    done = python_m_exporter(["--output", "events", "-"], gzip.compress(data) if compress else data)
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected.stdout
    records = [_event_schema(line) for line in done.stdout.splitlines()]
    assert {r["kind"] for r in records} >= {"slow_request", "slow_fdatasync", "leader_change"}


def test_subprocess_gz_file(tmp_path: Path) -> None:
    path = tmp_path / "single.log.gz"
    path.write_bytes(gzip.compress(FIXTURE.read_bytes()))
    plain = python_m_exporter(["--output", "json", str(FIXTURE)], b"")
    zipped = python_m_exporter(["--output", "json", str(path)], b"")
    assert zipped.returncode == 0, zipped.stderr
    assert json.loads(zipped.stdout) == json.loads(plain.stdout)
    assert json.loads(zipped.stdout)["lines"]["read"] == len(FIXTURE.read_bytes().splitlines())


def test_subprocess_missing_file() -> None:
    done = python_m_exporter(["/nonexistent/etcd.log"], b"")
    assert done.returncode == 2
    assert b"cannot open /nonexistent/etcd.log" in done.stderr


def blocks(data: bytes, **kwargs: int) -> tuple[list[bytes], int]:
    """The lines of every block read_blocks yields, and the overlong lines it dropped."""
    lines: list[bytes] = []
    dropped = 0
    for block in read_blocks(io.BytesIO(data), **kwargs):
        part = block.data[block.start : block.end]
        assert part[:1] == b"\n" or not part
        lines += part.split(b"\n")[1:]
        dropped += block.overlong
        assert len(block.data) <= max(kwargs.get("chunk_size", 1 << 20), 64) + 64
    return lines, dropped


def test_read_blocks_across_chunks() -> None:
    data = b"one\ntwo\r\nthree\n\nfour"
    for chunk_size in (1, 2, 3, 5, 100):
        assert blocks(data, chunk_size=chunk_size) == (
            [b"one", b"two\r", b"three", b"", b"four"],
            0,
        )
    assert blocks(b"") == ([], 0)
    assert blocks(b"\n") == ([b""], 0)
    assert blocks(b"\n\n", chunk_size=1) == ([b"", b""], 0)


def test_read_blocks_drop_overlong_lines() -> None:
    data = b"short\n" + b"x" * 50 + b"\nafter\n" + b"y" * 30
    for chunk_size in (7, 13):  # lines over the limit that span chunks
        assert blocks(data, chunk_size=chunk_size, limit=20) == ([b"short", b"after"], 2)


def test_summary_of_a_line_longer_than_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "long.log"
    path.write_bytes(FSYNC.encode() + b"\n" + b"\r" * (MAX_LINE_BYTES + 10) + b"\n" + b"x")
    with path.open("rb") as f:
        per_line = Summary()
        scan(read_batches(f), summary=per_line, emit=None)
    doc = per_line.as_json()
    assert doc["lines"] == {"read": 3, "unparsed": 2, "events": 1}
    for chunk_size in (1 << 20, 4096):
        by_blocks = Summary()
        with path.open("rb") as f:
            summarize(f, by_blocks, chunk_size=chunk_size)
        assert by_blocks.as_json() == doc


def test_parallel_child_failure_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.log"
    path.write_bytes((FIXTURE.read_bytes() + LOG.encode()) * 20)
    sequential = scan_range(str(path), 0, path.stat().st_size)
    parent = os.getpid()

    def failing_in_children(*args: Any) -> Summary:
        if os.getpid() != parent:
            raise RuntimeError("child fails")
        return scan_range(*args)

    monkeypatch.setattr(parse_command, "scan_range", failing_in_children)
    assert scan_parallel(str(path), 3).as_json() == sequential.as_json()


def test_parse_from_the_command_line(tmp_path: Path) -> None:
    """`parse FILE` imports neither pydantic nor the daemon; the environment and `--help` go
    through the settings models."""
    output = ParseSettings.model_fields["output"].annotation
    assert set(typing.get_args(output)) == {"summary", "json", "events"}
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(ENV_PREFIX)}
    argv = [sys.executable, "-X", "importtime", "-m", "exporter", "parse", "--output=json"]
    done = subprocess.run(
        [*argv, str(FIXTURE)], capture_output=True, cwd=REPO, timeout=60, check=False, env=env
    )
    assert done.returncode == 0, done.stderr
    imported = {line.split(b"|")[-1].strip() for line in done.stderr.splitlines()}
    unwanted = (b"aiohttp", b"exporter.app", b"exporter.sources", b"exporter.state", b"pydantic")
    assert not {m for m in imported if m.startswith(unwanted)}
    assert b"exporter.commands.parse.command" in imported
    assert json.loads(done.stdout)["lines"]["read"] == len(FIXTURE.read_bytes().splitlines())
    via_env = subprocess.run(
        [sys.executable, "-m", "exporter", "parse", str(FIXTURE)],
        capture_output=True,
        cwd=REPO,
        timeout=60,
        check=False,
        env={**env, ENV_PREFIX + "OUTPUT": "json"},
    )
    assert json.loads(via_env.stdout) == json.loads(done.stdout)
    helped = subprocess.run(
        [sys.executable, "-m", "exporter", "parse", "--help"],
        capture_output=True,
        cwd=REPO,
        timeout=60,
        check=False,
        env=env,
    )
    assert helped.returncode == 0
    assert b"--output {summary,json,events}" in helped.stdout
