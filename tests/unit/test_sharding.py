"""Sharding: FNV-1a 64 and jump hash against published vectors, distribution and stability."""

from __future__ import annotations

from collections import Counter

import pytest

from exporter.discovery.sharding import fnv64a, jump_hash, owns, shard_of

NAMESPACES = [f"shoot--p{i % 97}--cluster-{i}" for i in range(2000)]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Go's hash/fnv test table (golden64a).
        ("", 0xCBF29CE484222325),
        ("a", 0xAF63DC4C8601EC8C),
        ("ab", 0x089C4407B545986A),
        ("abc", 0xE71FA2190541574B),
    ],
)
def test_fnv64a_matches_go(data: str, expected: int) -> None:
    assert fnv64a(data) == expected
    assert fnv64a(data.encode()) == expected


@pytest.mark.parametrize(
    ("key", "buckets", "expected"),
    # The vectors every jump-hash port tests against (dgryski/go-jump).
    [(1, 1, 0), (42, 57, 43), (0xDEAD10CC, 1, 0), (0xDEAD10CC, 666, 361), (256, 1024, 520)],
)
def test_jump_hash_vectors(key: int, buckets: int, expected: int) -> None:
    assert jump_hash(key, buckets) == expected


def test_jump_hash_degenerate_bucket_counts() -> None:
    assert jump_hash(0xDEAD10CC, 0) == 0
    assert jump_hash(0xDEAD10CC, -5) == 0


@pytest.mark.parametrize("total", [2, 3, 5, 8])
def test_distribution_is_even(total: int) -> None:
    counts = Counter(shard_of(ns, total) for ns in NAMESPACES)
    assert set(counts) == set(range(total))
    expected = len(NAMESPACES) / total
    for shard, n in counts.items():
        assert abs(n - expected) < 0.15 * expected, (shard, n, expected)


def test_growing_moves_only_a_fair_share() -> None:
    before = {ns: shard_of(ns, 4) for ns in NAMESPACES}
    after = {ns: shard_of(ns, 5) for ns in NAMESPACES}
    moved = [ns for ns in NAMESPACES if before[ns] != after[ns]]
    # Jump hash: only keys moving to the new bucket move, about 1/5 of them.
    assert all(after[ns] == 4 for ns in moved)
    assert 0.12 < len(moved) / len(NAMESPACES) < 0.28


@pytest.mark.parametrize(
    ("namespace", "digest", "shards"),
    [
        ("shoot--p1--a", 0xB361675B9BFDA55E, [0, 2, 3]),
        ("shoot--p1--b", 0xB361665B9BFDA3AB, [0, 0, 3]),
        ("shoot--p2--c", 0x85277D438F3091AF, [1, 1, 1]),
    ],
)
def test_assignment_is_pinned(namespace: str, digest: int, shards: list[int]) -> None:
    # Replicas of different releases must agree: these values may never change.
    assert fnv64a(namespace) == digest
    assert [shard_of(namespace, total) for total in (2, 3, 4)] == shards


def test_owns_partitions_namespaces() -> None:
    for total in (1, 2, 3):
        owners = [
            [s for s in range(total) if owns(ns, shard=s, total_shards=total)]
            for ns in NAMESPACES[:300]
        ]
        assert all(len(o) == 1 for o in owners)
