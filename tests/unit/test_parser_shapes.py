"""The C accelerator `commands.parse._shapes` deletes exactly what BLOCK_PATTERNS[0:2] delete.

`undeleted` is compared with the strict forms of the first two block patterns (prefixed and
unprefixed zap info lines of no interest), and the number of lines it counts on the way with
`bytes.count`: line by line on every fixture line, the garbage of the scanner tests, and lines
built at every boundary of the shape; block by block on generated and random input. Then
`summarize_block` is compared with and without it. The extension is optional (`parse` gives the
same results without it, more slowly), so these tests skip where it is not built (no compiler);
`make setup` installs with one, and the image's build fails without it.
"""

from __future__ import annotations

import importlib
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.commands.parse import scanner
from exporter.commands.parse.bulk import (
    BLOCK_PATTERNS,
    KUBELET_SHAPE,
    ZAP_CALLER,
    ZAP_MSG,
    ZAP_TS,
    interesting_starts,
    zap_tail,
)
from exporter.commands.parse.scanner import classify_raw
from tests.support.parse_corpus import (
    FIXTURES,
    INFO,
    KUBELET,
    by_blocks,
    corpus,
    deleted_by,
    garbage,
    mutated,
    oracle,
)

try:
    importlib.import_module("exporter.commands.parse._shapes")
except ImportError:  # pragma: no cover - an install without a compiler
    BUILT = False
else:
    BUILT = True
pytestmark = pytest.mark.skipif(not BUILT, reason="the optional C extension is not built")

STRICT = [bp.strict for bp in BLOCK_PATTERNS[:2]]
STARTS = interesting_starts()
TAIL = zap_tail((b"info",))


def shapes() -> ModuleType:
    return importlib.import_module("exporter.commands.parse._shapes")


def undeleted(data: Any, start: int = 0, end: int | None = None) -> bytes:
    """The C function as the scanner calls it, with the numbers and starts of bulk.py: what it
    keeps of the block, after checking the numbers of lines it counts on the way (of the block,
    and of what it keeps)."""
    shapes()
    assert scanner._undeleted is not None
    end = len(data) if end is None else end
    lines, left, kept = scanner._undeleted(data, start, end)
    assert lines == bytes(data).count(b"\n", start, end)
    assert left == kept.count(b"\n")
    return kept


def by_regex(block: bytes) -> bytes:
    """What the strict forms of BLOCK_PATTERNS[0] and [1] leave of a block, in turn."""
    for pattern in STRICT:
        assert pattern is not None
        block = pattern.sub(b"", block)
    return block


def regex_deletes(line: bytes) -> bool:
    return any(deleted_by(pattern, line) for pattern in STRICT)


def assert_agree(line: bytes) -> bool:
    """The C function keeps the line iff neither strict pattern deletes it; whether deleted."""
    deleted = regex_deletes(line)
    assert undeleted(b"\n" + line) == (b"" if deleted else b"\n" + line), line
    return deleted


def zap(
    ts: bytes = b"2026-01-05T10:00:00.160517Z",
    caller: bytes = b"mvcc/index.go:214",
    msg: bytes = b"compact tree index",
    tail: bytes = b',"revision":7',
    end: bytes = b"}",
    prefix: bytes = KUBELET,
) -> bytes:
    return (
        prefix
        + b'{"level":"info","ts":"'
        + ts
        + b'","caller":"'
        + caller
        + b'","msg":"'
        + msg
        + b'"'
        + tail
        + end
    )


def test_extension_is_built_and_used() -> None:
    module = shapes()
    assert Path(str(module.__file__)).suffix in (".so", ".pyd")
    assert scanner._undeleted is not None
    block = b"\n" + KUBELET + INFO + b"\nkept"
    assert scanner._undeleted(block, 0, len(block)) == (2, 1, b"\nkept")


def test_fixture_and_garbage_lines_agree() -> None:
    lines = [line for log in FIXTURES for line in log.read_bytes().splitlines()]
    lines += garbage(random.Random(3)) + garbage(random.Random(4))
    deleted = kept = 0
    for line in lines:
        for candidate in (line, KUBELET + line, line + b"\r", KUBELET[:-1] + line):
            if assert_agree(candidate):
                deleted += 1
            else:
                kept += 1
    assert deleted > 500
    assert kept > 500


@pytest.mark.parametrize("prefix", [KUBELET, b""], ids=["kubelet", "bare"])
@pytest.mark.parametrize(
    ("field", "longest"), [("ts", ZAP_TS), ("caller", ZAP_CALLER), ("msg", ZAP_MSG)]
)
def test_value_lengths(prefix: bytes, field: str, longest: int) -> None:
    """Deleted up to the longest value, kept past it; the regexes agree on both sides."""
    for size in (0, 1, longest - 1, longest):
        assert assert_agree(zap(prefix=prefix, **{field: b"v" * size}))
    for size in (longest + 1, longest + 2, 3 * longest):
        assert not assert_agree(zap(prefix=prefix, **{field: b"v" * size}))


@pytest.mark.parametrize("prefix", [KUBELET, b""], ids=["kubelet", "bare"])
def test_tail_length_and_end(prefix: bytes) -> None:
    for end in (b"}", b"}\r"):
        for size in (0, 1, TAIL - 1, TAIL):
            assert assert_agree(zap(tail=b"x" * size, end=end, prefix=prefix))
        for size in (TAIL + 1, TAIL + 2):
            assert not assert_agree(zap(tail=b"x" * size, end=end, prefix=prefix))
        assert assert_agree(zap(tail=b"}" * TAIL, end=end, prefix=prefix))
        assert assert_agree(zap(tail=b'\\"\r{}\x00\xff' * 10, end=end, prefix=prefix))
    assert assert_agree(zap(end=b"\r}", prefix=prefix))  # the \r belongs to the tail
    for end in (b"", b"\r", b"}\r\r", b"} ", b"}\x00", b"}x"):
        assert not assert_agree(zap(end=end, prefix=prefix))
        assert not assert_agree(zap(tail=b"", end=end, prefix=prefix))


def test_escapes_quotes_and_odd_bytes_in_each_field() -> None:
    for field in ("ts", "caller", "msg"):
        for text in (b"\\", b'\\"', b'"', b"a\\b", b"ab\\", b'a"b'):
            for value in (text + b"value", b"value" + text):
                # a quote ends the msg early, and the rest goes to the tail
                assert assert_agree(zap(**{field: value})) is (field == "msg" and b"\\" not in text)
        for odd in (b"\r", b"\x00", b"\xff", b"\xc3\x28", b"{", b"}", b"'", b"\t"):
            assert assert_agree(zap(**{field: b"a" + odd + b"b"}))
    for tail in (b',"x":"\\\\"', b',"x":"\\""', b',"a":"\r"'):
        assert assert_agree(zap(tail=tail))
    assert not assert_agree(zap() + b"\r\r")


def test_kubelet_prefix_shape() -> None:
    """Every truncation of the prefix, every byte of it changed, and a digit for a literal."""
    line = zap(prefix=b"")
    assert assert_agree(line)
    assert assert_agree(KUBELET + line)
    for size in range(1, len(KUBELET)):
        assert not assert_agree(KUBELET[:size] + line)
        assert not assert_agree(KUBELET[size:] + line)
    for at, shape in enumerate(KUBELET_SHAPE):
        for byte in (b"x", b"0", b"9", b"/", b":", b"\x00", b"\xff", b"{"):
            changed = KUBELET[:at] + byte + KUBELET[at + 1 :]
            assert_agree(changed + line)
        if shape == ord("d"):
            for digit in b"0123456789":
                assert assert_agree(KUBELET[:at] + bytes([digit]) + KUBELET[at + 1 :] + line)
    assert not assert_agree(KUBELET + KUBELET + line)
    assert not assert_agree(b" " + line)


def test_messages_of_interest() -> None:
    """Each start of interest keeps the line, exact or as a prefix; a near miss does not."""
    for start in STARTS:
        rest = b'x"' if not start.endswith(b'"') else b""
        line = zap(msg=b"").replace(b'"msg":""', b'"msg":"' + start + rest)
        assert not assert_agree(line)
        assert not assert_agree(line[len(KUBELET) :])
        near = start[:-1] + (b"X" if start[-1:] != b"X" else b"Y")
        assert assert_agree(zap(msg=near.rstrip(b'"')))
        assert assert_agree(zap(msg=b"x" + start.rstrip(b'"')))
        if start.endswith(b'"'):
            assert assert_agree(zap(msg=start[:-1] + b"s"))  # a longer message
    assert not assert_agree(KUBELET + b'{"level":"info","ts":"a","caller":"b","msg":"trace[')


def test_near_misses_of_the_head() -> None:
    line = zap()
    for at in range(len(KUBELET), len(KUBELET) + 100):
        for byte in (b"x", b'"', b"\\", b"\r", b"\x00", b"\xff"):
            assert_agree(line[:at] + byte + line[at + 1 :])
        assert not assert_agree(line[:at])
    for level in (b"warn", b"INFO", b"infos", b"inf", b"debug", b"error"):
        assert not assert_agree(line.replace(b'"info"', b'"' + level + b'"'))
    assert not assert_agree(line.replace(b'"caller"', b'"logger":"raft","caller"'))
    for other in (b"", b"\r", b"{", b"}", b"\x00" * 10, b"\xff" * 300, b"{}"):
        assert not assert_agree(other)


def test_blocks_in_place() -> None:
    lines = [zap(), b"kept", zap(prefix=b""), b"", zap(end=b"}\r"), b"\xff\x00"]
    block = b"\n" + b"\n".join(lines)
    want = b"\nkept\n\n\xff\x00"
    assert by_regex(block) == want
    data = b"junk\n" + block + b"\nmore junk\n"
    start = data.index(block)
    assert undeleted(block) == want
    assert undeleted(data, start, start + len(block)) == want
    assert undeleted(memoryview(data), start, start + len(block)) == want
    assert undeleted(memoryview(data)[start:], 0, len(block)) == want
    assert undeleted(bytearray(data), start, start + len(block)) == want
    assert undeleted(data, start, start) == b""
    assert undeleted(b"") == b""
    assert undeleted(b"\n") == b"\n"
    assert undeleted(b"\n" + zap()) == b""
    assert undeleted(b"\n" + zap() + b"\n") == b"\n"  # the last line is empty, and kept
    assert undeleted(b"\n" + zap() + b"\n" + zap()) == b""
    # the end cuts a deletable line short: what is left of it is no longer deletable
    assert undeleted(data, start, start + len(b"\n" + zap()) - 1) == b"\n" + zap()[:-1]
    # bytes before the first newline are not a line; like the regexes, they are kept
    assert undeleted(zap() + b"\n" + zap()) == zap() == by_regex(zap() + b"\n" + zap())


def test_lines_are_counted_in_the_same_pass() -> None:
    """The count is every newline of the range, deleted or kept, and none outside it; the
    second count is the newlines of what is kept."""
    run = shapes().undeleted
    numbers = (ZAP_TS, ZAP_CALLER, ZAP_MSG, TAIL)

    def lines(data: bytes, start: int, end: int) -> int:
        counted, left, kept = run(data, start, end, KUBELET_SHAPE, STARTS, *numbers)
        assert left == kept.count(b"\n")
        return counted

    data = b"a\n\n\n" + zap() + b"\nkept\r\n" + b"\n" * 5 + zap(prefix=b"") + b"\ntail"
    cuts = sorted({0, 1, 2, 3, 4, 40, len(data) - 6, len(data) - 5, len(data) - 1, len(data)})
    for start in cuts:
        for end in cuts:
            if start <= end:
                assert lines(data, start, end) == data.count(b"\n", start, end), (start, end)
    assert lines(b"\n" * 100_000, 0, 100_000) == 100_000
    assert lines(b"\n" * 10, 3, 7) == 4
    assert lines(b"no newline", 0, 10) == 0
    block = b"\n" + zap() + b"\n" + zap(prefix=b"")
    assert run(block, 0, len(block), KUBELET_SHAPE, STARTS, *numbers) == (2, 0, b"")


def test_generated_corpus_blocks_agree(tmp_path: Path) -> None:
    data = corpus(tmp_path, 3000, seed=5)
    block = b"\n" + data
    want = by_regex(block)
    assert undeleted(block) == want
    assert want.count(b"\n") < block.count(b"\n") // 2
    newlines = [at for at, byte in enumerate(block) if byte == ord("\n")]
    for lines in (1, 7, 500):
        starts = newlines[::lines]
        for start, end in zip(starts, [*starts[1:], len(block)], strict=True):
            assert undeleted(block, start, end) == by_regex(block[start:end])


BYTES = st.sampled_from([b'"', b"\\", b"\n", b"}", b"\r", b"\xff", b"\x00", b"0", b"{", b"v"])


@st.composite
def near_boundary(draw: st.DrawFn) -> bytes:
    """A zap line with each field near its longest, its tail near the limit, and a few edits."""

    def size(longest: int) -> int:
        return draw(st.sampled_from([0, 1, longest - 1, longest, longest + 1]))

    line = zap(
        ts=b"t" * size(ZAP_TS),
        caller=b"c" * size(ZAP_CALLER),
        msg=draw(st.sampled_from([b"", *STARTS])) + b"m" * size(ZAP_MSG),
        tail=b"x" * size(TAIL),
        end=draw(st.sampled_from([b"}", b"}\r", b"", b"\r"])),
        prefix=draw(st.sampled_from([KUBELET, b"", KUBELET[1:]])),
    )
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(BYTES) + line[at + draw(st.integers(0, 2)) :]
    return line


LINE = st.one_of(mutated(), near_boundary(), st.binary(max_size=120))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINE, max_size=12), st.booleans())
def test_random_blocks_agree(lines: list[bytes], leading: bool) -> None:
    block = (b"\n" if leading else b"") + b"\n".join(lines)
    assert undeleted(block) == by_regex(block)
    for line in lines:
        if b"\n" not in line:
            assert_agree(line)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINE, max_size=30), st.sampled_from([b"", b"\n"]), st.integers(1, 300))
def test_random_input_same_with_and_without_extension(
    lines: list[bytes], end: bytes, chunk: int
) -> None:
    data = b"\n".join(lines) + end
    fast = by_blocks(data, chunk).as_json()
    saved = scanner._undeleted
    try:
        scanner._undeleted = None
        slow = by_blocks(data, chunk).as_json()
    finally:
        scanner._undeleted = saved
    assert fast == slow == oracle(data).as_json()


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 400), st.integers(0, 400))
def test_random_bytes_and_ranges(data: bytes, a: int, b: int) -> None:
    start, end = sorted((min(a, len(data)), min(b, len(data))))
    assert undeleted(data, start, end) == by_regex(data[start:end])


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("text", 0, 0), TypeError),
        ((None, 0, 0), TypeError),
        ((b"abc", 0.0, 1), TypeError),
        ((b"abc", "0", 1), TypeError),
        ((b"abc", -1, 1), ValueError),
        ((b"abc", 2, 1), ValueError),
        ((b"abc", 0, 4), ValueError),
        ((b"abc", 0, -1), ValueError),
        ((memoryview(b"abcdef")[::2], 0, 1), BufferError),  # not contiguous
        ((b"abc", 2**70, 1), OverflowError),
    ],
)
def test_bad_block_arguments(args: tuple[Any, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        shapes().undeleted(*args, KUBELET_SHAPE, STARTS, ZAP_TS, ZAP_CALLER, ZAP_MSG, TAIL)


@pytest.mark.parametrize(
    ("shape_and_starts", "error"),
    [
        (("d d", STARTS), TypeError),
        ((None, STARTS), TypeError),
        ((KUBELET_SHAPE, 5), TypeError),
        ((KUBELET_SHAPE, [b"ok", "text"]), TypeError),
        ((KUBELET_SHAPE, b"bytes, not a sequence of them"), TypeError),
        ((KUBELET_SHAPE, [None]), TypeError),
    ],
)
def test_bad_shape_arguments(shape_and_starts: tuple[Any, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        shapes().undeleted(b"\nx", 0, 2, *shape_and_starts, ZAP_TS, ZAP_CALLER, ZAP_MSG, TAIL)


def test_bad_numbers() -> None:
    undeleted_ = shapes().undeleted
    good = [ZAP_TS, ZAP_CALLER, ZAP_MSG, TAIL]
    for at in range(4):
        numbers = list(good)
        numbers[at] = -1
        with pytest.raises(ValueError, match="negative"):
            undeleted_(b"\nx", 0, 2, KUBELET_SHAPE, STARTS, *numbers)
        numbers[at] = "1"
        with pytest.raises(TypeError):
            undeleted_(b"\nx", 0, 2, KUBELET_SHAPE, STARTS, *numbers)
    with pytest.raises(TypeError):
        undeleted_(b"\nx", 0, 2, KUBELET_SHAPE, STARTS, *good[:3])
    with pytest.raises(TypeError):
        undeleted_(data=b"\nx")
    # an empty start matches every message: nothing is of no interest
    block = b"\n" + zap()
    assert undeleted_(block, 0, len(block), KUBELET_SHAPE, [b""], *good) == (1, 1, block)


def test_starts_are_compared_up_to_the_end_of_the_block() -> None:
    """Like the regexes' lookahead, a start may reach the end of the line or of the block."""
    line = zap(msg=b"m", tail=b"", prefix=b"")
    numbers = (ZAP_TS, ZAP_CALLER, ZAP_MSG, TAIL)

    def kept(block: bytes, starts: list[bytes]) -> bytes:
        lines, left, rest = shapes().undeleted(
            block, 0, len(block), KUBELET_SHAPE, starts, *numbers
        )
        assert lines == block.count(b"\n")
        assert left == rest.count(b"\n")
        return rest

    assert kept(b"\n" + line, [b'm"']) == b"\n" + line
    assert kept(b"\n" + line, [b'm"}']) == b"\n" + line
    assert kept(b"\n" + line, [b'm"}\r']) == b""
    assert kept(b"\n" + line + b"\nx", [b'm"}\nx']) == b"\n" + line + b"\nx"
    assert kept(b"\n" + line + b"\ny", [b'm"}\nx']) == b"\ny"
    assert kept(b"\n" + line, [b"x", b"m", b"y"]) == b"\n" + line


def _summaries(data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """The summary JSON with the extension (checking it is called), then without it; and the
    lines left for `classify_raw` are the same when the other patterns always run after the
    extension; the summary is also the same when they are skipped after it deleted most lines
    (`scanner.MOSTLY_DELETED`)."""
    calls: list[int] = []
    real = scanner._undeleted
    assert real is not None

    def spy(block: bytes, start: int, end: int) -> tuple[int, int, bytes]:
        calls.append(end - start)
        return real(block, start, end)

    classified: list[list[bytes]] = []

    def classify(raw: bytes) -> Any:
        classified[-1].append(raw)
        return classify_raw(raw)

    monkeypatch.setattr(scanner, "classify_raw", classify)
    results = []
    for switch, mostly in ((spy, sys.maxsize), (None, sys.maxsize), (spy, 1), (spy, 4)):
        with monkeypatch.context() as patch:
            patch.setattr(scanner, "_undeleted", switch)
            patch.setattr(scanner, "MOSTLY_DELETED", mostly)
            classified.append([])
            results.append(by_blocks(data, 4096).as_json())
            assert by_blocks(data).as_json() == results[-1]
    assert calls
    assert classified[0] == classified[1]
    assert results[2] == results[3] == results[0]
    return results[0], results[1]


def test_summary_same_with_and_without_extension(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = corpus(tmp_path, 6000, seed=13)
    fast, slow = _summaries(data, monkeypatch)
    assert fast == slow == oracle(data).as_json()
    assert fast["lines"]["unparsed"] > 100
    assert fast["events_by_kind"]["slow_request"] > 50


@pytest.mark.parametrize("log", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_summary_same_with_and_without_extension(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = log.read_bytes()
    prefixed = b"".join(KUBELET + line + b"\n" for line in data.splitlines())
    for variant in (data, prefixed):
        fast, slow = _summaries(variant, monkeypatch)
        assert fast == slow == oracle(variant).as_json()
