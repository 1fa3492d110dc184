"""The block scanner (`parse --output summary|json`) gives exactly what parsing every line gives.

The oracle splits the input into lines and runs `classify_raw` (decode, `parse_line`) on every one,
with no pre-filter. The block path deletes the lines of no interest in bulk and parses the rest.
Compared on every captured fixture, on generated corpora mixed with garbage, binary, invalid
UTF-8, truncated JSON, long lines, escapes and lines built to make the loose patterns run into the
next line, and on random input from hypothesis.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.commands.parse import scanner
from exporter.commands.parse.bulk import BLOCK_PATTERNS
from exporter.commands.parse.scanner import MAX_LINE_BYTES, classify_raw, summarize_block
from exporter.commands.parse.summary import Summary
from exporter.model import Event, EventKind
from exporter.parser.prefix import EMBEDDED_MIN_LENGTH
from exporter.parser.text import STARTS
from exporter.parser.zap import HANDLERS, PREFIXES
from tests.support.parse_corpus import (
    CAPNSLOG_INFO,
    FIXTURES,
    INFO,
    KUBELET,
    assert_same,
    corpus,
    deleted_by,
    forms,
    garbage,
    mutated,
)


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


def test_generated_corpus_with_garbage(tmp_path: Path) -> None:
    data = corpus(tmp_path, 6000, seed=11)
    want = assert_same(data, chunk_sizes=(1 << 20, 65536, 4093))
    assert want["lines"]["unparsed"] > 100
    assert want["events_by_kind"]["slow_request"] > 50
    assert_same(data + b"\n" + b"x" * (MAX_LINE_BYTES + 1) + b"\n" + KUBELET + INFO)


def test_each_garbage_line_alone() -> None:
    for line in garbage(random.Random(3)):
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


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(mutated(), st.binary(max_size=80)), max_size=40),
    st.sampled_from([b"", b"\n"]),
    st.integers(1, 300),
)
def test_random_input_same_as_line_by_line(lines: list[bytes], end: bytes, chunk: int) -> None:
    assert_same(b"\n".join(lines) + end, chunk_sizes=(1 << 20, chunk))


def test_without_the_extension_the_switch_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """An install without a compiler: the import fails and the patterns do all the work."""
    monkeypatch.setitem(sys.modules, "exporter.commands.parse._shapes", None)
    assert scanner._accelerator() is None
    monkeypatch.setattr(scanner, "_undeleted", None)
    summary = Summary()
    scanner.summarize_block(b"\n" + KUBELET + INFO + b"\nkept", summary)
    assert (summary.lines, summary.unparsed) == (2, 1)
