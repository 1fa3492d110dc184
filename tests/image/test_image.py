"""The built image, run the way the chart runs it: hardened, read-only, against a real etcd.

Every container runs as user 65532 with no capabilities and no-new-privileges (tests/image/
podman.py), with a read-only root filesystem and a tmpfs at /tmp only, unless a test says
otherwise. The daemon runs on the host's network and scrapes a real etcd 3.5 on 127.0.0.1 over
plain http; its endpoints are read from the host.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter import __version__
from exporter.settings import DEFAULT_PORT
from tests.image.podman import Container, Mount, Podman
from tests.support.etcd import EtcdProcess, free_port
from tests.support.helm import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures"
TARGETS_IN_CONTAINER = "/etc/etcd-latency/targets.yaml"
IDENTITY = {
    "namespace": "shoot--dev--image",
    "project": "dev",
    "shoot": "image",
    "etcd": "etcd-main",
    "pod": "etcd-main-0",
}
FSYNC = "etcd_latency_disk_wal_fsync_duration_seconds"
# The most the venv may hold (it is 134 MB, of which the kubernetes client is 102).
VENV_BUDGET_MB = 150

Sample = tuple[str, dict[str, str], float]


def test_image_config(podman: Podman) -> None:
    """Numeric non-root user, entrypoint and default command, port, labels, environment."""
    config = podman.inspect_image()["Config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["etcd-latency-exporter"]
    assert config["Cmd"] == ["run"]
    assert f"{DEFAULT_PORT}/tcp" in config["ExposedPorts"]
    assert config["WorkingDir"] == "/tmp"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.title"] == "etcd-latency-exporter"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.revision"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PATH"].split(":")[0] == "/opt/venv/bin"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == "/tmp"
    # the daemon sets glibc's mmap threshold itself; the variable would switch that off
    assert "MALLOC_MMAP_THRESHOLD_" not in env


def test_help_and_version(podman: Podman) -> None:
    """`--help` works in the hardened, read-only container, and so do the settings models."""
    proc = podman.run(["--help"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: etcd-latency-exporter {run,parse,diagnose}")
    version = podman.run(["--version"])
    assert version.stdout.strip() == f"etcd-latency-exporter {__version__}"
    run_help = podman.run(["run", "--help"])
    assert run_help.returncode == 0, run_help.stderr
    assert "--static.targets-file" in run_help.stdout


# Run in the image by the image's python: what the venv holds and how it runs.
PROBE = """
import importlib.util, json, os, shutil, sys
import exporter.app, exporter.kube.client, exporter.discovery.kubernetes
import exporter.commands.parse.command, exporter.commands.diagnose.command
from exporter.runtime import malloctune
from kubernetes.aio import client
for name in ("ApiClient", "Configuration", "CoreV1Api", "StorageV1Api", "CustomObjectsApi"):
    getattr(client, name)
site = os.path.join(sys.prefix, "lib", "python3.11", "site-packages")
no_bytecode = sorted(
    m.__name__ for m in list(sys.modules.values())
    if (getattr(m, "__file__", None) or "").startswith(sys.prefix)
    and m.__file__.endswith(".py")
    and not os.path.exists(importlib.util.cache_from_source(m.__file__))
)
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(sys.prefix) for f in fs
           if not os.path.islink(os.path.join(d, f)))
print(json.dumps({
    "prefix": sys.prefix,
    "uid": os.getuid(),
    "pip": importlib.util.find_spec("pip") is not None,
    "setuptools": importlib.util.find_spec("setuptools") is not None,
    "compilers": [c for c in ("gcc", "cc", "strip") if shutil.which(c)],
    "shapes": importlib.util.find_spec("exporter.commands.parse._shapes").origin,
    "mmap_threshold_set": malloctune.configure(),
    "no_bytecode": no_bytecode,
    "test_dirs": sorted(
        d for d in os.listdir(site) if os.path.isdir(os.path.join(site, d, "tests"))
    ),
    "venv_mb": size / 1e6,
    "leftovers": [p for p in ("/src", "/wheels", "/root/.cache") if os.path.exists(p)],
}))
"""


def test_venv_holds_what_runs_and_nothing_else(podman: Podman) -> None:
    """The venv at /opt/venv: the C extension built, bytecode for everything the daemon
    imports, glibc's mallopt found; no pip, setuptools, compiler, test suites or build leftovers."""
    proc = podman.run(["-c", PROBE], entrypoint="python3")
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    assert facts["prefix"] == "/opt/venv"
    assert facts["uid"] == 65532
    assert (facts["pip"], facts["setuptools"]) == (False, False)
    assert facts["compilers"] == []
    assert facts["shapes"].endswith(".so"), facts["shapes"]
    assert facts["mmap_threshold_set"] is True
    assert facts["no_bytecode"] == []
    assert facts["test_dirs"] == []
    assert facts["leftovers"] == []
    assert facts["venv_mb"] < VENV_BUDGET_MB


def test_parse_reads_a_mounted_log(podman: Podman) -> None:
    """`parse` of real etcd logs mounted read-only gives what the same code gives on the host."""
    logs = ["etcd-3.5-zap/single.log", "etcd-3.4-capnslog/single.log"]
    args = ["parse", "--output=json", *(f"/logs/{name}" for name in logs)]
    proc = podman.run(args, mounts=[Mount(FIXTURES, "/logs")])
    assert proc.returncode == 0, proc.stderr
    host = subprocess.run(
        [sys.executable, "-m", "exporter", *args[:2], *(str(FIXTURES / n) for n in logs)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    in_image, on_host = json.loads(proc.stdout), json.loads(host.stdout)
    assert in_image == on_host
    assert in_image["lines"]["events"] > 0
    assert in_image["events_by_kind"]["slow_fdatasync"] > 0


# -- the daemon against a real etcd ----------------------------------------------------------


def _targets(path: Path, member: EtcdProcess) -> Mount:
    entry = {"name": "etcd-main-0", "metrics_url": member.metrics_url, **IDENTITY}
    entry |= {"pv": "pv-image-0", "storage_class": "standard", "disk_class": "ssd"}
    path.write_text(yaml.safe_dump({"targets": [entry]}))
    return Mount(path, TARGETS_IN_CONTAINER)


def _daemon_args(port: int) -> list[str]:
    return [
        "run",
        "--discovery=static",
        f"--static.targets-file={TARGETS_IN_CONTAINER}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--scrape.interval=500ms",
        "--scrape.timeout=2s",
    ]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""


def _until(container: Container, what: str, probe: Callable[[], Any], within: float = 45.0) -> Any:
    """Poll `probe` until it returns something truthy; fail with the container's log if not."""
    deadline = time.monotonic() + within
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() >= deadline or not container.running():
            # one more look: the container may have ended right after the probe
            result = probe()
            if result:
                return result
            break
        time.sleep(0.25)
    pytest.fail(f"{what}: not within {within}s\n{container.logs()}")


def _samples(text: str) -> list[Sample]:
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def _value(samples: list[Sample], name: str, **labels: str) -> float | None:
    found = [v for n, lbl, v in samples if n == name and labels.items() <= lbl.items()]
    return found[0] if len(found) == 1 else None


def _scraped(base: str) -> list[Sample] | None:
    """/metrics once the member is up and its WAL fsync histogram has counts."""
    status, text = _get(base + "/metrics")
    if status != 200:
        return None
    samples = _samples(text)
    up = _value(samples, "etcd_latency_target_up", **IDENTITY)
    fsyncs = _value(samples, FSYNC + "_count", **IDENTITY)
    return samples if up == 1 and fsyncs else None


def test_daemon_serves_a_real_etcd_and_stops_on_sigterm(
    podman: Podman, etcd: EtcdProcess, tmp_path: Path
) -> None:
    """Hardened and read-only: /healthz, /readyz, /metrics with the member up and its WAL fsync
    histogram; SIGTERM ends it in under 5 s with exit code 0."""
    etcd.load(n=10)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    mounts = [_targets(tmp_path / "targets.yaml", etcd)]
    with podman.started(_daemon_args(port), mounts=mounts) as container:
        assert _until(container, "/healthz", lambda: _get(base + "/healthz") == (200, "ok\n"))
        assert _until(container, "/readyz", lambda: _get(base + "/readyz") == (200, "ready\n"))
        samples = _until(container, "target up with fsyncs", lambda: _scraped(base))
        labels = {**IDENTITY, "pv": "pv-image-0", "storage_class": "standard"}
        count = _value(samples, FSYNC + "_count", **labels)
        assert count is not None
        assert count > 0
        assert _value(samples, FSYNC + "_bucket", le="+Inf", **labels) == count
        code = container.stop()
        log = container.logs()
        assert code == 0, log
        assert container.stop_seconds is not None
        assert container.stop_seconds < 5.0, log
        assert "Traceback" not in log
        assert "Read-only file system" not in log


# Changes podman itself makes to a container's root filesystem: the mount points of /etc/hosts,
# /etc/hostname and /etc/resolv.conf (listed as a change of /etc only).
PODMAN_OWN = {("C", "/etc")}


def _outside_tmp(changes: list[tuple[str, str]], mounts: list[Mount]) -> list[tuple[str, str]]:
    """The changes neither under /tmp, nor podman's own, nor a mount point (or its parents)."""
    mount_points = {
        "/".join(m.target.split("/")[:n]) for m in mounts for n in range(2, m.target.count("/") + 2)
    }
    return [
        (kind, path)
        for kind, path in changes
        if path != "/tmp"
        and not path.startswith("/tmp/")
        and path not in mount_points
        and (kind, path) not in PODMAN_OWN
    ]


def test_nothing_is_written_outside_tmp(podman: Podman, etcd: EtcdProcess, tmp_path: Path) -> None:
    """On a writable root filesystem, the daemon (scraping and serving) and `parse` change
    nothing outside /tmp: `podman diff` of both containers after they ran."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    mounts = [_targets(tmp_path / "targets.yaml", etcd)]
    with podman.started(_daemon_args(port), mounts=mounts, read_only=False) as container:
        _until(container, "target up with fsyncs", lambda: _scraped(base))
        assert _get(base + "/")[0] == 200
        assert container.stop() == 0
        assert _outside_tmp(container.diff(), mounts) == []
    log_mount = [Mount(FIXTURES / "etcd-3.5-zap" / "single.log", "/logs/etcd.log")]
    args = ["parse", "--output=summary", "/logs/etcd.log"]
    with podman.started(args, mounts=log_mount, read_only=False, network="none") as parse:
        _until(parse, "parse ends", lambda: not parse.running(), within=60)
        assert parse.state()["ExitCode"] == 0, parse.logs()
        assert "slow_fdatasync" in parse.logs()
        assert _outside_tmp(parse.diff(), log_mount) == []


def test_outside_tmp_filter_catches_writes() -> None:
    """The filter above keeps what matters: a file written anywhere but /tmp or a mount."""
    mounts = [Mount(Path("unused"), "/logs/etcd.log")]
    changes = [
        ("A", "/logs"),
        ("A", "/logs/etcd.log"),
        ("C", "/etc"),
        ("C", "/tmp"),
        ("A", "/tmp/x"),
        ("A", "/opt/venv/lib/x.pyc"),
        ("C", "/etc/passwd"),
        ("A", "/logs/other"),
    ]
    assert _outside_tmp(changes, mounts) == [
        ("A", "/opt/venv/lib/x.pyc"),
        ("C", "/etc/passwd"),
        ("A", "/logs/other"),
    ]
