"""Which replica owns a target: FNV-1a 64 of the namespace, then jump consistent hash.

The same two functions kube-state-metrics uses for `--shard`/`--total-shards` (it hashes the
object UID; we hash the namespace, so both etcd members of a shoot land on one replica). Never
Python's `hash()`: it is salted per process, so replicas would disagree.
"""

from __future__ import annotations

_FNV64_OFFSET = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3
_MASK64 = 0xFFFFFFFFFFFFFFFF
_JUMP_MULTIPLIER = 2862933555777941757


def fnv64a(data: str | bytes) -> int:
    """FNV-1a 64-bit hash of a string (UTF-8) or bytes, as Go's `hash/fnv.New64a`."""
    raw = data.encode() if isinstance(data, str) else data
    h = _FNV64_OFFSET
    for byte in raw:
        h = ((h ^ byte) * _FNV64_PRIME) & _MASK64
    return h


def jump_hash(key: int, buckets: int) -> int:
    """Jump consistent hash (Lamping and Veach, 2014): a bucket in [0, buckets).

    Growing `buckets` from n to n+1 moves only about 1/(n+1) of the keys. Fewer than one bucket
    gives 0, like the Go implementations.
    """
    b, j = -1, 0
    key &= _MASK64
    while j < buckets:
        b = j
        key = (key * _JUMP_MULTIPLIER + 1) & _MASK64
        j = int(float(b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return max(b, 0)


def shard_of(namespace: str, total_shards: int) -> int:
    """The shard that owns every target of a namespace."""
    return jump_hash(fnv64a(namespace), total_shards)


def owns(namespace: str, *, shard: int, total_shards: int) -> bool:
    """True when replica `shard` of `total_shards` serves this namespace."""
    if total_shards <= 1:
        return True
    return shard_of(namespace, total_shards) == shard
