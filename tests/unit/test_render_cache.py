"""The caches behind /metrics at scale: per-target chunks and shared label sets.

A `/metrics` request re-renders only the sections of a target whose state moved since the last
request; these tests mutate a store in every way the daemon does between two requests and check
that the cached rendering stays byte-identical to prometheus_client's fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from exporter.exposition import handler as exposition
from exporter.exposition.chunks import ChunkCache, prerender
from exporter.exposition.collector import ExporterRegistry, make_registry
from exporter.exposition.handler import accepts_gzip, chunk_cache, gzip_parts, render
from exporter.exposition.textsink import go_float, go_floats
from exporter.model import (
    Event,
    EventKind,
    FileLogSpec,
    Identity,
    Operation,
    RelayedFamily,
    Sample,
    ScrapeSpec,
    Target,
    Volume,
)
from exporter.scrape import extract
from exporter.scrape.extract import extract_families
from exporter.state import Limits, Store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "metrics"
PAYLOAD = (FIXTURES / "etcd-3.5.metrics").read_text()
WAL = "etcd_disk_wal_fsync_duration_seconds"
OM = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def member(i: int) -> Target:
    ns, pod = f"shoot--p--s{i}", "etcd-main-0"
    return Target(
        key=f"{ns}/{pod}",
        identity=Identity(ns, "p", f"s{i}", "etcd-main", pod),
        volume=Volume(pvc=f"c{i}", pv=f"pv{i}", storage_class="standard", disk_class="hdd"),
        scrape=ScrapeSpec(url=f"http://127.0.0.1:{2379 + i}/metrics"),
        log=FileLogSpec(path=f"/var/log/{i}.log"),
    )


def bumped(payload: str, by: float) -> str:
    """The payload with every wal fsync bucket moved by `by` (a new scrape's values)."""
    out = []
    for line in payload.splitlines():
        if line.startswith("etcd_disk_wal_fsync_duration_seconds_bucket"):
            head, value = line.rsplit(" ", 1)
            line = f"{head} {float(value) + by}"
        out.append(line)
    return "\n".join(out) + "\n"


def slow(op: Operation, resource: str) -> Event:
    return Event(
        EventKind.SLOW_REQUEST,
        duration_seconds=0.3,
        operation=op,
        read_only=False,
        resource=resource,
    )


def assert_fresh(reg: ExporterRegistry) -> None:
    """The cached render equals prometheus_client's uncached one, in both formats."""
    text = render(reg, "")
    om = render(reg, OM)
    assert text is not None
    assert om is not None
    assert text[0] == generate_latest(reg)
    assert om[0] == generate_openmetrics(reg)


Step = Callable[[Store], None]


def _scrape_again(store: Store) -> None:
    state = store.get(member(0).key)
    assert state is not None
    state.record_scrape_success(extract_families(bumped(PAYLOAD, 7)), duration=0.2, now=2.0)


def _lines(store: Store) -> None:
    state = store.get(member(1).key)
    assert state is not None
    state.count_line(unparsed=False)
    state.count_line(unparsed=True)
    state.set_stream_up(False)
    state.count_reconnect()


def _events(store: Store) -> None:
    state = store.get(member(1).key)
    assert state is not None
    state.record_event(slow(Operation.PUT, "leases"), now=3.0)
    state.record_event(Event(EventKind.SLOW_FDATASYNC, duration_seconds=1.5), now=3.0)


def _scrape_fails(store: Store) -> None:
    state = store.get(member(0).key)
    assert state is not None
    state.record_scrape_error("timeout", duration=10.0)


def _relabel(store: Store) -> None:
    store.upsert(_renamed(member(1)))


def _renamed(target: Target) -> Target:
    vol = Volume(pvc="new", pv="pv-new", storage_class="gardener.cloud-fast", disk_class="ssd")
    return Target(
        key=target.key,
        identity=target.identity,
        volume=vol,
        scrape=target.scrape,
        log=target.log,
    )


def _replace_members(store: Store) -> None:
    store.remove(member(0).key)
    added = store.upsert(member(7))
    added.record_scrape_success(extract_families(PAYLOAD), duration=0.1, now=4.0)


def _series_dropped(store: Store) -> None:
    state = store.get(member(7).key)
    assert state is not None
    for i in range(5):
        state.record_event(slow(Operation.RANGE, f"r{i}"), now=5.0)


STEPS: list[tuple[str, Step]] = [
    ("scrape again", _scrape_again),
    ("log lines", _lines),
    ("events", _events),
    ("scrape fails", _scrape_fails),
    ("relabel", _relabel),
    ("members replaced", _replace_members),
    ("series dropped", _series_dropped),
]


def test_cached_render_follows_every_kind_of_change() -> None:
    store = Store(limits=Limits(max_series_per_target=2))
    for i in range(3):
        state = store.upsert(member(i))
        state.record_scrape_success(extract_families(PAYLOAD), duration=0.1, now=1.0)
        state.record_event(slow(Operation.RANGE, "pods"), now=1.0)
    reg = make_registry(store, shard=0, total_shards=1, exporter_metrics=False)
    assert_fresh(reg)
    for _name, step in STEPS:
        step(store)
        assert_fresh(reg)
        assert_fresh(reg)  # a second request without changes serves the kept chunks


def test_first_type_wins_after_the_first_member_is_gone() -> None:
    gauge = RelayedFamily(
        "etcd_server_has_leader", "gauge", "h", (Sample("etcd_server_has_leader", (), 1),)
    )
    untyped = RelayedFamily(
        "etcd_server_has_leader", "untyped", "", (Sample("etcd_server_has_leader", (), 0),)
    )
    store = Store()
    store.upsert(member(0)).record_scrape_success((gauge,), duration=0.1, now=1.0)
    store.upsert(member(1)).record_scrape_success((untyped,), duration=0.1, now=1.0)
    reg = make_registry(store, shard=0, total_shards=1, exporter_metrics=False)
    assert_fresh(reg)
    store.remove(member(0).key)
    assert_fresh(reg)
    body = render(reg, "")
    assert body is not None
    assert b"# TYPE etcd_latency_server_has_leader untyped" in body[0]


def test_scrapes_share_label_sets() -> None:
    first = extract_families(PAYLOAD)
    second = extract_families(bumped(PAYLOAD, 1))
    pairs = [
        (a, b)
        for fa, fb in zip(first, second, strict=True)
        for a, b in zip(fa.samples, fb.samples, strict=True)
        if a.labels
    ]
    assert pairs
    assert all(a.labels is b.labels and a.name is b.name for a, b in pairs)
    assert any(a.value != b.value for a, b in pairs)


def test_long_label_texts_are_parsed_but_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    long_value = "x" * (extract.LABEL_CACHE_TEXT_MAX + 10)
    text = f'# TYPE etcd_server_has_leader gauge\netcd_server_has_leader{{peer="{long_value}"}} 1\n'
    cache: dict[str, tuple[tuple[str, str], ...]] = {}
    monkeypatch.setattr(extract, "_LABEL_CACHE", cache)
    (fam,) = extract_families(text)
    assert fam.samples[0].labels == (("peer", long_value),)
    assert cache == {}


def test_a_second_etcd_typing_the_fsync_histogram_otherwise_is_left_out() -> None:
    hist = next(f for f in extract_families(PAYLOAD) if f.name == WAL)
    untyped = RelayedFamily(WAL, "untyped", "", (Sample(WAL, (), 3),))
    store = Store()
    store.upsert(member(0)).record_scrape_success((hist,), duration=0.1, now=1.0)
    store.upsert(member(1)).record_scrape_success((untyped,), duration=0.1, now=1.0)
    reg = make_registry(store, shard=0, total_shards=1, exporter_metrics=False)
    assert_fresh(reg)
    store.remove(member(0).key)
    assert_fresh(reg)


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**60), 2**60)))
def test_go_floats_equals_go_float(values: list[float]) -> None:
    assert go_floats(values) == [go_float(v) for v in values]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("deflate, gzip;q=1.0, *;q=0.5", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0", False),
        ("gzip;q=bogus", False),
        ("identity", False),
        ("", False),
        ("br, deflate", False),
    ],
)
def test_accepts_gzip(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


@pytest.mark.parametrize("deflate", ["isal", "zlib"])
async def test_gzip_parts_joins_and_round_trips_without_a_timestamp(
    deflate: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if deflate == "zlib":  # the fallback where isal has no wheel
        monkeypatch.setattr(exposition, "deflate", zlib)
    else:  # installed with the project: /metrics is gzipped by ISA-L
        assert exposition.deflate.__name__ == "isal.isal_zlib"
    parts = [PAYLOAD.encode(), b"", PAYLOAD.encode()[:1000], PAYLOAD.encode()] * 4
    packed = await gzip_parts(parts)
    assert gzip.decompress(packed) == b"".join(parts)
    assert packed == await gzip_parts(parts)  # no mtime: the same body gives the same bytes
    assert len(packed) < len(b"".join(parts)) // 10


def test_prerender_keeps_scraped_targets_rendered_in_the_background() -> None:
    store = Store()
    for i in range(3):
        store.upsert(member(i)).record_scrape_success(
            extract_families(PAYLOAD), duration=0.1, now=1.0
        )
    reg = make_registry(store, shard=0, total_shards=1, exporter_metrics=False)
    cache = chunk_cache(reg.collector)
    assert len(cache.stale()) == 3
    cache.prerender(cache.stale())
    assert cache.stale() == []
    _scrape_again(store)
    assert [s.target.key for s in cache.stale()] == [member(0).key]
    cache.prerender(cache.stale())
    assert_fresh(reg)
    store.remove(member(1).key)
    assert cache.stale() == []
    assert_fresh(reg)


async def caught_up(cache: ChunkCache) -> None:
    """Until nothing is stale (the caller bounds the wait)."""
    while True:
        if not cache.stale():
            return
        await asyncio.sleep(0.01)


async def test_prerender_task_catches_up_after_scrapes() -> None:
    store = Store()
    state = store.upsert(member(0))
    state.record_scrape_success(extract_families(PAYLOAD), duration=0.1, now=1.0)
    reg = make_registry(store, shard=0, total_shards=1, exporter_metrics=False)
    cache = chunk_cache(reg.collector)
    task = asyncio.create_task(prerender(cache, interval=0.01, batch=1))
    try:
        async with asyncio.timeout(5):
            await caught_up(cache)
            _scrape_again(store)
            await caught_up(cache)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert_fresh(reg)
