"""`etcd-latency-exporter diagnose` end to end: the real CLI against real etcd processes.

Static mode: four members and a closed port, under load during the window —
  slow     etcd 3.5, every fdatasync delayed 50 ms by strace, HDD class  → slow-disk
  drift    etcd 3.4 (capnslog), healthy, SSD class other than expected   → storage-class-mismatch
  healthy  etcd 3.5, healthy, the expected SSD class                     → ok
  chatty   etcd 3.5, healthy, logs every request as slow (1 µs limit)    → slow-requests-not-disk
  dead     nothing listens                                               → unreachable
Kubernetes mode: the same kinds of members behind the API emulator, pods on 127.0.0.x addresses
where real etcd listens, pod logs served by the emulator from the members' real log files.

Healthy members keep their data on tmpfs when there is one, so that "healthy" does not depend
on this machine's disk; the slow one is slowed deterministically by strace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import select
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support.etcd import EtcdPool, EtcdProcess, EtcdUnavailable, free_port
from tests.support.kube import scenario
from tests.support.kube.fixtures import kube_fixture  # noqa: F401 - the `kube` fixture
from tests.support.kube.server import KubeEmulator

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs" / "diagnose.schema.json").read_text())
WINDOW = "3s"
SHM = Path("/dev/shm")


def run_diagnose(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess (stdout and stderr are pipes, not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "exporter", "diagnose", *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False,
    )  # fmt: skip


@contextlib.contextmanager
def fast_root(tmp: Path) -> Iterator[Path]:
    """A directory on tmpfs (fsync costs nothing there), else `tmp`."""
    if SHM.is_dir() and os.access(SHM, os.W_OK):
        with tempfile.TemporaryDirectory(dir=SHM, prefix="diagnose-test-") as path:
            yield Path(path)
    else:
        yield tmp


@contextlib.contextmanager
def loading(members: Sequence[EtcdProcess], *, pause: float = 0.01) -> Iterator[None]:
    """Kubernetes-shaped writes to every member from background threads while the block runs."""
    stop = threading.Event()

    def work(member: EtcdProcess) -> None:
        i = 0
        while not stop.is_set():
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                member.put(f"/registry/pods/shoot--dev--load/pod-{i % 50}", f"v{i}", timeout=10)
            i += 1
            stop.wait(pause)

    threads = [threading.Thread(target=work, args=(m,), daemon=True) for m in members]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(15)


def start(pool: EtcdPool, **kwargs: Any) -> EtcdProcess:
    try:
        return pool.start(**kwargs)
    except EtcdUnavailable as err:
        pytest.skip(str(err))


def by_pod(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["key"]: e for e in doc["etcds"]}


# -- static mode ------------------------------------------------------------------------------


@dataclass
class Fleet:
    members: dict[str, EtcdProcess]
    targets_file: Path
    healthy_only: Path


SSD = {"storage_class": "gardener.cloud-fast", "provisioner": "pd.csi.storage.gke.io",
       "disk_type": "pd-ssd", "expected_storage_class": "gardener.cloud-fast"}  # fmt: skip


def entry(name: str, member: EtcdProcess | None, **fields: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name, "namespace": f"shoot--dev--{name}", "etcd": "etcd-main",
        "pod": "etcd-main-0", "pvc": "main-etcd-etcd-main-0", **fields,
    }  # fmt: skip
    if member is not None:
        doc["metrics_url"] = member.metrics_url
        doc["log"] = {"file": str(member.log_path)}
    return doc


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("diagnose")
    with fast_root(tmp) as root, EtcdPool(root) as pool:
        members = {
            "slow": start(pool, name="slow", fsync_delay_us=50_000, apply_warning="10ms"),
            "drift": start(pool, name="drift", version="3.4", logger="capnslog"),
            "healthy": start(pool, name="healthy"),
            "chatty": start(pool, name="chatty", apply_warning="1us"),
        }
        dead = f"http://127.0.0.1:{free_port()}/metrics"
        hdd = {**SSD, "storage_class": "standard", "provisioner": "kubernetes.io/gce-pd",
               "disk_type": "pd-standard"}  # fmt: skip
        drifted = {**SSD, "storage_class": "premium-rwo", "disk_type": "pd-balanced"}
        targets = [
            entry("slow", members["slow"], **hdd),
            entry("drift", members["drift"], **drifted),
            entry("healthy", members["healthy"], **SSD),
            entry("chatty", members["chatty"], **SSD),
            {**entry("dead", None, **SSD), "metrics_url": dead},
        ]
        targets_file = tmp / "targets.yaml"
        targets_file.write_text(yaml.safe_dump({"targets": targets}))
        healthy_only = tmp / "healthy.yaml"
        healthy_only.write_text(yaml.safe_dump({"targets": [targets[2]]}))
        yield Fleet(members, targets_file, healthy_only)


def static_args(targets: Path, *extra: str) -> list[str]:
    return ["--discovery=static", f"--static.targets-file={targets}", f"--window={WINDOW}", *extra]


def test_static_json_report(fleet: Fleet) -> None:
    with loading(list(fleet.members.values())):
        out = run_diagnose(*static_args(fleet.targets_file, "--output=json"))
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    jsonschema.validate(doc, SCHEMA)
    got = by_pod(doc)
    assert {k: e["verdict"] for k, e in got.items()} == {
        "slow": "slow-disk",
        "drift": "storage-class-mismatch",
        "chatty": "slow-requests-not-disk",
        "dead": "unreachable",
        "healthy": "ok",
    }
    assert [e["key"] for e in doc["etcds"]] == ["slow", "drift", "chatty", "dead", "healthy"]

    slow = got["slow"]
    assert slow["wal_fsync"]["p99_seconds"] >= 0.040  # 50 ms injected per fdatasync
    assert slow["wal_fsync"]["share_above_16ms"] > 0.9
    assert slow["wal_fsync"]["count"] >= 10
    assert 2.5 < slow["scrape"]["window_seconds"] < 10
    assert slow["reason"].startswith("WAL fsync p99 ")
    assert "#etcdlatencyhddstorage" in slow["remedy"]
    assert slow["logs"]["slow_requests"] > 0
    # The load's puts, or the linearizable ranges of etcd's own /health checks while the member
    # started (on this disk they take longer than 10 ms as well): which are more depends on how
    # long the start took, and the log is read while the window runs.
    assert slow["logs"]["top_operation"] in {"put", "range"}
    assert slow["logs"]["top_count"] >= 1

    for healthy in ("healthy", "drift", "chatty"):
        assert got[healthy]["wal_fsync"]["p99_seconds"] < 0.010, got[healthy]
        assert got[healthy]["logs"]["read"] is True
    assert got["drift"]["volume"]["mismatch"] is True
    assert "expected gardener.cloud-fast" in got["drift"]["reason"]
    assert got["chatty"]["logs"]["slow_requests"] > 0
    assert got["dead"]["scrape"] == {
        "source": "etcd",
        "reachable": False,
        "error": "connect",
        "window_seconds": None,
    }
    assert got["dead"]["logs"]["read"] is False
    assert doc["summary"]["by_verdict"] == {
        "slow-disk": 1,
        "storage-class-mismatch": 1,
        "slow-requests-not-disk": 1,
        "unreachable": 1,
        "ok": 1,
    }
    assert doc["summary"]["exit_code"] == 1


def test_static_table(fleet: Fleet) -> None:
    with loading(list(fleet.members.values())):
        out = run_diagnose(*static_args(fleet.targets_file))
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["SHOOT", "ETCD", "POD"]
    verdicts = [line.split()[-1] for line in lines[1:6]]
    assert verdicts == ["slow-disk", "storage-class-mismatch", "slow-requests-not-disk",
                        "unreachable", "ok"]  # fmt: skip
    assert lines[1].split()[:6] == ["slow", "etcd-main", "etcd-main-0", "standard", "hdd",
                                    "gardener.cloud-fast"]  # fmt: skip
    assert "shoot--dev--slow/etcd-main-0: slow-disk: WAL fsync p99" in out.stdout
    assert "remedy: a PVC cannot change class" in out.stdout
    assert lines[-1].startswith("5 etcd members: 1 slow-disk, 1 storage-class-mismatch")
    assert "\r" not in out.stderr  # no progress indicator without a terminal
    example = os.environ.get("DIAGNOSE_EXAMPLE_OUT")
    if example:  # to refresh the example in docs/diagnose.md
        Path(example).write_text(out.stdout)


def test_all_ok_exits_zero(fleet: Fleet) -> None:
    with loading([fleet.members["healthy"]]):
        out = run_diagnose(*static_args(fleet.healthy_only, "--window=1s"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[1].split()[-1] == "ok"


def test_progress_on_a_terminal(fleet: Fleet) -> None:
    """With stderr on a terminal, a progress line is drawn and erased; stdout stays clean."""
    primary, secondary = pty.openpty()
    try:
        with loading([fleet.members["healthy"]]):
            out = subprocess.run(
                [sys.executable, "-m", "exporter", "diagnose",
                 *static_args(fleet.healthy_only, "--window=2s")],
                stdout=subprocess.PIPE, stderr=secondary, text=True, timeout=60, cwd=REPO,
                check=False,
            )  # fmt: skip
    finally:
        os.close(secondary)
    shown = read_pty(primary)
    assert out.returncode == 0
    assert "\r\x1b[Kdiagnose: 0/1 etcd members done" in shown
    assert shown.endswith("\r\x1b[K")
    assert "diagnose:" not in out.stdout


def read_pty(fd: int) -> str:
    chunks = []
    try:
        while select.select([fd], [], [], 1.0)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:  # EIO: the other side is closed
        pass
    finally:
        os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def test_counter_reset_within_the_window(tmp_path: Path) -> None:
    """etcd restarts between the two scrapes: its histograms start again from zero, and the
    second scrape alone is the window."""
    with fast_root(tmp_path) as root, EtcdPool(root) as pool:
        member = start(pool, name="restarted")
        for i in range(150):  # many fsyncs before the restart
            member.put(f"/registry/leases/ns/l{i}", "v")
        targets = tmp_path / "one.yaml"
        targets.write_text(yaml.safe_dump({"targets": [entry("restarted", member, **SSD)]}))
        args = static_args(targets, "--window=6s", "--output=json")
        with subprocess.Popen(
            [sys.executable, "-m", "exporter", "diagnose", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        ) as proc:  # fmt: skip
            try:
                threading.Event().wait(3.0)  # the first scrape is done by now
                member.restart()
                member.put("/registry/leases/ns/after", "v")
                stdout, stderr = proc.communicate(timeout=60)
            finally:
                proc.kill()
    doc = json.loads(stdout)
    fsync = doc["etcds"][0]["wal_fsync"]
    assert fsync["counter_reset"] is True, stderr
    assert 0 < fsync["count"] < 150
    assert "counter reset: second scrape only" in doc["etcds"][0]["reason"]


# -- exit code 2 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--output=yaml"], "--output"),
        (["--discovery=static"], "--static.targets-file is required"),
        (["--discovery=static", "--static.targets-file=/nonexistent/t.yaml"], "cannot read"),
        (["--discovery=kubernetes", "--kubernetes.kubeconfig=/nonexistent/kc"], "Kubernetes"),
    ],
)
def test_usage_errors_exit_two(args: list[str], message: str) -> None:
    out = run_diagnose(*args, "--window=1s", timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stderr
    assert out.stdout == ""


def test_bad_or_empty_targets_file_exits_two(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets:\n  - name: a\n  - name: a\n    metrics_url: ftp://x\n")
    out = run_diagnose(*static_args(bad), timeout=60)
    assert out.returncode == 2
    assert "targets[0]" in out.stderr
    assert "targets[1].metrics_url" in out.stderr
    empty = tmp_path / "empty.yaml"
    empty.write_text("targets: []\n")
    out = run_diagnose(*static_args(empty), timeout=60)
    assert out.returncode == 2
    assert "no etcd members" in out.stderr


# -- Kubernetes mode --------------------------------------------------------------------------


def common_port(hosts: Sequence[str]) -> int:
    """A port free on every one of the loopback addresses."""
    for _ in range(50):
        port = free_port(hosts[0])
        if all(_bindable(h, port) for h in hosts[1:]):
            return port
    raise RuntimeError("no common free port")


def _bindable(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


async def test_kubernetes_mode(kube: KubeEmulator, tmp_path: Path) -> None:
    hosts = {"slow": "127.0.0.11", "healthy": "127.0.0.12", "drift": "127.0.0.13"}
    port = common_port([*hosts.values(), "127.0.0.14"])
    scenario.add_classes(kube)
    members: dict[str, EtcdProcess] = {}
    with fast_root(tmp_path) as root, EtcdPool(root) as pool:
        for name, host in hosts.items():
            metrics = f"--listen-metrics-urls=http://{host}:{port}"
            delay = {"fsync_delay_us": 50_000, "apply_warning": "10ms"} if name == "slow" else {}
            members[name] = await asyncio.to_thread(
                start, pool, name=name, host=host, listen_metrics=False,
                extra_args=[metrics], **delay,
            )  # fmt: skip
        layout = {  # name → (PVC class, Etcd spec.storageClass)
            "slow": (scenario.STANDARD, scenario.FAST),
            "healthy": (scenario.FAST, scenario.FAST),
            "drift": ("premium", scenario.FAST),
            "gone": (scenario.FAST, scenario.FAST),
        }
        ips = {**hosts, "gone": "127.0.0.14"}
        for name, (pvc_class, expected) in layout.items():
            ns = f"shoot--dev--{name}"
            scenario.add_member(kube, namespace=ns, etcd="etcd-main", pod_ip=ips[name],
                                storage_class=pvc_class)  # fmt: skip
            scenario.add_etcd(kube, namespace=ns, name="etcd-main", storage_class=expected)
        with loading(list(members.values())):
            await asyncio.sleep(1.0)  # some load, and slow requests in the slow member's log
            for name, member in members.items():
                lines = (await asyncio.to_thread(member.log_path.read_text)).splitlines()
                kube.append_log(f"shoot--dev--{name}", "etcd-main-0", lines)
            out = await run_diagnose_async(
                "--discovery=kubernetes", f"--kubernetes.kubeconfig={kube.kubeconfig}",
                "--scrape.scheme=http", f"--scrape.port={port}", f"--window={WINDOW}",
                "--output=json",
            )  # fmt: skip
    code, stdout, stderr = out
    assert code == 1, stderr
    doc = json.loads(stdout)
    jsonschema.validate(doc, SCHEMA)
    got = {e["namespace"].removeprefix("shoot--dev--"): e for e in doc["etcds"]}
    assert {k: e["verdict"] for k, e in got.items()} == {
        "slow": "slow-disk",
        "drift": "storage-class-mismatch",
        "gone": "unreachable",
        "healthy": "ok",
    }
    slow = got["slow"]
    assert slow["volume"]["storage_class"] == "standard"
    assert slow["volume"]["disk_class"] == "hdd"
    assert slow["volume"]["expected_storage_class"] == scenario.FAST
    assert slow["pod"] == "etcd-main-0"
    assert slow["shoot"] == "slow"
    assert slow["wal_fsync"]["p99_seconds"] >= 0.040
    assert slow["logs"]["read"] is True
    assert slow["logs"]["slow_requests"] > 0
    assert got["healthy"]["logs"]["read"] is True
    assert got["drift"]["volume"]["storage_class"] == "premium"
    assert got["drift"]["volume"]["disk_class"] == "ssd"
    assert kube.count_requests("/pods/etcd-main-0/log") >= 3


async def run_diagnose_async(*args: str) -> tuple[int, str, str]:
    """The CLI as a child process, while this event loop keeps serving the emulator."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", "diagnose", *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(90):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_kubernetes_denied_fails_fast(kube: KubeEmulator) -> None:
    scenario.add_classes(kube)
    kube.deny("pods")
    loop = asyncio.get_running_loop()
    started = loop.time()
    code, stdout, stderr = await run_diagnose_async(
        "--discovery=kubernetes", f"--kubernetes.kubeconfig={kube.kubeconfig}", "--window=1s"
    )
    assert code == 2, stderr
    assert "refused to list pods (403)" in stderr
    assert stdout == ""
    assert loop.time() - started < 20  # not the discovery deadline
