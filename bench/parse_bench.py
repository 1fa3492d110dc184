"""Throughput of `etcd-latency-exporter parse` against mtail and `grep -c` on one etcd log.

Generates a zap log (etcd 3.5 shapes, every line with the kubelet's `timestamps=true` prefix) of
N lines (default 1,000,000): about 2 % slow requests with varied operations and Kubernetes keys,
1 % slow fdatasyncs, the rest info lines of a dozen real shapes. Then times, on the same file:

- `python -m exporter parse --output json FILE` (a subprocess of this interpreter);
- `mtail --one_shot` with a program counting the same two kinds (bench/etcd_slow.mtail);
- `grep -c` for the two messages.

Asserts that all three agree on the counts and prints, for the best of `--runs` runs of each,
wall time, lines/s, CPU time (user + system, children included) and the ratios. Targets: at least
10x mtail's throughput, and within 3x of `grep -c`. The load average is printed before and after:
other work on the machine slows every tool, and the parse command (two processes on a large
file) more than single-threaded ones when a core is taken.

    python bench/parse_bench.py [--lines N] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MTAIL_PROGRAM = HERE / "etcd_slow.mtail"
SLOW_REQUEST_MSG = '"msg":"apply request took too long"'
FDATASYNC_MSG = '"msg":"slow fdatasync"'

RESOURCES = [
    "/registry/pods/shoot--dev--{n}/etcd-main-0",
    "/registry/deployments/shoot--dev--{n}/kube-apiserver",
    "/registry/leases/kube-node-lease/node-{n}",
    "/registry/configmaps/kube-system/cm-{n}",
    "/registry/events/shoot--dev--{n}/ev.{n}",
    "/registry/services/specs/default/svc-{n}",
    "/registry/services/endpoints/default/svc-{n}",
    "/registry/minions/node-{n}",
    "/registry/druid.gardener.cloud/etcds/shoot--dev--{n}/etcd-main",
    "/registry/apiextensions.k8s.io/customresourcedefinitions/crd-{n}",
    "/registry/secrets/shoot--dev--{n}/token-{n}",
]

INFO_LINES = [
    '"caller":"mvcc/index.go:214","msg":"compact tree index","revision":{n}}}',
    '"caller":"mvcc/kvstore_compaction.go:57","msg":"finished scheduled compaction",'
    '"compact-revision":{n},"took":"{ms}ms"}}',
    '"caller":"mvcc/hash.go:137","msg":"storing new hash","hash":{n},"revision":{n},'
    '"compact-revision":{n}}}',
    '"caller":"etcdserver/server.go:1395","msg":"triggering snapshot",'
    '"local-member-id":"8e9e05c52164694d","local-member-applied-index":{n},'
    '"local-member-snapshot-index":{n},"local-member-snapshot-count":100000}}',
    '"caller":"etcdserver/server.go:2413","msg":"saved snapshot","snapshot-index":{n}}}',
    '"caller":"etcdserver/server.go:2443","msg":"compacted Raft logs","compact-index":{n}}}',
    '"caller":"fileutil/purge.go:77","msg":"purged","path":"/var/etcd/data/member/snap/'
    '0000000000000002-00000000000{n}.snap"}}',
    '"caller":"v3rpc/health.go:63","msg":"grpc service status changed",'
    '"service":"","status":"SERVING"}}',
    '"caller":"embed/serve.go:98","msg":"ready to serve client requests"}}',
    '"caller":"etcdserver/server.go:2063","msg":"published local member to cluster through raft",'
    '"local-member-id":"8e9e05c52164694d","cluster-id":"cdf818194e3a8c32"}}',
    '"caller":"wal/wal.go:789","msg":"created a new WAL segment","path":'
    '"/var/etcd/data/member/wal/0000000000000001-00000000000{n}.wal"}}',
    '"caller":"membership/cluster.go:584","msg":"updated cluster version",'
    '"cluster-id":"cdf818194e3a8c32","local-member-id":"8e9e05c52164694d",'
    '"from":"3.0","to":"3.5"}}',
]


def _request(rng: random.Random, n: int) -> tuple[str, str, str]:
    """(prefix, request, response) of a slow request of a random operation and resource."""
    key = rng.choice(RESOURCES).format(n=n % 500)
    op = rng.random()
    if op < 0.5:
        end = ' range_end:\\"' + key.rsplit("/", 1)[0] + '0\\"' if op < 0.1 else ""
        return "read-only range ", f'key:\\"{key}\\"{end} ', "range_response_count:1 size:2045"
    if op < 0.85:
        return (
            "",
            f'header:<ID:{n} username:\\"kube-apiserver-etcd-client\\" auth_revision:1 > '
            f'txn:<compare:<target:MOD key:\\"{key}\\" mod_revision:{n} > success:<request_put:'
            f'<key:\\"{key}\\" value_size:363 >> failure:<>>',
            "size:18",
        )
    if op < 0.95:
        return "", f'header:<ID:{n} > put:<key:\\"{key}\\" value_size:42 >', "size:6"
    return "", f"header:<ID:{n} > lease_grant:<ttl:15-second id:694d6d1ba410{n:04x}>", "size:42"


def _lines(count: int, seed: int) -> Iterator[tuple[str, str]]:
    """(kind, line) pairs; kind is 'request', 'fdatasync' or 'info'."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    for n in range(count):
        now = start + timedelta(microseconds=n * 997)
        prefix = now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z "
        ts = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        roll = rng.random()
        if roll < 0.02:
            pre, req, resp = _request(rng, n)
            yield (
                "request",
                (
                    f'{prefix}{{"level":"warn","ts":"{ts}","caller":"etcdserver/util.go:166",'
                    f'"msg":"apply request took too long","took":"{rng.uniform(0.1, 15):.9f}s",'
                    f'"expected-duration":"100ms","prefix":"{pre}","request":"{req}",'
                    f'"response":"{resp}"}}'
                ),
            )
        elif roll < 0.03:
            yield (
                "fdatasync",
                (
                    f'{prefix}{{"level":"warn","ts":"{ts}","caller":"wal/wal.go:802",'
                    f'"msg":"slow fdatasync","took":"{rng.uniform(1, 4):.9f}s",'
                    f'"expected-duration":"1s"}}'
                ),
            )
        else:
            body = rng.choice(INFO_LINES).format(n=n, ms=rng.randint(1, 90))
            yield "info", f'{prefix}{{"level":"info","ts":"{ts}",{body}'


def generate(path: Path, count: int, seed: int = 7) -> dict[str, int]:
    """Write the corpus; returns how many lines of each kind it holds."""
    counts = {"request": 0, "fdatasync": 0, "info": 0}
    with path.open("w", encoding="utf-8") as out:
        for kind, line in _lines(count, seed):
            counts[kind] += 1
            out.write(line + "\n")
    return counts


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str]) -> tuple[float, float, str]:
    """Run a command to completion; (wall seconds, CPU seconds, stdout). Raises on failure."""
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):  # grep -c exits 1 when it counts nothing
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, _children_cpu() - cpu, done.stdout


def run_exporter(path: Path) -> tuple[float, float, int, int]:
    """(seconds, CPU seconds, slow requests, slow fdatasyncs) from `parse --output json`."""
    argv = [sys.executable, "-m", "exporter", "parse", "--output", "json", str(path)]
    elapsed, cpu, out = timed(argv)
    kinds = json.loads(out)["events_by_kind"]
    return elapsed, cpu, kinds.get("slow_request", 0), kinds.get("slow_fdatasync", 0)


def run_mtail(path: Path, work: Path) -> tuple[float, float, int, int]:
    """(seconds, CPU seconds, slow requests, slow fdatasyncs) from `mtail --one_shot`."""
    progs = work / "progs"
    progs.mkdir(exist_ok=True)
    shutil.copy(MTAIL_PROGRAM, progs / MTAIL_PROGRAM.name)
    argv = ["mtail", "--one_shot", "--one_shot_format", "json", "--logtostderr"]
    argv += ["--progs", str(progs), "--logs", str(path)]
    elapsed, cpu, out = timed(argv)
    metrics = json.loads(out)

    def value(name: str) -> int:
        return int(sum(point["Value"]["Value"] for point in metrics[name][0]["LabelValues"]))

    return elapsed, cpu, value("etcd_slow_requests"), value("etcd_slow_fdatasyncs")


def run_grep(path: Path) -> tuple[float, float, int]:
    """(seconds, CPU seconds, lines with either message) from `grep -c -F`."""
    argv = ["grep", "-c", "-F", "-e", SLOW_REQUEST_MSG, "-e", FDATASYNC_MSG, str(path)]
    elapsed, cpu, out = timed(argv)
    return elapsed, cpu, int(out.strip())


def best_of(runs: int, fn: Callable[[], tuple[float, ...]]) -> tuple[float, ...]:
    """The run with the shortest time (first element) of `runs` runs."""
    return min((fn() for _ in range(runs)), key=lambda r: r[0])


def main() -> int:
    """Generate, time, compare, report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="corpus size (default 1e6)")
    ap.add_argument("--runs", type=int, default=3, help="runs per tool; the best counts")
    ap.add_argument("--keep", action="store_true", help="keep the corpus under bench/out/")
    args = ap.parse_args()
    work = HERE / "out" if args.keep else Path(tempfile.mkdtemp(prefix="parse-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _bench(work, args.lines, args.runs)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _bench(work: Path, lines: int, runs: int) -> int:
    corpus = work / "etcd-zap.log"
    counts = generate(corpus, lines)
    size = corpus.stat().st_size
    print(f"corpus: {lines:,} lines, {size / 1e6:.0f} MB, {counts}")
    print(f"load average before: {_load()} ({os.cpu_count()} CPUs)")
    ex_s, ex_cpu, ex_req, ex_sync = best_of(runs, lambda: run_exporter(corpus))
    mt_s, mt_cpu, mt_req, mt_sync = best_of(runs, lambda: run_mtail(corpus, work))
    gr_s, gr_cpu, gr_total = best_of(runs, lambda: run_grep(corpus))
    print(f"load average after:  {_load()}")
    expected = (counts["request"], counts["fdatasync"])
    assert (ex_req, ex_sync) == expected, f"exporter counted {(ex_req, ex_sync)}, not {expected}"
    assert (mt_req, mt_sync) == expected, f"mtail counted {(mt_req, mt_sync)}, not {expected}"
    assert gr_total == sum(expected), f"grep counted {gr_total}, not {sum(expected)}"
    rows = [
        ("etcd-latency-exporter parse", ex_s, ex_cpu),
        ("mtail --one_shot", mt_s, mt_cpu),
        ("grep -c", gr_s, gr_cpu),
    ]
    for name, seconds, cpu in rows:
        print(f"{name:<28} {seconds:7.2f} s  {lines / seconds:>12,.0f} lines/s  {cpu:6.2f} s CPU")
    print(f"exporter vs mtail: {mt_s / ex_s:.1f}x the throughput (target >= 10x)")
    print(f"exporter vs grep -c: {ex_s / gr_s:.1f}x the time (target <= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
