"""The collector: golden exposition, promtool, the fast renderer against prometheus_client's."""

from __future__ import annotations

import gzip
import math
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from exporter.exposition.handler import ExporterRegistry, make_registry, render
from exporter.exposition.text import go_float
from exporter.metrics import SCRAPE_ERROR_REASONS
from exporter.model import (
    Event,
    EventKind,
    FileLogSpec,
    Identity,
    Member,
    MemberState,
    Operation,
    Placement,
    RelayedFamily,
    Sample,
    ScrapeSpec,
    Shape,
    Target,
    TraceStep,
    Volume,
)
from exporter.scrape.extract import extract_families
from exporter.state import Store

TESTS = Path(__file__).resolve().parents[1]
GOLDEN = TESTS / "golden" / "collector.prom"
PAYLOADS = {
    v: (TESTS / "fixtures" / "metrics" / f"etcd-{v}.metrics").read_text() for v in ("3.4", "3.5")
}
NOW = 1_763_700_000.0
OM_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"

ALPHA = Target(
    key="shoot--dev--alpha/etcd-main-0",
    identity=Identity("shoot--dev--alpha", "dev", "alpha", "etcd-main", "etcd-main-0"),
    volume=Volume(
        pvc="main-etcd-etcd-main-0",
        pv="pv-shoot--dev--alpha-1f2e",
        storage_class="standard",
        provisioner="pd.csi.storage.gke.io",
        disk_type="pd-standard",
        disk_class="hdd",
        expected_storage_class="gardener.cloud-fast",
        expected_from="config",
        volume_handle="projects/seed/zones/europe-west1-b/disks/pvc-5f0e8a52",
        capacity_bytes=25 * 1024**3,
        expected_write_iops=37.5,  # 1.5 per GiB: below etcd's 50
        iops_basis="GCE pd-standard: 1.5 write IOPS per GiB",
    ),
    scrape=ScrapeSpec(url="https://etcd-main-0.etcd-main-peer:2379/metrics"),
    log=FileLogSpec(path="/var/log/pods/etcd-main-0/etcd/0.log"),
    # the seed incident: the Seed says metal, its nodes run on GCE, the fast class was never made
    placement=Placement(
        namespace_provider="metal",
        node_provider="gcp",
        node="n-0",
        node_provider_id="gce://p/z/n-0",
        provider_mismatch=True,
        expected_storage_class="gardener.cloud-fast",
        expected_class_missing=True,
    ),
)
BETA = Target(
    key="shoot--dev--beta/etcd-events-0",
    identity=Identity("shoot--dev--beta", "dev", "beta", "etcd-events", "etcd-events-0"),
    volume=Volume(
        pvc="events-etcd-etcd-events-0",
        pv="pv-shoot--dev--beta-9a8b",
        storage_class="gardener.cloud-fast",
        provisioner="pd.csi.storage.gke.io",
        disk_type="pd-ssd",
        disk_class="ssd",
        expected_storage_class="gardener.cloud-fast",
        expected_from="etcd",
        volume_handle="projects/seed/zones/europe-west1-c/disks/pvc-0b7d41c9",
        capacity_bytes=10 * 1024**3,
        expected_write_iops=6300.0,
        iops_basis="GCE pd-ssd: 30 write IOPS per GiB plus 6,000",
    ),
    scrape=ScrapeSpec(url="https://etcd-events-0.etcd-events-peer:2379/metrics"),
    placement=Placement(
        namespace_provider="gcp",
        node_provider="gcp",
        node="n-1",
        node_provider_id="gce://p/z/n-1",
        provider_mismatch=False,
        expected_storage_class="gardener.cloud-fast",
        expected_class_missing=False,
    ),
)
BETA_CRASHED = Member(
    state=MemberState.RESTARTING,
    uid="0c8f2c5e-beta",
    restart_count=3,
    reason="CrashLoopBackOff",
    last_exit="Error, exit code 2",
)
HOST = Target(
    key="static/etcd-a",
    identity=Identity(etcd="etcd-a", pod="etcd-a"),
    scrape=ScrapeSpec(url="http://127.0.0.1:2379/metrics"),
)


def slow(op: Operation, seconds: float, *, read_only: bool, resource: str) -> Event:
    return Event(
        EventKind.SLOW_REQUEST,
        duration_seconds=seconds,
        operation=op,
        read_only=read_only,
        resource=resource,
    )


def fixed_store() -> Store:
    """Three members: a slow HDD one with logs, one whose scrape times out, a plain host."""
    store = Store()
    alpha = store.upsert(ALPHA)
    alpha.record_scrape_success(extract_families(PAYLOADS["3.5"]), duration=0.0123, now=NOW)
    alpha.set_stream_up(True)
    alpha.count_reconnect()
    for _ in range(9):
        alpha.count_line(unparsed=False)
    alpha.count_line(unparsed=True)
    for event in (
        slow(Operation.RANGE, 0.15, read_only=True, resource="pods"),
        slow(Operation.RANGE, 1.2, read_only=True, resource="pods"),
        slow(Operation.TXN, 0.4, read_only=False, resource="leases"),
        Event(EventKind.SLOW_FDATASYNC, duration_seconds=1.1),
        Event(EventKind.HEARTBEAT_LATE, duration_seconds=0.2),
        Event(
            EventKind.SLOW_TRACE,
            duration_seconds=0.5,
            operation=Operation.RANGE,
            steps=((TraceStep.RAFT, 0.375), (TraceStep.INDEX, 0.0625)),
        ),
        # a defrag's slow write is counted apart, not as a slow request
        Event(EventKind.DEFRAG_STARTED),
        slow(Operation.PUT, 3.5, read_only=False, resource="leases"),
        Event(EventKind.DEFRAG_FINISHED, duration_seconds=3.75),
    ):
        alpha.record_event(event, now=NOW - 5)
    beta = store.upsert(BETA)
    beta.record_scrape_success(extract_families(PAYLOADS["3.5"]), duration=0.02, now=NOW - 60)
    beta.record_scrape_error("timeout", duration=10.0)
    store.upsert(replace(BETA, member=BETA_CRASHED), now=NOW)  # its container exited
    host = store.upsert(HOST)
    host.record_scrape_success(extract_families(PAYLOADS["3.4"]), duration=0.004, now=NOW)
    store.kubernetes_api_errors[("pods", "watch", "403")] += 2
    store.tls_secret_errors["not_found"] += 1
    return store


def normalized(text: str) -> str:
    """build_info carries the running Python's and the package's version."""
    text = re.sub(r'python_version="[^"]*"', 'python_version="3.x"', text)
    # the build's version only: etcd's apply histogram has a `version` label (v2, v3) of its own
    return re.sub(r'(?m)^(\S*build_info\{[^}]*),version="[^"]*"', r'\1,version="0.0.0"', text)


def registry(store: Store) -> ExporterRegistry:
    return make_registry(store, shard=1, total_shards=3, exporter_metrics=False)


def test_golden_exposition() -> None:
    text = normalized(generate_latest(registry(fixed_store())).decode())
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


@pytest.mark.parametrize("accept", ["", OM_ACCEPT, "text/plain;version=1.0.0;escaping=allow-utf-8"])
@pytest.mark.parametrize("packed", [False, True])
async def test_fast_renderer_is_byte_identical_to_prometheus_client(
    accept: str, packed: bool
) -> None:
    reg = registry(fixed_store())
    rendered = await render(reg, accept, gzip=packed)
    assert rendered is not None
    body, content_type = rendered
    reference = generate_openmetrics(reg) if "openmetrics" in content_type else generate_latest(reg)
    assert (gzip.decompress(body) if packed else body) == reference


@pytest.mark.parametrize("shape", [None, Shape()], ids=["assembled", "templated"])
async def test_escaping_and_label_clashes_render_identically(shape: Shape | None) -> None:
    tricky = Target(
        key="k",
        identity=Identity(namespace='ns"q', project="p\\b", shoot="s\nt", etcd="{e}", pod="π-0"),
        scrape=ScrapeSpec(url="http://x"),
        log=FileLogSpec(path="-"),
    )
    fam = RelayedFamily(
        name="etcd_network_peer_round_trip_time_seconds",
        type="histogram",
        help='Round "trip"\\ \n time',
        samples=(
            Sample(
                "etcd_network_peer_round_trip_time_seconds_bucket",
                (("To", '{0}"\\'), ("le", "+Inf")),
                3,
            ),
            Sample("etcd_network_peer_round_trip_time_seconds_bucket", (("pod", "theirs"),), 1),
            Sample("etcd_network_peer_round_trip_time_seconds_sum", (), math.nan),
            Sample("etcd_network_peer_round_trip_time_seconds_count", (), 1e21),
        ),
        shape=shape,
    )
    store = Store()
    store.upsert(tricky).record_scrape_success((fam,), duration=0.1, now=NOW)
    reg = registry(store)
    text = await render(reg, "", gzip=False)
    assert text == (generate_latest(reg), "text/plain; version=0.0.4; charset=utf-8")
    om = await render(reg, OM_ACCEPT, gzip=False)
    assert om is not None
    assert om[0] == generate_openmetrics(reg)
    assert b'exported_pod="theirs"' in om[0]


def samples_by_name(store: Store) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(generate_latest(registry(store)).decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_removed_target_series_vanish() -> None:
    store = fixed_store()
    before = samples_by_name(store)
    assert any(lab["shoot"] == "alpha" for lab, _ in before["etcd_latency_target_up"])
    store.remove(ALPHA.key)
    after = generate_latest(registry(store)).decode()
    assert 'shoot="alpha"' not in after
    assert 'shoot="beta"' in after


def test_latency_histograms_carry_volume_labels_and_etcd_buckets() -> None:
    wal = samples_by_name(fixed_store())["etcd_latency_disk_wal_fsync_duration_seconds_bucket"]
    alpha = [(lab, v) for lab, v in wal if lab["pod"] == "etcd-main-0"]
    assert len(alpha) == 15  # etcd's 14 buckets plus +Inf
    labels = alpha[0][0]
    assert labels["storage_class"] == "standard"
    assert labels["disk_class"] == "hdd"
    assert labels["pvc"] == "main-etcd-etcd-main-0"
    assert {lab["le"] for lab, _ in alpha} >= {"0.001", "8.192", "+Inf"}


def test_gauges_named_total_stay_gauges() -> None:
    text = generate_latest(registry(fixed_store())).decode()
    assert "# TYPE etcd_latency_disk_wal_write_bytes_total gauge" in text
    assert "# TYPE etcd_latency_server_slow_apply_total counter" in text
    assert "etcd_latency_server_slow_apply_total{" in text


def test_target_up_appears_after_the_first_scrape_only() -> None:
    store = Store()
    state = store.upsert(HOST)
    assert "etcd_latency_target_up" not in samples_by_name(store)
    errors = samples_by_name(store)["etcd_latency_exporter_scrape_errors_total"]
    assert sorted(lab["reason"] for lab, _ in errors) == sorted(SCRAPE_ERROR_REASONS)
    state.record_scrape_error("connect", duration=0.001)
    up = samples_by_name(store)["etcd_latency_target_up"]
    assert [v for _, v in up] == [0.0]


def test_log_events_start_at_zero_for_every_kind() -> None:
    store = Store()
    store.upsert(ALPHA)
    events = samples_by_name(store)["etcd_latency_log_events_total"]
    assert sorted(lab["event"] for lab, _ in events) == sorted(str(k) for k in EventKind)
    assert {v for _, v in events} == {0.0}
    assert samples_by_name(store)["etcd_latency_log_stream_up"][0][1] == 0.0


def test_mismatch_only_where_a_class_is_expected() -> None:
    mismatch = samples_by_name(fixed_store())["etcd_latency_storage_class_mismatch"]
    assert sorted((lab["shoot"], v) for lab, v in mismatch) == [("alpha", 1.0), ("beta", 0.0)]


def test_targets_by_state() -> None:
    targets = samples_by_name(fixed_store())["etcd_latency_exporter_targets"]
    assert {lab["state"]: v for lab, v in targets} == {"up": 2.0, "down": 1.0, "unknown": 0.0}


def test_a_type_clash_between_etcd_versions_keeps_the_first() -> None:
    gauge = RelayedFamily(
        "etcd_server_has_leader", "gauge", "h", (Sample("etcd_server_has_leader", (), 1),)
    )
    untyped = RelayedFamily(
        "etcd_server_has_leader", "untyped", "", (Sample("etcd_server_has_leader", (), 0),)
    )
    store = Store()
    store.upsert(HOST).record_scrape_success((gauge,), duration=0.1, now=NOW)
    store.upsert(ALPHA).record_scrape_success((untyped,), duration=0.1, now=NOW)
    values = samples_by_name(store)["etcd_latency_server_has_leader"]
    assert [v for _, v in values] == [1.0]


async def test_label_cache_follows_relabelled_targets() -> None:
    store = Store()
    store.upsert(HOST).record_scrape_success(extract_families(PAYLOADS["3.4"]), duration=1, now=NOW)
    body = registry(store).body
    assert b'pod="etcd-a"' in b"".join(await body.text(openmetrics=False))
    store.upsert(Target(key=HOST.key, identity=Identity(pod="etcd-b"), scrape=HOST.scrape))
    text = b"".join(await body.text(openmetrics=False))
    assert b'pod="etcd-b"' in text
    assert b'pod="etcd-a"' not in text


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**60), 2**60))
def test_go_float_equals_prometheus_client(value: float) -> None:
    assert go_float(value) == floatToGoString(value)


def test_member_state_and_restarts() -> None:
    got = samples_by_name(fixed_store())
    states = {
        (lab["shoot"] or lab["pod"], lab["state"]): v for lab, v in got["etcd_latency_member_state"]
    }
    assert states[("beta", "restarting")] == 1.0
    assert states[("beta", "running")] == 0.0
    assert states[("alpha", "running")] == 1.0  # static targets always run
    assert states[("etcd-a", "gone")] == 0.0
    assert len(states) == 3 * 4
    restarts = got["etcd_latency_member_restarts_total"]
    assert [(lab["shoot"], v) for lab, v in restarts] == [("beta", 3.0)]  # members only


def test_relayed_families_stay_through_a_failed_scrape_and_a_crash() -> None:
    got = samples_by_name(fixed_store())
    beta_up = [v for lab, v in got["etcd_latency_target_up"] if lab["shoot"] == "beta"]
    assert beta_up == [0.0]
    wal = got["etcd_latency_disk_wal_fsync_duration_seconds_count"]
    assert [lab["pod"] for lab, _ in wal if lab["shoot"] == "beta"] == ["etcd-events-0"]


def test_a_member_that_never_ran_is_down_before_any_scrape() -> None:
    store = Store()
    pending = Member(state=MemberState.PENDING, uid="u", reason="ContainerCreating")
    store.upsert(replace(BETA, scrape=None, member=pending))
    got = samples_by_name(store)
    assert [v for _, v in got["etcd_latency_target_up"]] == [0.0]
    assert {lab["reason"] for lab, _ in got["etcd_latency_exporter_scrape_errors_total"]} == set(
        SCRAPE_ERROR_REASONS
    )
