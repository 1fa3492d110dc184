"""Kubernetes discovery against the API emulator: targets, volumes, drift, changes, sharding."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest

from exporter.discovery.departure import NAMESPACE_DELETED, NOT_MATCHING, why_gone
from exporter.model import KubernetesLogSpec, MemberState, Target
from tests.support.kube import objects
from tests.support.kube.client import eventually, kube_api, running_discovery
from tests.support.kube.fixtures import kube_fixture  # noqa: F401
from tests.support.kube.scenario import (
    FAST,
    STANDARD,
    THREE_SHOOTS,
    add_member,
    add_three_shoots,
    default_pem,
)
from tests.support.kube.server import KubeEmulator

pytestmark = pytest.mark.timeout(60)

SIX = {f"{ns}/{etcd}-0" for ns, etcd in THREE_SHOOTS}


async def test_three_shoots_volumes_and_drift(kube: KubeEmulator) -> None:
    add_three_shoots(kube)
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        targets = await pub.until(lambda t: set(t) == SIX)
    got = {
        key: (
            t.volume.storage_class,
            t.volume.disk_class,
            t.volume.expected_storage_class,
            t.volume.expected_from,
            t.volume.mismatch,
        )
        for key, t in targets.items()
    }
    # etcd-events' Etcd says "": the cluster's default class (standard) is intended.
    assert got == {
        "shoot--p1--a/etcd-main-0": (FAST, "ssd", FAST, "etcd", False),
        "shoot--p1--a/etcd-events-0": (STANDARD, "hdd", STANDARD, "default-class", False),
        "shoot--p1--b/etcd-main-0": (FAST, "ssd", FAST, "etcd", False),
        "shoot--p1--b/etcd-events-0": (FAST, "ssd", STANDARD, "default-class", True),
        "shoot--p2--c/etcd-main-0": (STANDARD, "hdd", FAST, "etcd", True),
        "shoot--p2--c/etcd-events-0": (STANDARD, "hdd", STANDARD, "default-class", False),
    }
    drifted = targets["shoot--p2--c/etcd-main-0"]
    assert drifted.identity.project == "p2"
    assert drifted.identity.shoot == "c"
    assert drifted.identity.etcd == "etcd-main"
    assert drifted.volume.pvc == "main-etcd-etcd-main-0"
    assert drifted.volume.pv == "pv-shoot--p2--c-main-etcd-etcd-main-0"
    assert drifted.volume.provisioner == "kubernetes.io/gce-pd"
    assert drifted.volume.disk_type == "pd-standard"
    assert drifted.scrape is not None
    assert drifted.scrape.url.startswith("http://127.0.1.")
    assert drifted.log is not None


async def test_pod_matching_two_selectors_counts_once_and_others_are_ignored(
    kube: KubeEmulator,
) -> None:
    both = {**objects.druid_labels("etcd-main"), "app": "etcd-statefulset"}
    old = {"app": "etcd-statefulset", "instance": "etcd-events", "name": "etcd"}
    pods = [("etcd-main", both), ("etcd-events", old), ("other", {"app": "other"})]
    for i, (etcd, labels) in enumerate(pods):
        pod = objects.etcd_pod(
            namespace="shoot--x--y",
            name=f"{etcd}-0",
            etcd=etcd,
            pod_ip=f"10.0.0.{i + 1}",
            claim=f"c{i}",
            labels=labels,
        )
        kube.add("pods", pod)
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        targets = await pub.until(lambda t: len(t) == 2)
    assert set(targets) == {"shoot--x--y/etcd-main-0", "shoot--x--y/etcd-events-0"}
    assert targets["shoot--x--y/etcd-events-0"].identity.etcd == "etcd-events"


async def test_compaction_job_pods_are_never_members(kube: KubeEmulator) -> None:
    """etcd-druid's compaction Job pods match the default selectors (druid's labels) but run no
    etcd: neither running nor completed are they members (no series, no TargetDown)."""
    ns = "shoot--p--c"
    add_member(kube, namespace=ns, etcd="etcd-main", pod_ip="10.0.0.1")
    kube.add("pods", objects.compaction_job_pod(namespace=ns, etcd="etcd-main", pod_ip="10.0.0.9"))
    done = objects.compaction_job_pod(namespace=ns, etcd="etcd-main", pod_ip="", succeeded=True)
    kube.add("pods", done)
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        targets = await pub.until(lambda t: f"{ns}/etcd-main-0" in t)
        await asyncio.sleep(0.3)  # any later publication would show a job pod too
    for published in [targets, *pub.sets]:
        assert set(published) == {f"{ns}/etcd-main-0"}, set(published)


def state_of(targets: dict[str, Target], key: str) -> MemberState | None:
    target = targets.get(key)
    return target.member.state if target is not None and target.member is not None else None


async def test_every_matching_pod_is_a_member_ready_or_not(kube: KubeEmulator) -> None:
    add_member(kube, namespace="shoot--p--r", etcd="etcd-main", pod_ip="10.0.0.1", ready=False)
    add_member(kube, namespace="shoot--p--r", etcd="etcd-events", pod_ip="10.0.0.2")
    key, events = "shoot--p--r/etcd-main-0", "shoot--p--r/etcd-events-0"
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        # an unready etcd is a member and is scraped: a slow etcd often fails its probe
        targets = await pub.until(lambda t: set(t) == {key, events})
        assert state_of(targets, key) is MemberState.RUNNING
        assert targets[key].scrape is not None
        kube.restart_container("shoot--p--r", "etcd-events-0")
        targets = await pub.until(lambda t: t[events].member.restart_count == 1)  # type: ignore[union-attr]
        assert targets[events].log == pub.sets[0][events].log  # the same pod: the same follower
        # a failed pod (evicted, its container terminated) is a member that does not run
        kube.crash_container("shoot--p--r", "etcd-main-0", back_off=False)
        kube.set_ready("shoot--p--r", "etcd-main-0", False, phase="Failed")
        targets = await pub.until(lambda t: state_of(t, key) is MemberState.RESTARTING)
    assert targets[key].member is not None
    assert targets[key].member.reason == "Error"


async def test_member_through_crash_loop_and_recreation(kube: KubeEmulator) -> None:
    ns, pod = "shoot--p--l", "etcd-main-0"
    key = f"{ns}/{pod}"
    add_member(kube, namespace=ns, etcd="etcd-main", pod_ip="10.0.0.1")
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        first = (await pub.until(lambda t: key in t))[key]
        assert first.member is not None
        kube.crash_container(ns, pod)
        down = (await pub.until(lambda t: state_of(t, key) is MemberState.RESTARTING))[key]
        assert down.member is not None
        assert down.member.reason == "CrashLoopBackOff"
        assert down.member.last_exit == "Error, exit code 2"
        assert down.member.last_exit_at is not None
        assert (down.scrape, down.log) == (first.scrape, first.log)
        kube.start_container(ns, pod)
        up = (await pub.until(lambda t: state_of(t, key) is MemberState.RUNNING))[key]
        assert up.member is not None
        assert up.member.restart_count == 1
        # deleted and created again by the StatefulSet: the same member, a new pod
        kube.recreate_pod(ns, pod)
        pending = (await pub.until(lambda t: state_of(t, key) is MemberState.PENDING))[key]
        assert pending.member is not None
        assert pending.member.uid != first.member.uid
        assert pending.scrape == first.scrape  # no IP yet: the last scrape spec stays
        assert isinstance(pending.log, KubernetesLogSpec)
        assert pending.log.uid == pending.member.uid
        kube.start_container(ns, pod, pod_ip="10.0.0.9")
        again = (await pub.until(lambda t: state_of(t, key) is MemberState.RUNNING))[key]
    assert again.scrape is not None
    assert again.scrape.url.startswith("http://10.0.0.9:")
    assert again.member is not None
    assert again.member.restart_count == 0
    assert all(key in published for published in pub.sets)  # never left the set


async def test_pod_and_namespace_deletion(kube: KubeEmulator) -> None:
    add_three_shoots(kube)
    grace = {"member_grace": 60.0}
    gone = "shoot--p1--a/etcd-main-0"
    async with kube_api(kube) as api, running_discovery(api, kubernetes=grace) as (_, pub):
        await pub.until(lambda t: set(t) == SIX)
        kube.delete_pod("shoot--p1--a", "etcd-main-0")
        targets = await pub.until(lambda t: state_of(t, gone) is MemberState.GONE)
        assert set(targets) == SIX  # kept for the grace period
        # a deleted namespace takes its members at once
        kube.delete_namespace("shoot--p1--b")
        await pub.until(lambda t: not any(k.startswith("shoot--p1--b/") for k in t), seconds=5)
    assert set(pub.last) == {
        gone,
        "shoot--p1--a/etcd-events-0",
        "shoot--p2--c/etcd-main-0",
        "shoot--p2--c/etcd-events-0",
    }


async def test_gone_member_goes_after_the_grace_and_returns_when_recreated(
    kube: KubeEmulator,
) -> None:
    add_three_shoots(kube)
    grace = {"member_grace": 0.8}
    key, back = "shoot--p1--a/etcd-main-0", "shoot--p2--c/etcd-main-0"
    async with kube_api(kube) as api, running_discovery(api, kubernetes=grace) as (_, pub):
        await pub.until(lambda t: set(t) == SIX)
        kube.recreate_pod("shoot--p2--c", "etcd-main-0")  # deleted and created again at once
        kube.delete_pod("shoot--p1--a", "etcd-main-0")  # deleted for good
        await pub.until(lambda t: state_of(t, key) is MemberState.GONE)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await pub.until(lambda t: key not in t, seconds=5)
        waited = loop.time() - started
    assert 0.5 <= waited <= 3.0, waited  # no API event ends the grace: a timer does
    assert state_of(pub.last, back) is MemberState.PENDING
    assert all(back in published for published in pub.sets)


async def test_relabelled_pod_leaves_at_once_and_namespaces_fall_back_to_the_claim(
    kube: KubeEmulator,
) -> None:
    add_three_shoots(kube)
    kube.deny("namespaces")  # no `get namespaces`: a deleted shoot is told by its PVCs
    grace = {"member_grace": 60.0}
    relabelled = "shoot--p1--a/etcd-events-0"
    async with kube_api(kube) as api, running_discovery(api, kubernetes=grace) as (_, pub):
        await pub.until(lambda t: set(t) == SIX)

        def other_labels(obj: dict) -> None:  # type: ignore[type-arg]
            obj["metadata"]["labels"] = {"app": "something-else"}

        kube.store.modify("pods", ("shoot--p1--a", "etcd-events-0"), other_labels)
        await pub.until(lambda t: relabelled not in t, seconds=5)
        kube.delete_namespace("shoot--p1--b")
        # both well within the 60 s grace: the lookup (the same pod still there) and the PVCs
        await pub.until(lambda t: not any(k.startswith("shoot--p1--b/") for k in t), seconds=5)


async def test_class_changes_and_drift_repair_are_seen(kube: KubeEmulator) -> None:
    add_three_shoots(kube)
    key = "shoot--p2--c/etcd-main-0"
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        await pub.until(lambda t: set(t) == SIX)

        def fast(obj: dict) -> None:  # type: ignore[type-arg]
            obj["spec"]["storageClassName"] = FAST

        # The claim is recreated on the fast class (how the drift gets repaired).
        kube.store.modify("persistentvolumeclaims", ("shoot--p2--c", "main-etcd-etcd-main-0"), fast)
        await pub.until(lambda t: t[key].volume.mismatch is False)

        def hdd_type(obj: dict) -> None:  # type: ignore[type-arg]
            obj["parameters"]["type"] = "pd-standard"

        kube.store.modify("storageclasses", ("", FAST), hdd_type)
        targets = await pub.until(lambda t: t[key].volume.disk_class == "hdd")
    assert targets[key].volume.disk_type == "pd-standard"


async def test_watch_expiry_relists_and_renewal_keeps_events(
    kube: KubeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    kube.max_watch_seconds = 0.5  # the server ends every watch quickly: renewals
    add_three_shoots(kube)
    caplog.set_level(logging.INFO)
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        await pub.until(lambda t: set(t) == SIX)
        await asyncio.sleep(1.2)  # a few renewals
        kube.delete_pod("shoot--p1--a", "etcd-events-0")
        await pub.until(lambda t: state_of(t, "shoot--p1--a/etcd-events-0") is MemberState.GONE)
        # Compaction plus a dropped watch: resuming from the old version gets 410 → list again.
        kube.store.compact()
        kube.close_watches()
        add_member(kube, namespace="shoot--p9--z", etcd="etcd-main", pod_ip="10.9.9.9")
        await pub.until(lambda t: "shoot--p9--z/etcd-main-0" in t)
        # the informers that were behind resume (after their backoff, at most 10 s) and relist
        await eventually(lambda: "Watch expired, listing again" in caplog.text, seconds=15)


async def test_watch_answered_with_http_410_relists(
    kube: KubeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    kube.gone_as_status = True
    kube.bookmark_interval = 3600  # no bookmarks: the informers stay on an old version
    add_three_shoots(kube)
    caplog.set_level(logging.INFO)
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        await pub.until(lambda t: set(t) == SIX)
        kube.add("storageclasses", objects.storage_class(name="x", provisioner="p", parameters={}))
        kube.store.compact()  # every informer's version is now too old
        kube.close_watches()
        kube.delete_pod("shoot--p1--a", "etcd-main-0")
        await pub.until(lambda t: state_of(t, "shoot--p1--a/etcd-main-0") is MemberState.GONE)
        # listed twice per selector (the other selector's list may still be on its way)
        await eventually(lambda: kube.count_requests("/api/v1/pods", limit="500") >= 4, seconds=10)
    assert "Watch expired, listing again" in caplog.text


async def test_etcd_crd_missing_uses_configured_expectations(
    kube: KubeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    kube.etcd_crd_installed = False
    add_three_shoots(kube)
    caplog.set_level(logging.INFO)
    expected = {"expected_storage_classes": {"etcd-main": FAST}}
    async with kube_api(kube) as api, running_discovery(api, kubernetes=expected) as (_, pub):
        targets = await pub.until(lambda t: set(t) == SIX)
    assert targets["shoot--p2--c/etcd-main-0"].volume.mismatch is True
    assert targets["shoot--p1--a/etcd-events-0"].volume.mismatch is None
    assert caplog.text.count("Kubernetes API not installed, working without it") == 1


async def test_namespaced_discovery(kube: KubeEmulator) -> None:
    add_three_shoots(kube)
    ns = {"namespaces": ["shoot--p1--b", "shoot--p2--c"]}
    async with kube_api(kube) as api, running_discovery(api, kubernetes=ns) as (_, pub):
        targets = await pub.until(lambda t: len(t) == 4)
    assert {t.identity.namespace for t in targets.values()} == {"shoot--p1--b", "shoot--p2--c"}
    assert targets["shoot--p2--c/etcd-main-0"].volume.mismatch is True


async def test_sharding_publishes_disjoint_sets_covering_all(kube: KubeEmulator) -> None:
    add_three_shoots(kube)
    for i in range(20):
        add_member(kube, namespace=f"shoot--s--c{i}", etcd="etcd-main", pod_ip=f"10.1.0.{i + 1}")
    total = len(SIX) + 20
    async with (
        kube_api(kube) as api,
        running_discovery(api, shard=0, total_shards=2) as (_, pub0),
        running_discovery(api, shard=1, total_shards=2) as (_, pub1),
    ):
        await asyncio.gather(pub0.until(bool), pub1.until(bool))
        await asyncio.sleep(0.2)
        a, b = set(pub0.last), set(pub1.last)
    assert not a & b
    assert len(a | b) == total
    assert a
    assert b
    # Both members of a shoot land on the same replica.
    for ns in {k.split("/")[0] for k in a | b}:
        assert {k for k in a if k.startswith(ns + "/")} in (
            set(),
            {k for k in a | b if k.startswith(ns + "/")},
        )


async def test_tls_from_a_fixed_name_secret_and_rotation_in_place(kube: KubeEmulator) -> None:
    """--scrape.client-secret (clusters without druid): a fixed name, rotated in place; a
    namespace without it, or a key it lacks, falls back to the file flags."""
    add_member(
        kube, namespace="shoot--p1--a", etcd="etcd-main", pod_ip="10.0.0.1", storage_class=FAST
    )
    add_member(
        kube, namespace="shoot--p1--b", etcd="etcd-main", pod_ip="fd00::1", storage_class=FAST
    )
    pem = default_pem()
    data = {"ca.crt": pem.bundle, "tls.crt": pem.client_cert, "tls.key": pem.client_key}
    kube.add("secrets", objects.secret(namespace="shoot--p1--a", name="etcd-client", data=data))
    scrape = {
        "scheme": "https",
        "ca_file": "/etc/ca.pem",
        "server_name": "{etcd}-local",
        "secret_refs": False,
        "client_secret": "etcd-client",
    }
    async with (
        kube_api(kube) as api,
        running_discovery(api, scrape=scrape, secret_refresh=0.2, secret_retry=0.2) as (_, pub),
    ):
        targets = await pub.until(lambda t: len(t) == 2)
        a = targets["shoot--p1--a/etcd-main-0"].scrape
        assert a is not None
        assert a.url == "https://10.0.0.1:2379/metrics"
        assert a.tls is not None
        assert (a.tls.ca_data, a.tls.cert_data, a.tls.key_data, a.tls.ca_file) == (
            pem.bundle, pem.client_cert, pem.client_key, None,
        )  # fmt: skip
        assert a.tls.server_name == "etcd-main-local"
        b = targets["shoot--p1--b/etcd-main-0"].scrape
        assert b is not None
        assert b.url == "https://[fd00::1]:2379/metrics"
        assert b.tls is not None
        assert (b.tls.ca_file, b.tls.cert_data, b.tls.error) == ("/etc/ca.pem", None, None)
        rotated = {"tls.crt": pem.server_cert, "tls.key": pem.server_key}  # no ca.crt any more
        kube.add(
            "secrets", objects.secret(namespace="shoot--p1--a", name="etcd-client", data=rotated)
        )
        targets = await pub.until(
            lambda t: t["shoot--p1--a/etcd-main-0"].scrape.tls.cert_data == pem.server_cert  # type: ignore[union-attr]
        )
        tls = targets["shoot--p1--a/etcd-main-0"].scrape.tls  # type: ignore[union-attr]
        assert (tls.ca_data, tls.ca_file) == (None, "/etc/ca.pem")


async def test_denied_pod_list_is_logged_once_counted_and_retried(
    kube: KubeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    add_three_shoots(kube)
    kube.deny("pods", verb="list")
    errors: Counter[tuple[str, str, str]] = Counter()
    caplog.set_level(logging.INFO)
    async with kube_api(kube, errors=errors) as api, running_discovery(api) as (_, pub):
        await eventually(lambda: errors[("pods", "list", "403")] >= 2, seconds=10)
        assert not pub.sets  # not synced: nothing published
        kube.allow("pods", verb="list")
        await pub.until(lambda t: set(t) == SIX, seconds=20)
    denials = [r for r in caplog.records if r.getMessage().startswith("Kubernetes API denied")]
    # Two informers (one per selector) were denied many times: one line names the permission.
    assert len(denials) == 1
    assert (denials[0].verb, denials[0].resource, denials[0].code) == ("list", "pods", 403)  # type: ignore[attr-defined]


async def test_departure_lookups(kube: KubeEmulator) -> None:
    add_three_shoots(kube)
    ns, pod = "shoot--p1--a", "etcd-main-0"
    uid = kube.store.get("pods", (ns, pod))["metadata"]["uid"]  # type: ignore[index]
    async with kube_api(kube) as api:
        # the same pod is still there: it left the caches because no selector matches it
        assert await why_gone(api, namespace=ns, pod=pod, uid=uid) == NOT_MATCHING
        kube.recreate_pod(ns, pod)  # another pod of the same name: it may come back
        assert await why_gone(api, namespace=ns, pod=pod, uid=uid) == ""
        kube.delete_pod(ns, pod)
        assert await why_gone(api, namespace=ns, pod=pod, uid=uid) == ""

        def terminating(obj: dict) -> None:  # type: ignore[type-arg]
            obj["metadata"]["deletionTimestamp"] = objects.rfc3339()

        kube.store.modify("namespaces", ("", ns), terminating)
        assert await why_gone(api, namespace=ns, pod=pod, uid=uid) == NAMESPACE_DELETED
        kube.delete_namespace("shoot--p1--b")
        gone = await why_gone(api, namespace="shoot--p1--b", pod=pod, uid="x")
        assert gone == NAMESPACE_DELETED
        kube.deny("namespaces")  # without `get namespaces` the lookup decides nothing
        assert await why_gone(api, namespace="shoot--p1--b", pod=pod, uid="x") == ""
