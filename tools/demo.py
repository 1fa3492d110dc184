"""`make demo`: two real etcd members, one on a disk made slow, watched by the exporter.

- `etcd-main-0` of shoot `demo/slow`: etcd 3.4 with its default text log (as Gardener runs it),
  every other fdatasync delayed by 1.1 s through strace fault injection, on StorageClass
  `standard` (hdd) although `gardener.cloud-fast` is expected: the incident this exporter is for.
- `etcd-main-0` of shoot `demo/fast`: etcd 3.5 (JSON log) on `gardener.cloud-fast` (ssd).

Both get light load on Kubernetes-shaped keys. The exporter runs in static mode on port 18379 (or
a free one) and after EXCERPT_AFTER seconds the demo prints where to look and an excerpt of
/metrics. It then runs until Ctrl-C, or for DEMO_DURATION seconds when that is set, and stops
everything it started, by PID. Everything lives under `.demo/` in the repository (or DEMO_DIR).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import FrameType

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import procs
from tests.support.etcd import EtcdPool, EtcdProcess, EtcdUnavailable, free_port

REPO = Path(__file__).resolve().parents[1]
PORT = 18379
EXCERPT_AFTER = 35.0
SCRAPE_INTERVAL = "5s"
SLOW_FSYNC_US = 1_100_000  # above etcd's 1 s warning: "sync duration of …" lines
SLOW_FSYNC_WHEN = "2+2"  # every second fdatasync (counted per thread)


def _port() -> int:
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", PORT))
        return PORT
    except OSError:
        return free_port()


def _targets(fast: EtcdProcess, slow: EtcdProcess) -> dict[str, object]:
    common = {"etcd": "etcd-main", "pod": "etcd-main-0", "pvc": "main-etcd-etcd-main-0"}
    return {
        "targets": [
            {
                "name": "shoot--demo--slow/etcd-main-0",
                "metrics_url": slow.metrics_url,
                "log": {"file": str(slow.log_path)},
                "namespace": "shoot--demo--slow",
                **common,
                "pv": "pv-shoot--demo--slow-etcd-main-0",
                "storage_class": "standard",
                "provisioner": "pd.csi.storage.gke.io",
                "disk_type": "pd-standard",
                "expected_storage_class": "gardener.cloud-fast",
            },
            {
                "name": "shoot--demo--fast/etcd-main-0",
                "metrics_url": fast.metrics_url,
                "log": {"file": str(fast.log_path)},
                "namespace": "shoot--demo--fast",
                **common,
                "pv": "pv-shoot--demo--fast-etcd-main-0",
                "storage_class": "gardener.cloud-fast",
                "provisioner": "pd.csi.storage.gke.io",
                "disk_type": "pd-ssd",
                "expected_storage_class": "gardener.cloud-fast",
            },
        ]
    }


def _load(members: list[EtcdProcess], stop: threading.Event) -> None:
    """Light load until `stop`: a few puts and reads per member per second."""
    rounds = 0
    while not stop.is_set():
        for member in members:
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                member.load(n=6, concurrency=3, namespace=f"shoot--demo--r{rounds % 5}")
        rounds += 1
        stop.wait(1.0)


def _start_exporter(targets: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "exporter",
        "run",
        "--discovery=static",
        f"--static.targets-file={targets}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--scrape.interval={SCRAPE_INTERVAL}",
        "--logs.from-start",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:
        return subprocess.Popen(  # its own session: Ctrl-C reaches only the demo
            argv, stdout=out, stderr=out, cwd=REPO, env=env, start_new_session=True
        )


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return str(resp.read().decode())


# -- the excerpt ------------------------------------------------------------------------------

P = "etcd_latency_"
FSYNC = P + "disk_wal_fsync_duration_seconds"
SHOWN_BUCKETS = ("0.004", "0.016", "0.064", "0.256", "1.024", "2.048", "+Inf")
Samples = list[tuple[str, dict[str, str], float]]


def _samples(text: str) -> Samples:
    return [
        (s.name, dict(s.labels), s.value)
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    ]


def _pick(
    samples: Samples, name: str, shoot: str, **labels: str
) -> list[tuple[dict[str, str], float]]:
    return [
        (lab, v)
        for n, lab, v in samples
        if n == name
        and lab.get("shoot") == shoot
        and all(lab.get(k) == x for k, x in labels.items())
    ]


def _one(samples: Samples, name: str, shoot: str, **labels: str) -> float | None:
    found = _pick(samples, name, shoot, **labels)
    return found[0][1] if found else None


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """histogram_quantile over cumulative (le, count) pairs, as PromQL computes it."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return lower
            return lower + (le - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = le, count
    return lower


def _fsync_table(samples: Samples, shoots: list[str]) -> list[str]:
    lines = ["  le (s)   " + "".join(f"{'demo/' + s:>14}" for s in shoots)]
    for le in SHOWN_BUCKETS:
        row = [_one(samples, FSYNC + "_bucket", s, le=le) for s in shoots]
        lines.append(f"  {le:<8} " + "".join(f"{v or 0:>14.0f}" for v in row))
    for q in (0.5, 0.99):
        cells = []
        for shoot in shoots:
            bucket = _pick(samples, FSYNC + "_bucket", shoot)
            value = _quantile(q, sorted((float(lab["le"]), v) for lab, v in bucket))
            cells.append("-" if value is None else f"{value * 1000:.1f}ms")
        lines.append(f"  p{q * 100:<7.0f} " + "".join(f"{c:>14}" for c in cells))
    return lines


def report(text: str, *, port: int, home: Path) -> str:
    """Where to look, and an excerpt of /metrics: volumes, fsync buckets, slow requests."""
    samples = _samples(text)
    shoots = ["slow", "fast"]
    out = [
        "",
        "Where to look:",
        f"  curl -s localhost:{port}/metrics | grep etcd_latency_",
        f"  http://127.0.0.1:{port}/   (status page: every etcd, its volume and verdict)",
        f"  {_shown(home / 'targets.yaml')} (targets), {_shown(home / 'exporter.log')} (its log),",
        f"  {_shown(home / 'run' / 'slow.log')} (the slow etcd's log)",
        "",
        "Members (etcd_latency_target_up, etcd_latency_volume_info):",
    ]
    for shoot in shoots:
        vol = _pick(samples, P + "volume_info", shoot)
        lab = vol[0][0] if vol else {}
        up = _one(samples, P + "target_up", shoot)
        shown_up = "-" if up is None else int(up)
        out.append(
            f"  demo/{shoot:<5} up={shown_up} storage_class={lab.get('storage_class', '?')}"
            f" disk_class={lab.get('disk_class', '?')}"
            f" expected={lab.get('expected_storage_class', '?')}"
        )
    out += ["", f"WAL fsyncs at or below each bound ({FSYNC}_bucket):"]
    out += _fsync_table(samples, shoots)
    out += ["", "Slow requests logged by the slow member (etcd_latency_slow_requests_total):"]
    slow = sorted(_pick(samples, P + "slow_requests_total", "slow"), key=lambda x: -x[1])
    for lab, v in slow[:10] or [({}, 0.0)]:
        what = f"{lab.get('operation', '-')} read_only={lab.get('read_only', '-')}"
        out.append(f"  {what:<28} resource={lab.get('resource', '-'):<14} {v:>6.0f}")
    events = [(lab["event"], v) for lab, v in _pick(samples, P + "log_events_total", "slow") if v]
    out += ["", "Log events of the slow member (etcd_latency_log_events_total):"]
    out += [f"  {event:<24} {v:>6.0f}" for event, v in sorted(events, key=lambda x: -x[1])]
    return "\n".join(out) + "\n"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _wait(seconds: float, exporter: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if exporter.poll() is not None:
            raise RuntimeError(f"the exporter exited with {exporter.returncode}")
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def run(duration: float | None, *, home: Path) -> int:
    """The demo under `home`; `duration` None runs until Ctrl-C."""
    shutil.rmtree(home / "run", ignore_errors=True)
    (home / "run").mkdir(parents=True)
    started = time.monotonic()
    stop = threading.Event()
    with EtcdPool(home / "run") as pool:
        print("Starting etcd 3.5 (fast disk) and etcd 3.4 (fdatasync slowed by strace) …")
        fast = pool.start(version="3.5", name="fast", apply_warning="100ms")
        slow = pool.start(
            version="3.4",
            name="slow",
            logger="capnslog",
            fsync_delay_us=SLOW_FSYNC_US,
            fsync_when=SLOW_FSYNC_WHEN,
            apply_warning="100ms",
            wait=90,
        )
        targets = home / "targets.yaml"
        targets.write_text(yaml.safe_dump(_targets(fast, slow), sort_keys=False))
        port = _port()
        exporter = _start_exporter(targets, port, home / "exporter.log")
        loader = threading.Thread(target=_load, args=([fast, slow], stop), daemon=True)
        loader.start()
        try:
            ready = time.monotonic() - started
            print(f"etcd members ready after {ready:.1f}s; exporter on 127.0.0.1:{port}")
            first = min(EXCERPT_AFTER, duration) if duration else EXCERPT_AFTER
            print(f"Collecting for {first:.0f}s …", flush=True)
            _wait(first, exporter)
            print(report(_metrics(port), port=port, home=home), flush=True)
            if duration is None:
                print("Running until Ctrl-C.", flush=True)
                while True:
                    _wait(3600, exporter)
            _wait(max(0.0, duration - first), exporter)
        except KeyboardInterrupt:
            print("\nStopping …")
        finally:
            stop.set()
            procs.stop(exporter)
            loader.join(10)
    print(f"Stopped everything (ran {time.monotonic() - started:.0f}s).")
    return 0


def main() -> int:
    """Entry point of `python -m tools.demo`."""
    signal.signal(signal.SIGTERM, _interrupt)
    duration = float(os.environ["DEMO_DURATION"]) if os.environ.get("DEMO_DURATION") else None
    home = Path(os.environ.get("DEMO_DIR") or REPO / ".demo")
    try:
        return run(duration, home=home)
    except EtcdUnavailable as err:
        print(f"demo: {err} (run `make demo`, which installs it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
