"""End to end: a slow etcd pages through real Prometheus and Alertmanager, and says why.

Two real etcd 3.5 members run on loopback: one with every fdatasync delayed by strace, labelled as
on the HDD class `standard` while it should be on `gardener.cloud-fast` (the incident), and a
healthy one on `gardener.cloud-fast`/ssd (its data on tmpfs where there is one, so the machine's
own disk cannot make it slow). The exporter watches both in static mode; Prometheus scrapes it and
evaluates the rules file with its time scale divided by 30 (tests/support/rules_transform.py);
Alertmanager sends to a webhook inside the test. Then every query of the dashboard runs against
the same Prometheus and must return data.

Each member is alone on its StorageClass, so the copy records a class median from one member on
(production: 5). Each member's ratio to its class median is then 1: the dashboard's ranking has
rows, and the class alerts stay silent, the slow member included (a class slow as a whole is the
fixed thresholds' business).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.e2e.webhook import Alert, WebhookReceiver
from tests.support import stack
from tests.support.dashboard import load_dashboard, queries, substitute
from tests.support.etcd import EtcdProcess, EtcdUnavailable, free_port, start_etcd
from tests.support.promtool import RULES_FILE
from tests.support.rules_transform import scale_rules, with_class_min_members

SLOW_NS = "shoot--e2e--slow"
FAST_NS = "shoot--e2e--fast"
FSYNC_DELAY_US = 40_000  # every WAL fsync and backend commit lands in the 64ms bucket
ALERT_TIMEOUT = 120.0
# Grafana variables as the dashboard's "All" sends them; windows hold ~20 one-second scrapes.
DASHBOARD_VALUES = {
    "__rate_interval": "20s",
    "__interval": "2s",
    "__range": "5m",
    "namespace": ".*",
    "etcd": ".*",
    "datasource": "prometheus",
}


@pytest.fixture
def fast_data_dir(tmp_path: Path) -> Iterator[Path]:
    """Data directory of the healthy member: on tmpfs when the machine has one."""
    shm = Path("/dev/shm")  # the standard tmpfs mount; the directory is removed
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path / "fast.etcd"
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="etcd-latency-e2e-") as tmp:
        yield Path(tmp) / "fast.etcd"


def _targets(slow: EtcdProcess, fast: EtcdProcess) -> str:
    member = {"etcd": "etcd-main", "pod": "etcd-main-0", "pvc": "main-etcd-etcd-main-0"}
    targets = [
        {
            "name": "slow",
            "metrics_url": slow.metrics_url,
            "log": {"file": str(slow.log_path)},
            "namespace": SLOW_NS,
            **member,
            "pv": "pv-shoot--e2e--slow-main-0",
            "storage_class": "standard",
            "disk_class": "hdd",
            "expected_storage_class": "gardener.cloud-fast",
            # 25Gi pd-standard: 37.5 write IOPS expected, below etcd's 50
            "provisioner": "kubernetes.io/gce-pd",
            "disk_type": "pd-standard",
            "capacity": "25Gi",
            "volume_handle": "pvc-5e1c0f9a-slow",
        },
        {
            "name": "fast",
            "metrics_url": fast.metrics_url,
            "log": {"file": str(fast.log_path)},
            "namespace": FAST_NS,
            **member,
            "pv": "pv-shoot--e2e--fast-main-0",
            "storage_class": "gardener.cloud-fast",
            "disk_class": "ssd",
            "expected_storage_class": "gardener.cloud-fast",
            "provisioner": "pd.csi.storage.gke.io",
            "disk_type": "pd-ssd",
            "capacity": "25Gi",
            "volume_handle": "projects/e2e/zones/europe-west1-b/disks/pvc-fast",
        },
    ]
    return yaml.safe_dump({"targets": targets})


class Load:
    """Puts and reads Kubernetes-shaped keys on members from a thread until stopped."""

    def __init__(self, *members: EtcdProcess) -> None:
        self._members = members
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(m,)) for m in members]
        self.errors = 0

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15.0)

    def _run(self, member: EtcdProcess) -> None:
        i = 0
        while not self._stop.is_set():
            key = f"/registry/pods/shoot--e2e--load/pod-{i % 64}"
            try:
                member.put(key, "x" * 256, timeout=10.0)
                member.get(key, timeout=10.0)
            except (OSError, RuntimeError):
                self.errors += 1
                self._stop.wait(0.2)
            i += 1


def _fired(alerts: list[Alert], name: str, namespace: str) -> list[Alert]:
    return [
        a
        for a in alerts
        if a["labels"].get("alertname") == name
        and a["labels"].get("namespace") == namespace
        and a.get("status") == "firing"
    ]


def _slow_alerts_arrived(alerts: list[Alert]) -> bool:
    return all(
        _fired(alerts, name, SLOW_NS)
        for name in (
            "EtcdLatencyWalFsyncSlow",
            "EtcdLatencyHddStorage",
            "EtcdLatencyStorageClassMismatch",
            "EtcdLatencyVolumeIopsLow",
        )
    )


async def _start_etcds(tmp_path: Path, fast_dir: Path) -> tuple[EtcdProcess, EtcdProcess]:
    try:
        slow = await asyncio.to_thread(
            start_etcd,
            version="3.5",
            name="slow",
            data_dir=tmp_path / "slow.etcd",
            log_path=tmp_path / "slow.log",
            fsync_delay_us=FSYNC_DELAY_US,
            apply_warning="20ms",
        )
    except EtcdUnavailable as err:
        pytest.skip(str(err))
    try:
        fast = await asyncio.to_thread(
            start_etcd,
            version="3.5",
            name="fast",
            data_dir=fast_dir,
            log_path=tmp_path / "fast.log",
        )
    except BaseException:
        slow.stop(graceful=False)
        raise
    return slow, fast


async def _start_services(
    stack_: contextlib.AsyncExitStack,
    session: aiohttp.ClientSession,
    *,
    tmp_path: Path,
    targets: str,
    webhook_url: str,
) -> stack.Service:
    """Exporter, Alertmanager and Prometheus, each ready; returns Prometheus."""
    targets_file = tmp_path / "targets.yaml"
    targets_file.write_text(targets)
    rules = tmp_path / "rules.yaml"
    rules.write_text(with_class_min_members(scale_rules(RULES_FILE.read_text()), 1))
    exporter_port, am_port, prom_port = free_port(), free_port(), free_port()

    exporter = stack.exporter(port=exporter_port, targets_file=targets_file, workdir=tmp_path)
    stack_.callback(exporter.stop)
    await stack.wait_ready(session, exporter, "/readyz")
    am = stack.alertmanager(port=am_port, webhook_url=webhook_url, workdir=tmp_path)
    stack_.callback(am.stop)
    await stack.wait_ready(session, am, "/-/ready")
    prom = stack.prometheus(
        port=prom_port,
        exporter_port=exporter_port,
        alertmanager_port=am_port,
        rules=rules,
        workdir=tmp_path,
    )
    stack_.callback(prom.stop)
    await stack.wait_ready(session, prom, "/-/ready")
    return prom


async def _failing_dashboard_queries(session: aiohttp.ClientSession, url: str) -> list[str]:
    """Dashboard queries (and variable queries) that return no data."""
    dashboard = load_dashboard()
    exprs = {f"{q.panel_title} [{q.ref_id}]": q.expr for q in queries(dashboard)}
    for var in dashboard["templating"]["list"]:
        match = re.fullmatch(r"label_values\((.*),\s*\w+\)", var.get("query", ""))
        if var["type"] == "query" and match:
            exprs[f"variable {var['name']}"] = match.group(1)
    empty = []
    for name, expr in exprs.items():
        result = await stack.instant_query(session, url, substitute(expr, DASHBOARD_VALUES))
        if not result:
            empty.append(name)
    return empty


def _assert_says_why(alert: Alert, *phrases: str) -> None:
    description = alert["annotations"]["description"]
    for phrase in phrases:
        assert phrase in description, description
    assert alert["annotations"]["runbook_url"].endswith("#" + alert["labels"]["alertname"].lower())


@pytest.mark.timeout(240)
async def test_slow_disk_pages_and_healthy_etcd_stays_quiet(
    tmp_path: Path, fast_data_dir: Path
) -> None:
    async with asyncio.timeout(220), contextlib.AsyncExitStack() as exit_stack:
        t0 = time.monotonic()
        slow, fast = await _start_etcds(tmp_path, fast_data_dir)
        exit_stack.callback(fast.stop, graceful=False)
        exit_stack.callback(slow.stop, graceful=False)
        webhook = WebhookReceiver()
        webhook_url = await webhook.start()
        exit_stack.push_async_callback(webhook.stop)
        session = await exit_stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        )
        prom = await _start_services(
            exit_stack,
            session,
            tmp_path=tmp_path,
            targets=_targets(slow, fast),
            webhook_url=webhook_url,
        )
        t_ready = time.monotonic()
        with Load(slow, fast):
            try:
                async with asyncio.timeout(ALERT_TIMEOUT):
                    await webhook.wait_for(_slow_alerts_arrived)
            except TimeoutError:
                active = await stack.instant_query(session, prom.url, "ALERTS")
                pytest.fail(f"alerts not received; webhook: {webhook.alerts()}; ALERTS: {active}")
            t_alerts = time.monotonic()  # the last of the awaited alerts has arrived
            await _check_quiet_and_dashboard(session, prom.url, webhook)
        alerts = webhook.alerts()
        _assert_says_why(
            _fired(alerts, "EtcdLatencyWalFsyncSlow", SLOW_NS)[0],
            "shoot slow",
            "etcd-main-0",
            "StorageClass standard",
            "disk class hdd",
        )
        _assert_says_why(
            _fired(alerts, "EtcdLatencyHddStorage", SLOW_NS)[0],
            "shoot slow",
            "StorageClass standard",
            "disk class hdd",
            "expected StorageClass: gardener.cloud-fast",
        )
        _assert_says_why(
            _fired(alerts, "EtcdLatencyStorageClassMismatch", SLOW_NS)[0],
            "shoot slow",
            "StorageClass standard",
            "should be on gardener.cloud-fast",
        )
        _assert_says_why(
            _fired(alerts, "EtcdLatencyVolumeIopsLow", SLOW_NS)[0],
            "shoot slow",
            "(disk pvc-5e1c0f9a-slow)",
            "StorageClass standard",
            "disk class hdd",
            "documents 37.5 write IOPS",
        )
        # 40ms fsyncs are above the warning threshold, far below the critical one.
        assert _fired(alerts, "EtcdLatencyWalFsyncCritical", SLOW_NS) == []
        # Alone on its class, the slow member is its class median: no class alert.
        assert _fired(alerts, "EtcdLatencyWalFsyncSlowForClass", SLOW_NS) == []
        assert _fired(alerts, "EtcdLatencyBackendCommitSlowForClass", SLOW_NS) == []
        print(  # timing figures, shown with -s
            f"e2e: stack ready after {t_ready - t0:.1f}s, alerts at the webhook "
            f"{t_alerts - t_ready:.1f}s later, total {time.monotonic() - t0:.1f}s"
        )


async def _check_quiet_and_dashboard(
    session: aiohttp.ClientSession, url: str, webhook: WebhookReceiver
) -> None:
    """The healthy member was watched all along and never fired; the dashboard has data."""
    fast_p99 = await stack.instant_query(
        session,
        url,
        f'namespace_pod:etcd_latency_disk_wal_fsync_duration_seconds:p99_5m{{namespace="{FAST_NS}"}}',
    )
    assert fast_p99, "the healthy member's fsync p99 is not recorded"
    assert float(fast_p99[0]["value"][1]) < 0.01
    ever = await stack.instant_query(
        session, url, f'count_over_time(ALERTS{{namespace="{FAST_NS}", alertstate="firing"}}[10m])'
    )
    assert ever == [], f"the healthy member raised alerts: {ever}"
    assert [a for a in webhook.alerts() if a["labels"].get("namespace") == FAST_NS] == []
    assert await _failing_dashboard_queries(session, url) == []
