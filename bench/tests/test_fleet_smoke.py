"""The fleet benchmark stays runnable: a five-shoot fleet, two replicas resharded to three,
next to a real Prometheus, for a few seconds (bench/fleet.py end to end)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.fleetbench.seed import fleet
from exporter.discovery.sharding import shard_of

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_fleet_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    argv = [
        sys.executable,
        str(REPO / "bench" / "fleet.py"),
        "--shoots=5",
        "--scrape-interval=2",
        "--cycles=1",
        "--warmup-cycles=0",
        "--render-gets=3",
        "--events=3",
        "--replicas=2",
        "--reshard-to=3",
        f"--workdir={tmp_path / 'run'}",
        f"--out={out}",
    ]
    if shutil.which("prometheus") is None:
        argv.append("--no-prometheus")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=80, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(out.read_text())
    assert figures["members"] == 10
    assert figures["emulator"]["streams"] == 10
    shoots = {m.namespace for m in fleet(5)}
    mine = sum(2 for ns in shoots if shard_of(ns, 2) == 0)
    assert figures["targets_scraped"] == mine  # replica 0 of 2 scrapes its own share only
    assert all(math.isfinite(d) and d < 10 for d in figures["event_delays_s"])
    assert figures["exporter_cpu_cores"] > 0
    assert figures["lines_written_per_s"] > 0
    before, after = figures["sharding"]["before"], figures["sharding"]["after"]
    for coverage in (before, after):
        assert coverage["covered"] == 10
        assert coverage["gaps"] == coverage["duplicates"] == coverage["strangers"] == 0
    assert sum(before["per_replica"].values()) == 10
    assert len(after["per_replica"]) == 3
    moves = figures["sharding"]["moves"]
    assert moves["moved"] == moves["moved_to_new_shards"]  # jump hash only moves to new shards
    if "prometheus" in figures:
        assert figures["prometheus"]["targets_up"] == 10
        assert figures["cpu_ratio_vs_prometheus"] > 0
    assert "fleet: 5 shoots = 10 etcd members" in proc.stdout


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("replicas", [1, 2])
def test_storm_mode_accounts_for_every_line(tmp_path: Path, replicas: int) -> None:
    """One replica, or two shards whose counters are read together: every line sent is
    counted once."""
    out = tmp_path / "storm.json"
    argv = [
        sys.executable,
        str(REPO / "bench" / "fleet.py"),
        f"--replicas={replicas}",
        "--shoots=5",
        "--scrape-interval=2",
        "--warmup-cycles=0",
        "--no-prometheus",
        "--storm-members=2",
        "--storm-rate=50",
        "--storm-seconds=4",
        "--storm-before=0",
        "--storm-window=1",
        "--storm-probes=1",
        "--storm-after=8",
        "--storm-settle=0.5",
        f"--workdir={tmp_path / 'run'}",
        f"--out={out}",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=80, check=False)
    assert out.exists(), proc.stdout + proc.stderr
    figures = json.loads(out.read_text())
    # the count is exact; lines are skipped only when the simulator falls over a second behind
    assert figures["storm_lines_written"] + figures["storm_lines_skipped"] == 2 * 50 * 4
    assert figures["storm_lines_written"] > 0
    acc = figures["accounting"]
    assert acc["readings_settled"]
    assert acc["slow_requests_sent_storm_members"] >= 400
    assert acc["slow_requests_sent"] >= acc["slow_requests_sent_storm_members"]
    assert acc["lines_sent"] >= acc["slow_requests_sent"]
    assert acc["slow_requests_lost"] == acc["slow_requests_double"] == 0, acc
    assert acc["lines_lost"] == acc["lines_double"] == 0, acc
    assert figures["storm_windows"]
    assert all(math.isfinite(w["cpu_cores"]) for w in figures["storm_windows"])
    assert all(math.isfinite(d) and d < 10 for w in figures["storm_windows"] for d in w["event_s"])
    assert set(figures["budgets"]) >= {"slow_requests_lost", "storm_cpu_cores", "recovery_s"}
    assert "storm: 2 members × 50 slow requests/s for 4 s" in proc.stdout
    assert f"{replicas} replica(s)" in proc.stdout
    assert figures["replicas"] == replicas
    failed = [name for name, b in figures["budgets"].items() if not b["ok"]]
    assert proc.returncode == (1 if failed else 0), proc.stdout + proc.stderr
