"""The parse benchmark's generated corpora (tests/support/logcorpus.py) are what the benchmark
says they are: `parse` finds exactly the events it wrote, and the block scanner deletes everything
else in bulk (the speed the benchmark measures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter.cli import load
from exporter.commands.parse import scanner
from exporter.commands.parse.bulk import BLOCK_PATTERNS
from exporter.commands.parse.command import run_parse
from exporter.settings import ParseSettings
from tests.support import logcorpus


def test_bench_corpus_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The benchmark's generated corpus is classified as generated (what the bench compares)."""
    path = tmp_path / "corpus.log"
    counts = logcorpus.generate(path, 5_000)
    assert run_parse(load(ParseSettings, "parse", ["--output", "json", str(path)])) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["lines"] == {
        "read": 5_000,
        "unparsed": 0,
        "events": counts["request"] + counts["fdatasync"],
    }
    assert doc["events_by_kind"] == {
        "slow_request": counts["request"],
        "slow_fdatasync": counts["fdatasync"],
    }
    assert set(doc["slow_requests"]["by_operation"]) == {"range", "txn", "put", "lease_grant"}


def test_bench_corpus_is_mostly_deleted_in_bulk(tmp_path: Path) -> None:
    """The speed this is for: only the events are left for parse_line."""
    path = tmp_path / "corpus.log"
    counts = logcorpus.generate(path, 3000, seed=2)
    data = path.read_bytes()
    left, lines = scanner._delete(BLOCK_PATTERNS[0], b"\n" + data[:-1], 0, len(data), 3000)
    assert lines == counts["request"] + counts["fdatasync"]
    assert left.count(b"\n") == lines


def test_realistic_corpus_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The realistic corpus: every line a valid etcd line, `parse` counts exactly the events the
    generator wrote, kind by kind, and the slow requests cover every operation."""
    path = tmp_path / "realistic.log"
    counts = logcorpus.make_corpus(path, "realistic", 5_000, seed=3)
    assert run_parse(load(ParseSettings, "parse", ["--output", "json", str(path)])) == 0
    doc = json.loads(capsys.readouterr().out)
    expected = logcorpus.expected_events("realistic", counts)
    assert doc["lines"]["read"] == 5_000
    assert doc["lines"]["unparsed"] == 0
    assert doc["events_by_kind"] == expected
    assert counts["trace"] / 5_000 > 0.08  # the mix the benchmark promises, roughly
    assert {"range", "txn", "put", "delete_range", "lease_grant"} <= set(
        doc["slow_requests"]["by_operation"]
    )
