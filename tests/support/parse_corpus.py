"""Shared by the block scanner's tests (tests/unit/test_parser_scanner.py, test_parser_shapes.py
and test_parser_fast_paths.py): the captured fixtures, the line-by-line oracle, the block path, and
inputs of every awkward kind (garbage, near-misses of the bulk patterns, random mutations).
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from exporter.commands.parse.bulk import BLOCK_PATTERNS
from exporter.commands.parse.command import event_record, summarize
from exporter.commands.parse.scanner import classify_raw, fold
from exporter.commands.parse.summary import Summary
from exporter.model import Event
from exporter.parser import UNPARSED, parse_line
from exporter.parser.prefix import EMBEDDED_MIN_LENGTH
from tests.support import logcorpus

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


def garbage(rng: random.Random) -> list[bytes]:
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


def corpus(tmp_path: Path, lines: int, seed: int) -> bytes:
    path = tmp_path / "corpus.log"
    logcorpus.generate(path, lines, seed=seed)
    good = path.read_bytes().splitlines()
    rng = random.Random(seed)
    for log in FIXTURES:
        good += rng.sample(log.read_bytes().splitlines(), 20)
    bad = garbage(rng)
    mixed = [rng.choice(bad) if rng.random() < 0.1 else rng.choice(good) for _ in range(lines)]
    return b"\n".join(mixed)


LINES = st.sampled_from(
    [KUBELET + INFO, INFO, CAPNSLOG_INFO, *garbage(random.Random(5))]
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


def classification(number: int, line: str) -> dict[str, Any]:
    """What the parser makes of one line, in the expected files' format."""
    result = parse_line(line)
    if isinstance(result, Event):
        record = event_record(number, result)
        record["expected_seconds"] = result.expected_seconds
        return record
    return {"line": number, "kind": "unparsed" if result is UNPARSED else None}
