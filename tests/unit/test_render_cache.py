"""The caches behind /metrics at scale: per-target text, per-family gzip blocks, label sets.

A `/metrics` request re-renders only the sections of a target whose state moved since the last
request and re-compresses only the blocks they sit in; these tests mutate a store in every way
the daemon does between two requests and check that the kept body, plain and gzipped, stays
byte-identical to prometheus_client's fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from exporter.exposition import body as kept
from exporter.exposition.body import Body, gzip_member, pack, prerender
from exporter.exposition.handler import ExporterRegistry, accepts_gzip, make_registry, render
from exporter.exposition.text import go_float, go_floats
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
from exporter.scrape.caches import ScrapeCaches
from exporter.scrape.extract import extract_families
from exporter.scrape.layout import Extractor
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
        volume=Volume(
            pvc=f"c{i}",
            pv=f"pv{i}",
            storage_class="standard",
            disk_class="hdd",
            # member 1 has a mismatch family, which its relabelling (`_renamed`) takes away
            expected_storage_class="gardener.cloud-fast" if i == 1 else "",
        ),
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


async def assert_fresh(reg: ExporterRegistry) -> None:
    """The kept body, plain and gzipped, equals prometheus_client's fresh one in both formats."""
    for accept, reference in (("", generate_latest), (OM, generate_openmetrics)):
        plain = await render(reg, accept, gzip=False)
        packed = await render(reg, accept, gzip=True)
        assert plain is not None
        assert packed is not None
        assert plain[0] == reference(reg)
        assert gzip.decompress(packed[0]) == plain[0]


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


def _scrape_drops_families(store: Store) -> None:
    state = store.get(member(2).key)
    assert state is not None
    families = extract_families(PAYLOAD)
    state.record_scrape_success(families[::2], duration=0.1, now=6.0)


def _member_appended_and_scraped_in_the_background(store: Store) -> None:
    store.upsert(member(8)).record_scrape_success(extract_families(PAYLOAD), duration=0.1, now=7.0)


STEPS: list[tuple[str, Step]] = [
    ("scrape again", _scrape_again),
    ("log lines", _lines),
    ("events", _events),
    ("scrape fails", _scrape_fails),
    ("relabel", _relabel),
    ("members replaced", _replace_members),
    ("series dropped", _series_dropped),
    ("scrape drops families", _scrape_drops_families),
    ("member appended", _member_appended_and_scraped_in_the_background),
]


def scraped(count: int) -> Store:
    """A store of `count` members, each scraped once (the captured payload)."""
    store = Store()
    for i in range(count):
        store.upsert(member(i)).record_scrape_success(
            extract_families(PAYLOAD), duration=0.1, now=1.0
        )
    return store


@pytest.mark.parametrize("block_bytes", [kept.BLOCK_BYTES, 1])
async def test_kept_body_follows_every_kind_of_change(
    block_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kept, "BLOCK_BYTES", block_bytes)  # 1: a block per target
    store = Store(limits=Limits(max_series_per_target=2))
    for i in range(3):
        state = store.upsert(member(i))
        state.record_scrape_success(extract_families(PAYLOAD), duration=0.1, now=1.0)
        state.record_event(slow(Operation.RANGE, "pods"), now=1.0)
    reg = make_registry(store, shard=0, total_shards=1, exporter_metrics=False)
    await assert_fresh(reg)
    for _name, step in STEPS:
        step(store)
        reg.body.prerender(reg.body.stale())  # the background's share, as the daemon runs it
        await assert_fresh(reg)
        step(store)
        await assert_fresh(reg)  # the request renders what the background did not
        await assert_fresh(reg)  # a second request without changes serves the kept text


async def test_families_read_through_a_layout_render_through_their_shapes() -> None:
    # As the daemon reads them: each member's extractor, the caches shared, so members' families
    # carry shared shapes (the fsync histogram's, a fold's for the trace payload's apply one).
    caches = ScrapeCaches()
    payloads = [PAYLOAD, (FIXTURES / "etcd-3.5-trace-disk.metrics").read_text()]
    extractors = [Extractor(caches=caches) for _ in range(4)]
    store = Store()
    reg = make_registry(store, shard=0, total_shards=1, exporter_metrics=False)
    for round_ in range(3):
        for i, extractor in enumerate(extractors):
            body = bumped(payloads[i % 2], round_ + i).encode()
            families = extractor.extract(body)
            state = store.upsert(member(i))
            state.record_scrape_success(families, duration=0.1, now=1.0 + round_)
            if round_:
                assert all(f.shape is not None for f in families)
        reg.body.prerender(reg.body.stale())
        await assert_fresh(reg)
    shapes = reg.body._relayed_text._shapes
    assert shapes
    assert None not in shapes.values()


async def test_a_request_compresses_only_the_blocks_that_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kept, "BLOCK_BYTES", 1)  # a block per target and family
    store = scraped(6)
    reg = make_registry(store, shard=0, total_shards=1, exporter_metrics=False)
    packed: list[int] = []

    def counting(text: bytes) -> kept.Packed:
        packed.append(len(text))
        return pack(text)

    monkeypatch.setattr(kept, "pack", counting)
    await reg.body.gzip(openmetrics=True)
    first = len(packed)
    packed.clear()
    await reg.body.gzip(openmetrics=True)
    unchanged = len(packed)  # the self-metrics and the tail: rendered at every request
    packed.clear()
    _lines(store)  # one target's log counters: lines read, and its stream's three families
    await reg.body.gzip(openmetrics=True)
    assert len(packed) - unchanged == 4
    assert first > 10 * len(packed)
    await assert_fresh(reg)


async def test_first_type_wins_after_the_first_member_is_gone() -> None:
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
    await assert_fresh(reg)
    store.remove(member(0).key)
    await assert_fresh(reg)
    body = await render(reg, "", gzip=False)
    assert body is not None
    assert b"# TYPE etcd_latency_server_has_leader untyped" in body[0]


async def test_the_first_members_type_decides_for_every_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kept, "BLOCK_BYTES", 1)  # a block per target
    name = "etcd_server_has_leader"
    gauge = RelayedFamily(name, "gauge", "h", (Sample(name, (), 1),))
    untyped = RelayedFamily(name, "untyped", "", (Sample(name, (), 0),))
    store = Store()
    for i in range(3):
        store.upsert(member(i)).record_scrape_success((gauge,), duration=0.1, now=1.0)
    reg = make_registry(store, shard=0, total_shards=1, exporter_metrics=False)
    await assert_fresh(reg)  # one type: every block packed and kept
    first = store.get(member(0).key)
    assert first is not None
    for fam in (untyped, gauge, untyped):  # only the first member's block changes
        first.record_scrape_success((fam,), duration=0.1, now=2.0)
        await assert_fresh(reg)


@pytest.mark.parametrize("untyped_first", [False, True])
async def test_a_second_etcd_typing_the_fsync_histogram_otherwise_is_left_out(
    untyped_first: bool,
) -> None:
    hist = next(f for f in extract_families(PAYLOAD) if f.name == WAL)
    untyped = RelayedFamily(WAL, "untyped", "", (Sample(WAL, (), 3),))
    families = [(untyped,), (hist,), (untyped,)] if untyped_first else [(hist,), (untyped,)]
    store = Store()
    for i, scraped in enumerate(families):
        store.upsert(member(i)).record_scrape_success(scraped, duration=0.1, now=1.0)
    reg = make_registry(store, shard=0, total_shards=1, exporter_metrics=False)
    await assert_fresh(reg)
    store.remove(member(0).key)
    await assert_fresh(reg)


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


@given(st.lists(st.binary(max_size=3000) | st.sampled_from([PAYLOAD.encode(), b""]), max_size=8))
def test_packed_texts_concatenate_into_one_gzip_member(texts: list[bytes]) -> None:
    member = gzip_member([pack(t) for t in texts])
    assert gzip.decompress(member) == b"".join(texts)
    assert member == gzip_member([pack(t) for t in texts])  # no mtime: same text, same bytes


def test_gzip_compresses_a_repetitive_body() -> None:
    body = PAYLOAD.encode() * 8
    assert len(gzip_member([pack(body)])) < len(body) // 10


@pytest.mark.looptime  # the background task's interval on the virtual clock
async def test_prerender_keeps_scraped_targets_rendered_in_the_background() -> None:
    store = scraped(3)
    reg = make_registry(store, shard=0, total_shards=1, exporter_metrics=False)
    cache = reg.body
    assert len(cache.stale()) == 3
    cache.prerender(cache.stale())
    assert cache.stale() == []
    _scrape_again(store)
    assert [s.target.key for s in cache.stale()] == [member(0).key]
    cache.prerender(cache.stale())
    await assert_fresh(reg)
    store.remove(member(1).key)
    assert cache.stale() == []
    await assert_fresh(reg)


async def caught_up(cache: Body) -> None:
    """Until nothing is stale (the caller bounds the wait)."""
    while True:
        if not cache.stale():
            return
        await asyncio.sleep(0.01)


@pytest.mark.looptime  # the background task's interval on the virtual clock
async def test_prerender_task_catches_up_after_scrapes() -> None:
    store = Store()
    state = store.upsert(member(0))
    state.record_scrape_success(extract_families(PAYLOAD), duration=0.1, now=1.0)
    reg = make_registry(store, shard=0, total_shards=1, exporter_metrics=False)
    cache = reg.body
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
    await assert_fresh(reg)


async def test_prerender_lets_the_replaced_text_go_at_once_unless_a_request_reads() -> None:
    """After the first request, a member's re-rendered text replaces its old text in the
    columns right away (one copy kept, not two until the next request); while a request holds
    the body, the columns are left to that request's successor."""
    store = scraped(3)
    reg = make_registry(store, shard=0, total_shards=1, exporter_metrics=False)
    cache = reg.body
    await cache.gzip(openmetrics=True)

    def in_columns(key: str) -> list[bool]:
        """Per relayed family of the member: its text in the columns is the one just rendered."""
        text = cache._texts[key]
        slot = cache._slots[key]
        state = store.get(key)
        assert state is not None
        assert state.relayed
        return [cache._columns[f.name].entries[slot] is text.entries[f.name] for f in state.relayed]

    _scrape_again(store)  # member 0
    cache.prerender(cache.stale())
    assert all(in_columns(member(0).key))
    async with cache._lock:
        _scrape_again(store)
        cache.prerender(cache.stale())
        assert not any(in_columns(member(0).key))  # they wait for the next request
    await assert_fresh(reg)
    assert all(in_columns(member(0).key))
