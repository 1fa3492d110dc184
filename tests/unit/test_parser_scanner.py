"""The block scanner (`parse --output summary|json`) gives exactly what parsing every line gives.

The oracle splits the input into lines and runs `classify_raw` (decode, `parse_line`) on every one,
with no pre-filter. The block path deletes the lines of no interest in bulk and parses the rest.
Compared on every captured fixture, on generated corpora mixed with garbage, binary, invalid
UTF-8, truncated JSON, long lines, escapes and lines built to make the loose patterns run into the
next line, and on random input from hypothesis.
"""

from __future__ import annotations

import importlib.util
import io
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.commands.parse import scanner
from exporter.commands.parse.bulk import BLOCK_PATTERNS
from exporter.commands.parse.command import summarize
from exporter.commands.parse.scanner import MAX_LINE_BYTES, classify_raw, fold, summarize_block
from exporter.commands.parse.summary import Summary
from exporter.model import Event, EventKind
from exporter.parser.prefix import EMBEDDED_MIN_LENGTH
from exporter.parser.text import STARTS
from exporter.parser.zap import HANDLERS, PREFIXES

REPO = Path(__file__).resolve().parents[2]
FIXTURES = sorted((REPO / "tests" / "fixtures").glob("etcd-*/*.log"))
KUBELET = b"2026-01-05T10:00:00.160517123Z "
INFO = (
    b'{"level":"info","ts":"2026-01-05T10:00:00.160517Z","caller":"mvcc/index.go:214",'
    b'"msg":"compact tree index","revision":7}'
)
CAPNSLOG_INFO = b"2019-06-25 08:47:33.191089 I | etcdserver: published {Name:a} to cluster"


def oracle(data: bytes) -> Summary:
    """Every line classified on its own, as the line-by-line reader does."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    summary = Summary(lines=len(lines))
    for raw in lines:
        fold(summary, classify_raw(raw))
    return summary


def by_blocks(data: bytes, chunk_size: int = 1 << 20) -> Summary:
    summary = Summary()
    summarize(io.BytesIO(data), summary, chunk_size=chunk_size)
    return summary


def assert_same(data: bytes, *, chunk_sizes: tuple[int, ...] = (1 << 20,)) -> dict[str, Any]:
    want = oracle(data).as_json()
    for size in chunk_sizes:
        assert by_blocks(data, size).as_json() == want, f"chunk size {size}"
    return want


def deleted_by(pattern: Any, line: bytes) -> bool:
    """Whether a block pattern deletes `line` when it is a block of its own."""
    return pattern.subn(b"", b"\n" + line)[1] == 1


def forms() -> list[Any]:
    """Every block pattern, loose and strict."""
    return [p for bp in BLOCK_PATTERNS for p in (bp.pattern, bp.strict) if p is not None]


def bench_module() -> Any:
    spec = importlib.util.spec_from_file_location("parse_bench", REPO / "bench" / "parse_bench.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("log", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_fixture_same_as_line_by_line(log: Path) -> None:
    data = log.read_bytes()
    want = assert_same(data, chunk_sizes=(1 << 20, 4096, 997))
    assert want["lines"]["read"] == len(data.splitlines())
    prefixed = b"".join(KUBELET + line + b"\n" for line in data.splitlines())
    assert_same(prefixed, chunk_sizes=(1 << 20, 1500))


def test_fixture_lines_each_pattern_is_sound() -> None:
    """A line any pattern (loose or strict) deletes on its own is one parse_line finds nothing in;
    and the patterns do delete most of the lines of no interest."""
    deleted = kept_none = 0
    kinds: set[str] = set()
    for log in FIXTURES:
        for line in log.read_bytes().splitlines():
            for candidate in (line, KUBELET + line):
                result = classify_raw(candidate)
                if isinstance(result, Event):
                    kinds.add(result.kind)
                hits = [p.pattern for p in forms() if deleted_by(p, candidate)]
                if hits:
                    deleted += 1
                    assert result is None, (hits, candidate)
                elif result is None:
                    kept_none += 1
    assert deleted > 2 * kept_none  # kept: mostly raft and grpc-go lines
    assert {EventKind.SLOW_REQUEST, EventKind.SLOW_FDATASYNC, EventKind.LEADER_CHANGE} <= kinds


def _zap(msg: str, level: str = "info") -> bytes:
    return (
        f'{{"level":"{level}","ts":"2026-01-05T10:00:00.160517Z","caller":"x/y.go:1",'
        f'"msg":"{msg}","took":"1s","expected-duration":"1s","duration":"1s"}}'
    ).encode()


def test_messages_of_interest_are_never_deleted() -> None:
    """Every zap message of interest (exact, or a prefix: trace, raft.node) and every capnslog
    message start is kept for parse_line, at every level, with and without the kubelet prefix."""
    lines = [_zap(msg, level) for msg in HANDLERS for level in ("info", "warn", "debug")]
    lines += [_zap(prefix + "1 x", level) for prefix in PREFIXES for level in ("info", "warn")]
    lines += [
        f"2019-06-25 08:47:33.191089 {level} | etcdserver: {start} x".encode()
        for start in STARTS
        for level in "WEC"
    ]
    lines += [b"2019-06-25 08:47:33.191089 I | raft: raft.node: 1 elected leader 2 at term 3"]
    assert isinstance(classify_raw(lines[-1]), Event)
    for line in lines:
        for candidate in (line, KUBELET + line):
            assert not any(deleted_by(p, candidate) for p in forms()), candidate
    # the same shapes with a message of no interest are deleted
    assert deleted_by(BLOCK_PATTERNS[0].pattern, KUBELET + _zap("compact tree index"))
    assert deleted_by(BLOCK_PATTERNS[3].pattern, CAPNSLOG_INFO)


def _longest_zap(level: bytes, logger: bool, tail: int) -> bytes:
    head = KUBELET + b'{"level":"' + level + b'","ts":"' + b"t" * 64 + b'",'
    head += b'"logger":"' + b"l" * 32 + b'",' if logger else b""
    head += b'"caller":"' + b"c" * 200 + b'","msg":"' + b"m" * 400 + b'"'
    return head + b"x" * tail + b"}\r"


def test_deleted_lines_are_shorter_than_the_embedded_prefix_limit() -> None:
    """No pattern deletes a line a kubelet prefix could be stripped from (parse_line would strip
    it from a line of 2048 characters or more), whatever its fields."""
    zap = [bp for bp in BLOCK_PATTERNS if bp.strict is not None]
    for pattern in [p for bp in zap for p in (bp.pattern, bp.strict) if p is not None]:
        longest = 0
        for level, logger in [(b"info", False), (b"error", True)]:
            for tail in range(1000, 1500):
                line = _longest_zap(level, logger, tail)
                if deleted_by(pattern, line) or deleted_by(pattern, line[len(KUBELET) :]):
                    longest = max(longest, len(line))
        assert 1900 < longest < EMBEDDED_MIN_LENGTH
    capnslog = [
        prefix + CAPNSLOG_INFO + b"a" * size for prefix in (b"", KUBELET) for size in range(2100)
    ]
    deleted = [len(line) for line in capnslog if deleted_by(BLOCK_PATTERNS[3].pattern, line)]
    assert 1900 < max(deleted) < EMBEDDED_MIN_LENGTH


def _garbage(rng: random.Random) -> list[bytes]:
    """Lines of every awkward kind, including near-misses of the bulk patterns."""
    info = KUBELET + INFO
    binary = rng.randbytes(300).replace(b"\n", b"")
    return [
        b"",
        b" ",
        b"}",
        b"garbage",
        binary,
        info.replace(b"compact", b"comp\xc3\x28act"),  # invalid UTF-8 in the message
        info.replace(b"mvcc", b"\xff\xfe"),
        info[:-1],  # truncated
        info[: len(info) // 2],
        info + b"\r",
        info + b" ",
        info.replace(b"compact tree index", b'compact \\"tree\\" index'),  # escape in msg
        info.replace(b"compact tree index", b"slow\\u0020fdatasync"),  # an event, escaped
        info.replace(b"mvcc/index.go", b"mvcc\\x/index.go"),  # invalid escape in caller
        info.replace(b'"ts":"2026', b'"ts":"\\u0032026'),
        info.replace(b'"revision":7', b'"revision":"\\\\"'),  # backslash in the tail only
        info.replace(b'"level":"info"', b'"level":"warn"'),
        info.replace(b'"level":"info"', b'"level":"INFO"'),
        info.replace(b'"ts":"2026-01-05T10:00:00.160517Z"', b'"ts":1568166948.8119395'),
        info.replace(b'"caller"', b'"logger":"raft","caller"'),
        info.replace(b"2026-01-05T10:00:00.1", b"2026-01-05T10:00:00.x"),  # bad prefix digit
        info.replace(b'"msg":"compact tree index"', b'"msg":"trace[1] x","duration":"2s"'),
        KUBELET + b'{"level":"info","ts":"2026',  # unclosed value: the loose bait, then ...
        b'","caller":"x","msg":"y"}',  # ... a line that closes it
        KUBELET + b'{"level":"info","ts":"a","caller":"b","msg":"',
        b'c","x":1}',
        info[:-1] + b',"pad":"' + b"p" * (EMBEDDED_MIN_LENGTH - len(info)) + b'"}',  # 2048+
        info[:-1] + b',"pad":"' + b"p" * 3000 + b'"}',
        # a long line, split by the runtime: parse_line strips the inner prefix, finds an event
        info.replace(b"compact tree index", b"slow " + KUBELET + b"fdatasync")[:-1]
        + b',"took":"2s","expected-duration":"1s","pad":"'
        + b"p" * EMBEDDED_MIN_LENGTH
        + b'"}',
        KUBELET + b"2019-06-25 08:47:33.191089 I | etcdserver: ok",
        b"2019-06-25 08:47:33.191089 [pkg_logger.go:114] D | rafthttp: x",
        b"2019-06-25 08:47:33.191089 W | etcdserver: request ignored",
        b"2019-06-25 08:47:33.191089 W | etcdserver: read-only range nope",
        b"2019-06-25 08:47:33.191089 N | raft.node: 1 elected leader 2 at term 3",
        b"2019-06-25 08:47:33.191089 I | "
        + b"p" * 70
        + b": raft.node: 1 elected leader 2 at term 3",
        b"2019-06-25 08:47:33.191089 X | etcdserver: unknown level",
        b"2019-06-25 08:47:33.19108 I | etcdserver: short fraction",
        b"raft2022/09/06 07:21:50 INFO: raft.node: 1 elected leader 2 at term 3",
        b"Dec 09 23:19:56 host etcd[16048]: " + INFO,
        b"WARNING: 2024/01/01 00:00:00 grpc: x",
        b"2024-04-22T17:18:03.213+0800\tINFO\tetcdserver/server.go:1\tready",
    ]


def _corpus(tmp_path: Path, lines: int, seed: int) -> bytes:
    path = tmp_path / "corpus.log"
    bench_module().generate(path, lines, seed=seed)
    good = path.read_bytes().splitlines()
    rng = random.Random(seed)
    for log in FIXTURES:
        good += rng.sample(log.read_bytes().splitlines(), 20)
    bad = _garbage(rng)
    mixed = [rng.choice(bad) if rng.random() < 0.1 else rng.choice(good) for _ in range(lines)]
    return b"\n".join(mixed)


def test_generated_corpus_with_garbage(tmp_path: Path) -> None:
    data = _corpus(tmp_path, 6000, seed=11)
    want = assert_same(data, chunk_sizes=(1 << 20, 65536, 4093))
    assert want["lines"]["unparsed"] > 100
    assert want["events_by_kind"]["slow_request"] > 50
    assert_same(data + b"\n" + b"x" * (MAX_LINE_BYTES + 1) + b"\n" + KUBELET + INFO)


def test_each_garbage_line_alone() -> None:
    for line in _garbage(random.Random(3)):
        for data in (line, line + b"\n", KUBELET + INFO + b"\n" + line + b"\n" + INFO):
            assert_same(data, chunk_sizes=(1 << 20, 7))


def test_loose_patterns_fall_back_to_strict() -> None:
    """The two ways the loose form could be wrong are caught and the strict form used."""
    crossing = (
        KUBELET + b'{"level":"info","ts":"2026\n",\n"caller":"x","msg":"y"}\n' + KUBELET + INFO
    )
    escaped = b"\n".join([KUBELET + INFO] * 50 + [KUBELET + INFO.replace(b"mvcc", b"m\\x")])
    tails = b"\n".join([KUBELET + INFO.replace(b":7}", b':"\\\\"}')] * 50)  # most lines: over limit
    for data in (crossing, escaped, tails):
        assert_same(data)
    summary = Summary()
    summarize_block(b"\n" + escaped, summary)
    assert summary.unparsed == 1


def test_many_backslash_lines_use_the_byte_count(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = scanner._lines_with_backslash

    def spy(data: bytes, start: int, end: int, *, limit: int) -> int | None:
        found = real(data, start, end, limit=limit)
        calls.append(-1 if found is None else found)
        return found

    monkeypatch.setattr(scanner, "_lines_with_backslash", spy)
    monkeypatch.setattr(scanner, "_undeleted", None)  # BLOCK_PATTERNS[0] in re, not in C
    data = b"\n".join([KUBELET + INFO.replace(b":7}", b':"\\\\"}')] * 40)
    assert_same(data)
    assert -1 in calls


LINES = st.sampled_from(
    [KUBELET + INFO, INFO, CAPNSLOG_INFO, *_garbage(random.Random(5))]
    + [line for log in FIXTURES[:3] for line in log.read_bytes().splitlines()[:40]]
)
EDITS = st.sampled_from([b'"', b"\\", b"\n", b"}", b"\r", b"\xff", b"0", b" ", b"{"])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    line = draw(LINES)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(line)))
        cut = draw(st.integers(at, min(len(line), at + 8)))
        line = line[:at] + draw(EDITS) + line[cut:]
    return line


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(mutated(), st.binary(max_size=80)), max_size=40),
    st.sampled_from([b"", b"\n"]),
    st.integers(1, 300),
)
def test_random_input_same_as_line_by_line(lines: list[bytes], end: bytes, chunk: int) -> None:
    assert_same(b"\n".join(lines) + end, chunk_sizes=(1 << 20, chunk))


def test_bench_corpus_is_mostly_deleted_in_bulk(tmp_path: Path) -> None:
    """The speed this is for: only the events are left for parse_line."""
    path = tmp_path / "corpus.log"
    counts = bench_module().generate(path, 3000, seed=2)
    data = path.read_bytes()
    left, lines = scanner._delete(BLOCK_PATTERNS[0], b"\n" + data[:-1], 0, len(data), 3000)
    assert lines == counts["request"] + counts["fdatasync"]
    assert left.count(b"\n") == lines
