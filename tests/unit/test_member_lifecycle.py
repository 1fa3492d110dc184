"""A member outlives its container: states, restart counting, membership, which log to read."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from exporter import metrics as m
from exporter.diagnosis.evidence import pod_member_evidence as diagnose_member_evidence
from exporter.diagnosis.histogram import window_latency
from exporter.diagnosis.verdict import (
    NOT_RUNNING,
    DiskEvidence,
    LogEvidence,
    MemberEvidence,
    VerdictCode,
    judge,
    p99_text,
)
from exporter.discovery.members import MemberBook, gone_target
from exporter.kube.containers import ContainerStatus, container_status, member_state, rfc3339
from exporter.model import (
    Identity,
    KubernetesLogSpec,
    Member,
    MemberState,
    RelayedFamily,
    Sample,
    ScrapeSpec,
    Target,
    Volume,
)
from exporter.sources.runs import next_step
from exporter.state import Store, restarts_added

RUNNING, RESTARTING, PENDING, GONE = (
    MemberState.RUNNING,
    MemberState.RESTARTING,
    MemberState.PENDING,
    MemberState.GONE,
)


def test_member_states_are_the_metric_label_values() -> None:
    assert tuple(str(s) for s in MemberState) == m.MEMBER_STATES


# -- the container's status -------------------------------------------------------------------


def pod(**status: Any) -> dict[str, Any]:
    entry = {"name": "etcd", "restartCount": 0, "ready": False, **status}
    other = {"name": "backup-restore", "containerID": "containerd://b", "state": {"running": {}}}
    return {"status": {"containerStatuses": [other, entry]}}


CRASH_LOOP = pod(
    containerID="containerd://c2",
    restartCount=4,
    state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
    lastState={
        "terminated": {
            "containerID": "containerd://c2",
            "exitCode": 2,
            "reason": "Error",
            "finishedAt": "2026-11-21T05:30:12Z",
        }
    },
)


def test_status_of_a_crash_looping_container() -> None:
    st = container_status(CRASH_LOOP, "etcd")
    assert (st.running, st.waiting_reason, st.last_id, st.restart_count) == (
        False,
        "CrashLoopBackOff",
        "containerd://c2",
        4,
    )
    assert st.last_exit == "Error, exit code 2"
    assert st.last_finished_at == rfc3339("2026-11-21T05:30:12Z") == 1795239012.0
    assert member_state(st) == (RESTARTING, "CrashLoopBackOff")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (pod(containerID="containerd://c1", state={"running": {}}), (RUNNING, "")),
        (pod(state={"waiting": {"reason": "ContainerCreating"}}), (PENDING, "ContainerCreating")),
        ({"status": {"phase": "Pending"}}, (PENDING, "pod pending")),
        (
            pod(
                containerID="containerd://c1",
                state={"terminated": {"containerID": "containerd://c1", "reason": "OOMKilled"}},
            ),
            (RESTARTING, "OOMKilled"),
        ),
        (pod(restartCount=3, state={}), (RESTARTING, "not running")),
        ({"status": {"containerStatuses": "garbage"}}, (PENDING, "pod pending")),
    ],
)
def test_member_state_of_a_pod(raw: dict[str, Any], expected: tuple[MemberState, str]) -> None:
    assert member_state(container_status(raw, "etcd")) == expected


def test_bad_times_and_a_missing_container() -> None:
    assert rfc3339("yesterday") is None
    assert rfc3339(None) is None
    assert container_status({}, "etcd") == ContainerStatus()
    # a pod without the etcd container is never a member (discovery filters it out); an empty
    # status is a pod that has not started etcd yet
    assert member_state(ContainerStatus()) == (PENDING, "pod pending")


# -- restarts, never backwards ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("seen", "uid", "count", "added"),
    [
        (None, "a", 7, 7),  # first look: the pod's history, like kube-state-metrics
        (("a", 7), "a", 7, 0),
        (("a", 7), "a", 9, 2),
        (("a", 9), "a", 4, 0),  # a count going down in the same pod adds nothing
        (("a", 9), "b", 0, 0),  # a re-created pod starts at 0: nothing
        (("a", 9), "b", 2, 2),  # ... and adds what it has when first seen
    ],
)
def test_restarts_added(seen: tuple[str, int] | None, uid: str, count: int, added: int) -> None:
    assert restarts_added(seen, uid=uid, count=count) == added


def member_target(state: MemberState, *, uid: str = "a", restarts: int = 0) -> Target:
    return Target(
        key="ns/etcd-main-0",
        identity=Identity(namespace="ns", etcd="etcd-main", pod="etcd-main-0"),
        volume=Volume(pvc="main-etcd-etcd-main-0"),
        scrape=ScrapeSpec(url="http://10.0.0.1:2379/metrics"),
        log=KubernetesLogSpec(namespace="ns", pod="etcd-main-0", uid=uid),
        member=Member(state=state, uid=uid, restart_count=restarts),
    )


def test_member_counter_through_a_crash_loop_and_a_recreation() -> None:
    store = Store()
    state = store.upsert(member_target(RUNNING, restarts=2), now=100.0)
    assert (state.restarts, list(state.restart_times)) == (2, [])
    steps = [
        (RESTARTING, "a", 2, 110.0),
        (RUNNING, "a", 3, 120.0),
        (RESTARTING, "a", 3, 130.0),
        (RUNNING, "a", 5, 140.0),  # two restarts between two looks
        (GONE, "a", 5, 150.0),
        (PENDING, "b", 0, 160.0),  # re-created
        (RUNNING, "b", 1, 170.0),
    ]
    ups = []
    for st, uid, count, now in steps:
        store.upsert(member_target(st, uid=uid, restarts=count), now=now)
        ups.append(state.up)
    assert state.restarts == 2 + 1 + 2 + 1
    assert list(state.restart_times) == [120.0, 140.0, 140.0, 170.0]
    assert state.restarts_within(35.0, now=170.0) == 3
    assert [ups[0], ups[2], ups[4]] == [False, False, False]  # down while not running
    assert store.get("ns/etcd-main-0") is state


# -- the latency window never spans two etcd processes ----------------------------------------


def fsync(counts: tuple[float, ...]) -> tuple[RelayedFamily, ...]:
    name = "etcd_disk_wal_fsync_duration_seconds"
    bounds = ("0.001", "0.008", "0.064", "+Inf")
    samples = tuple(
        Sample(f"{name}_bucket", (("le", le),), c) for le, c in zip(bounds, counts, strict=True)
    )
    samples += (Sample(f"{name}_count", (), counts[-1]),)
    return (RelayedFamily(name, "histogram", "", samples),)


def p99(state_prev: tuple[RelayedFamily, ...], state_now: tuple[RelayedFamily, ...]) -> Any:
    lat = window_latency(
        state_prev or None,
        state_now,
        name="etcd_disk_wal_fsync_duration_seconds",
        q=0.99,
        bound=0.016,
    )
    assert lat is not None
    return lat


def test_relayed_stay_after_a_failed_scrape_and_a_restart_starts_a_new_window() -> None:
    store = Store()
    state = store.upsert(member_target(RUNNING), now=0.0)
    state.record_scrape_success(fsync((100, 100, 100, 100)), duration=0.1, now=10.0)
    state.record_scrape_error("timeout", duration=1.0)
    assert state.relayed == fsync((100, 100, 100, 100))  # kept, `up` False marks them stale
    assert state.up is False
    # the container restarts; the new etcd made MORE fsyncs in every bucket than the old one
    # had: bucket deltas cannot see the reset, the member's restart does
    store.upsert(member_target(RESTARTING), now=20.0)
    store.upsert(member_target(RUNNING, restarts=1), now=30.0)
    state.record_scrape_success(fsync((100, 150, 400, 400)), duration=0.1, now=40.0)
    assert state.prev_relayed == ()
    lat = p99(state.prev_relayed, state.relayed)  # since the process started: all 400
    assert lat.count == 400
    assert 0.008 < lat.p99 <= 0.064
    state.record_scrape_success(fsync((100, 150, 410, 410)), duration=0.1, now=50.0)
    assert p99(state.prev_relayed, state.relayed).count == 10  # an ordinary window again


def test_a_bucket_going_down_is_a_new_process_not_a_negative_window() -> None:
    lat = p99(fsync((100, 100, 100, 100)), fsync((1, 2, 5, 5)))
    assert lat.counter_reset is True
    assert lat.count == 5
    assert lat.p99 is not None
    assert lat.p99 > 0


# -- membership: gone, grace, removal ---------------------------------------------------------

KEY = "ns/etcd-main-0"
CLAIMS = {"ns/main-etcd-etcd-main-0"}


def test_a_gone_member_stays_for_the_grace_then_goes() -> None:
    book = MemberBook(grace=120.0)
    present = {KEY: member_target(RUNNING)}
    members, removed = book.update(present, now=0.0, claims=CLAIMS)
    assert members == present
    assert removed == {}
    members, removed = book.update({}, now=10.0, claims=CLAIMS)
    assert members[KEY].member is not None
    assert members[KEY].member.state is GONE
    assert members[KEY] == gone_target(present[KEY])
    assert members[KEY].scrape == present[KEY].scrape  # its last target, labels and all
    assert [t.key for t in book.departed()] == [KEY]
    assert book.departed() == []  # looked up once
    assert book.next_deadline() == 130.0
    members, removed = book.update({}, now=129.0, claims=CLAIMS)
    assert KEY in members
    members, removed = book.update({}, now=130.0, claims=CLAIMS)
    assert members == {}
    assert removed == {KEY: "grace period over"}
    assert book.next_deadline() is None


def test_a_member_that_comes_back_starts_a_new_grace() -> None:
    book = MemberBook(grace=60.0)
    book.update({KEY: member_target(RUNNING)}, now=0.0, claims=CLAIMS)
    book.update({}, now=10.0, claims=CLAIMS)
    back = {KEY: member_target(PENDING, uid="b")}
    members, _ = book.update(back, now=20.0, claims=CLAIMS)
    assert members == back
    assert book.next_deadline() is None
    members, _ = book.update({}, now=75.0, claims=CLAIMS)
    assert KEY in members  # gone since 75, not since 10


def test_its_pvc_gone_or_a_lookup_removes_it_at_once() -> None:
    book = MemberBook(grace=600.0)
    book.update({KEY: member_target(RUNNING)}, now=0.0, claims=CLAIMS)
    members, removed = book.update({}, now=1.0, claims=set())
    assert removed == {KEY: "its PVC is gone too"}
    # a claim never seen decides nothing (no PVC, or PVCs not readable)
    book.update({KEY: member_target(RUNNING)}, now=2.0, claims=set())
    members, removed = book.update({}, now=3.0, claims=set())
    assert KEY in members
    assert not book.settle(KEY, uid="other-pod", removal="namespace deleted")
    assert not book.settle(KEY, uid="a", removal="")
    assert book.settle(KEY, uid="a", removal="namespace deleted")
    members, removed = book.update({}, now=4.0, claims=set())
    assert removed == {KEY: "namespace deleted"}


# -- which log to read next -------------------------------------------------------------------


def status(
    *, running: str = "", dead: str = "", count: int = 0, waiting: str = ""
) -> ContainerStatus:
    return ContainerStatus(
        container_id=running or dead,
        running=bool(running),
        waiting_reason=waiting,
        last_id=dead,
        restart_count=count,
    )


@pytest.mark.parametrize(
    ("ours", "drained", "ours_count", "st", "new", "expected"),
    [
        # first look: the running container, or a dead one that ended after following began
        (None, False, None, status(running="c1", dead="c0", count=1), False, ("follow", "c1")),
        (None, False, None, status(running="c1", dead="c0", count=1), True, ("previous", "c0")),
        (None, False, None, status(), False, ("wait", "")),
        # the same container: follow on
        ("c1", False, 1, status(running="c1", dead="c0", count=1), False, ("follow", "c1")),
        # it exited into back-off: read its tail now, then wait
        ("c1", False, 1, status(dead="c1", count=1, waiting="Crash"), False, ("previous", "c1")),
        ("c1", True, 1, status(dead="c1", count=1, waiting="Crash"), False, ("wait", "")),
        # it restarted: its tail first, then the new one
        ("c1", False, 1, status(running="c2", dead="c1", count=2), False, ("previous", "c1")),
        ("c1", True, 1, status(running="c2", dead="c1", count=2), False, ("follow", "c2")),
        # a run started and ended in between: read it whole before the running one
        ("c1", True, 1, status(running="c3", dead="c2", count=3), False, ("previous", "c2")),
    ],
)
def test_next_step(
    ours: str | None,
    drained: bool,
    ours_count: int | None,
    st: ContainerStatus,
    new: bool,
    expected: tuple[str, str],
) -> None:
    step = next_step(
        ours=ours, drained=drained, ours_restarts=ours_count, status=st, previous_is_new=new
    )
    assert (step.action, step.container_id) == expected
    assert (step.lost, step.tail_lost) == (0, False)


def test_next_step_counts_the_runs_gone_unread() -> None:
    # followed c1 (restart count 1); meanwhile c2, c3 ran and ended, c4 runs: c2 and c1's tail
    # are gone, c3 is the kept dead container
    st = status(running="c4", dead="c3", count=4)
    step = next_step(ours="c1", drained=False, ours_restarts=1, status=st, previous_is_new=False)
    assert (step.action, step.container_id) == ("previous", "c3")
    assert (step.lost, step.tail_lost) == (1, True)
    # read to its end once already (a second read only confirms): no tail lost
    step = next_step(
        ours="c1",
        drained=False,
        ours_restarts=1,
        status=st,
        previous_is_new=False,
        ours_read_to_end=True,
    )
    assert (step.lost, step.tail_lost) == (1, False)


# -- diagnose's evidence line -----------------------------------------------------------------


def test_diagnose_names_the_restarts_and_the_last_run() -> None:
    crashed = Member(
        state=RESTARTING,
        uid="a",
        restart_count=5,
        reason="CrashLoopBackOff",
        last_exit="Error, exit code 2",
        last_exit_at=1000.0 - 120,
        pod_started_at=1000.0 - 2820,
    )
    target = replace(member_target(RESTARTING), member=crashed)
    run = p99((), fsync((0, 0, 90, 100)))  # its last run: p99 inside (8 ms, 64 ms]
    evidence = diagnose_member_evidence(target, run, now=1000.0)
    assert evidence is not None
    verdict = judge(
        volume=target.volume,
        disk=DiskEvidence(reachable=False, error=NOT_RUNNING),
        logs=LogEvidence(scope="in the last 1h"),
        member=evidence,
    )
    assert verdict.code is VerdictCode.UNREACHABLE
    assert verdict.reason == (
        "the etcd container is not running: disk latency not measured; restarting "
        "(CrashLoopBackOff): restarted 5 times since the pod started 47m ago (last exit: Error, "
        f"exit code 2, 2m ago); WAL fsync p99 {p99_text(run)} while running"
    )
    static = Target(key="static/x", scrape=ScrapeSpec(url="http://127.0.0.1:1/metrics"))
    assert diagnose_member_evidence(static, None, now=1000.0) is None
    # a member that runs and never restarted adds nothing
    quiet = judge(
        volume=Volume(),
        disk=DiskEvidence(reachable=False, error="connect"),
        logs=LogEvidence(scope="in the last 1h"),
        member=MemberEvidence(state="running"),
    )
    assert quiet.reason == "scraping /metrics failed (connect): disk latency not measured"
