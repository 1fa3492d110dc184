"""`LineSplitter` without CRI lines: whole chunks of lines read at once give what reading each
line by the rule gives (pure)."""

from __future__ import annotations

import random

import pytest

from exporter.sources.lines import LineSplitter


def _by_the_rule(data: bytes, max_line_bytes: int) -> list[str]:
    """Every complete line: one trailing `\\r` dropped, cut to `max_line_bytes + 1` bytes, then
    decoded with replacement."""
    lines = data.split(b"\n")[:-1]
    return [
        (raw[:-1] if raw.endswith(b"\r") else raw)[: max_line_bytes + 1].decode("utf-8", "replace")
        for raw in lines
    ]


PIECES = [b"a", b"\n", b"\r", b"\r\n", b"\xc3\xa9", b"\xc3", b"\xff", b"\xe2\x82\xac", b" ", b"{}"]


@pytest.mark.parametrize("seed", range(40))
def test_chunks_of_any_cut_give_the_lines_by_the_rule(seed: int) -> None:
    rng = random.Random(seed)
    cap = rng.choice([4, 10, 64, 1000])
    parts = []
    for _ in range(rng.randrange(1, 400)):
        piece = rng.choice(PIECES)
        parts.append(piece * (rng.randrange(1, 40) if rng.random() < 0.1 else 1))
    data = b"".join(parts)
    splitter = LineSplitter(max_line_bytes=cap, cri=False)
    got: list[str] = []
    at = 0
    while at < len(data):
        size = rng.choice([1, 2, 7, 64, 4096])
        got += splitter.push(data[at : at + size])
        at += size
    assert got == _by_the_rule(data, cap)


def test_a_chunk_of_whole_lines_and_a_tail() -> None:
    splitter = LineSplitter(max_line_bytes=100, cri=False)
    assert splitter.push(b"one\r\ntwo\n\nthr") == ["one", "two", ""]
    assert splitter.push(b"ee\nfour") == ["three"]
    assert splitter.flush() == ["four"]
