"""Throughput of `etcd-latency-exporter parse` against mtail and `grep -c` on one etcd log.

Generates zap logs (etcd 3.5 shapes, every line with the kubelet's `timestamps=true` prefix) of
N lines each (default 1,000,000), streamed to disk line by line (any size, flat memory), in two
mixes (`--corpus`, default both, reported side by side):

- `easy`: about 2 % slow requests with varied operations and Kubernetes keys, 1 % slow
  fdatasyncs, the rest info lines of a dozen shapes: the original benchmark log;
- `realistic`: the mix of a slowed etcd 3.5, with the shapes and message texts of the captured
  logs (tests/fixtures/etcd-3.5-zap, and etcd 3.5.1's periodic lines), one draw per line:

      10   %  request traces: `trace[<id>] put|linearizableReadLoop|range|transaction|compact`
              info lines with detail, duration, start, end and one or two steps (55/18/16/9/2,
              the fixtures' proportions);
       2   %  slow requests (`apply request took too long`) of every operation: read-only range
              (single key, listing, count_only, keys_only) and txn, txn, put, delete_range,
              lease_grant, lease_revoke, compaction, on the keys of 24 Kubernetes resources;
       2   %  `request stats` warnings (a slow gRPC request; the fixtures log about one per
              trace, so this is the low end);
       1.5 %  `waiting for ReadIndex response took too long, retrying`;
       1.5 %  `failed to apply request` (lease not found, revision compacted): no event;
       1   %  `slow fdatasync`;
       1   %  `leader failed to send out heartbeat on time`;
       0.02 % leader changes: six raft lines each as a follower logs them (pre-vote, higher
              term, became follower, vote, `raft.node: … lost leader`, `raft.node: … elected
              leader`), the last one the event;
       0.05 % grpc's own `WARNING: … [core] grpc: …` text lines;
      the rest: periodic info lines: auto compaction (starting/completed auto periodic
              compaction, compact tree index, finished scheduled compaction, storing new
              hash), finished peer corruption check, triggering/saved snapshot, compacted Raft
              logs, purged, created a new WAL segment.

  Every line is a valid etcd line (parse counts none as unparsed); the realized mix is printed.

Then times, on the same file:

- `python -m exporter parse --output json FILE` (a subprocess of this interpreter; with
  `--exporter-tree DIR` the package of another source tree, e.g. one without the C extension),
  its package byte-compiled first, as an installed one is (pip and the image compile it; a
  source tree where PYTHONDONTWRITEBYTECODE is set would compile every module at every start);
- `mtail --one_shot` with a program counting every event kind `parse` counts in zap logs
  (bench/etcd_slow.mtail);
- `grep -c -F` for the messages of those kinds.

Asserts that all three agree on the counts (parse and mtail kind by kind, grep in total, all
equal to what the generator wrote) and prints, for the best of `--runs` runs of each, wall time,
lines/s, CPU time (user + system of the child and its own children) and peak RSS (`ru_maxrss`
of the child: its largest process), then the ratios. Targets: at least 10x mtail's throughput,
and within 3x of `grep -c`. The load average is printed before and after: other work on the
machine slows every tool, and the parse command (several processes on a large file) more than
single-threaded ones when a core is taken.

    python bench/parse_bench.py [--corpus realistic|easy|both] [--lines N] [--runs R]
                                [--tools parse,mtail,grep] [--exporter-tree DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, TypeVar

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.logcorpus import (  # noqa: E402
    FDATASYNC_MSG,
    HEARTBEAT,
    READ_INDEX,
    SLOW_REQUEST_MSG,
    expected_events,
    make_corpus,
)

MTAIL_PROGRAM = HERE / "etcd_slow.mtail"
T = TypeVar("T")

# --- the tools ---------------------------------------------------------------------------------

# The counters of bench/etcd_slow.mtail, by the event kind `parse` reports.
MTAIL_COUNTERS = {
    "slow_request": "etcd_slow_requests",
    "slow_fdatasync": "etcd_slow_fdatasyncs",
    "slow_trace": "etcd_slow_traces",
    "slow_grpc_request": "etcd_slow_grpc_requests",
    "read_index_retry": "etcd_read_index_retries",
    "read_index_timeout": "etcd_read_index_timeouts",
    "read_index_out_of_date": "etcd_read_index_out_of_date",
    "heartbeat_late": "etcd_heartbeats_late",
    "leader_change": "etcd_leader_changes",
    "peer_unhealthy": "etcd_peers_unhealthy",
    "clock_drift": "etcd_clock_drifts",
    "raft_message_dropped": "etcd_raft_messages_dropped",
    "snapshot_transfer_slow": "etcd_snapshot_transfers_slow",
}
# What `grep -c -F` looks for: the same messages (a line holds at most one). `request stats` is
# an event at level warn only, which every such line of the corpora is.
GREP_PATTERNS = [
    SLOW_REQUEST_MSG,
    FDATASYNC_MSG,
    '"msg":"trace[',
    '"msg":"request stats"',
    f'"msg":"{READ_INDEX}"',
    '"msg":"timed out waiting for read index response (local node might have slow network)"',
    '"msg":"ignored out-of-date read index response; local node read indexes queueing up and '
    'waiting to be in sync with leader"',
    f'"msg":"{HEARTBEAT}"',
    " elected leader ",
    " changed leader from ",
    '"msg":"prober detected unhealthy status"',
    '"msg":"prober found high clock drift"',
    " Raft message since sending buffer is full (overloaded network)",
    " Raft message since receiving buffer is full (overloaded network)",
    '"msg":"snapshotting taking too long to transfer"',
]


class Run(NamedTuple):
    """One run of one tool: wall and CPU seconds, peak RSS in KiB, stdout."""

    seconds: float
    cpu: float
    maxrss_kib: int
    stdout: str


def timed(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    ok: tuple[int, ...] = (0,),
) -> Run:
    """Run a command to completion, its resources taken from `wait4` (the child and the children
    it waited for). Raises on an exit code not in `ok`."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if code not in ok:
            message = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{argv[0]} failed ({code}): {message}")
        cpu = usage.ru_utime + usage.ru_stime
        return Run(elapsed, cpu, usage.ru_maxrss, out.read().decode())


def exporter_env(tree: Path | None) -> tuple[dict[str, str] | None, Path | None]:
    """(environment, working directory) that make `python -m exporter` import the package of
    `tree` rather than the installed one; (None, None) for the installed one."""
    if tree is None:
        return None, None
    return {**os.environ, "PYTHONPATH": str(tree)}, tree


def exporter_location(tree: Path | None) -> str:
    """Where `python -m exporter` imports the package from (printed, to be sure of the tree)."""
    env, cwd = exporter_env(tree)
    argv = [sys.executable, "-c", "import exporter; print(exporter.__file__)"]
    return timed(argv, env=env, cwd=cwd).stdout.strip()


def compile_package(tree: Path | None) -> str:
    """Byte-compile the package `python -m exporter` imports (`compileall` writes its
    `__pycache__`, ignored by git), as installing it does; where it is."""
    package = Path(exporter_location(tree)).parent
    timed([sys.executable, "-m", "compileall", "-q", str(package)])
    return str(package)


def run_exporter(path: Path, tree: Path | None) -> tuple[Run, dict[str, int]]:
    """The run and `events_by_kind` of `parse --output json`; asserts no line is unparsed."""
    env, cwd = exporter_env(tree)
    argv = [sys.executable, "-m", "exporter", "parse", "--output", "json", str(path.resolve())]
    run = timed(argv, env=env, cwd=cwd)
    doc = json.loads(run.stdout)
    assert doc["lines"]["unparsed"] == 0, f"parse found unparsed lines: {doc['lines']}"
    return run, dict(doc["events_by_kind"])


def run_mtail(path: Path, work: Path) -> tuple[Run, dict[str, int]]:
    """The run and the counts by event kind of `mtail --one_shot` with bench/etcd_slow.mtail."""
    progs = work / "progs"
    progs.mkdir(exist_ok=True)
    shutil.copy(MTAIL_PROGRAM, progs / MTAIL_PROGRAM.name)
    argv = ["mtail", "--one_shot", "--one_shot_format", "json", "--logtostderr"]
    argv += ["--address", "127.0.0.1", "--port", "0"]  # it listens even in one-shot mode
    argv += ["--progs", str(progs), "--logs", str(path)]
    run = timed(argv)
    metrics = json.loads(run.stdout)

    def value(name: str) -> int:
        points = metrics.get(name) or [{"LabelValues": []}]
        return int(sum(point["Value"]["Value"] for point in points[0].get("LabelValues") or []))

    counts = {kind: value(name) for kind, name in MTAIL_COUNTERS.items()}
    return run, {kind: n for kind, n in counts.items() if n}


def run_grep(path: Path) -> tuple[Run, int]:
    """The run and the number of lines with any of `GREP_PATTERNS`, from `grep -c -F`."""
    argv = ["grep", "-c", "-F", *(a for p in GREP_PATTERNS for a in ("-e", p)), str(path)]
    run = timed(argv, ok=(0, 1))  # grep -c exits 1 when it counts nothing
    return run, int(run.stdout.strip())


def best_of(runs: int, fn: Callable[[], tuple[Run, T]]) -> tuple[Run, T]:
    """The run with the shortest wall time of `runs` runs (and what it counted)."""
    return min((fn() for _ in range(runs)), key=lambda r: r[0].seconds)


# --- the benchmark -----------------------------------------------------------------------------


def main() -> int:
    """Generate, time, compare, report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=("realistic", "easy", "both"), default="both")
    ap.add_argument("--lines", type=int, default=1_000_000, help="corpus size (default 1e6)")
    ap.add_argument("--runs", type=int, default=3, help="runs per tool; the best counts")
    ap.add_argument(
        "--tools", default="parse,mtail,grep", help="comma-separated subset of parse,mtail,grep"
    )
    ap.add_argument(
        "--exporter-tree", type=Path, help="run the exporter package of this source tree"
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--keep", action="store_true", help="keep the corpora under bench/out/ (and reuse them)"
    )
    ap.add_argument("--workdir", type=Path, help="keep (and reuse) the corpora here instead")
    args = ap.parse_args()
    tools = set(args.tools.split(","))
    if not tools <= {"parse", "mtail", "grep"}:
        ap.error(f"unknown tool in --tools {args.tools}")
    corpora = ["realistic", "easy"] if args.corpus == "both" else [args.corpus]
    keep = args.keep or args.workdir is not None
    work = args.workdir or (HERE / "out" if args.keep else None)
    work = work or Path(tempfile.mkdtemp(prefix="parse-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tree = args.exporter_tree.resolve() if args.exporter_tree else None
    try:
        if "parse" in tools:
            print(f"exporter package (byte-compiled): {compile_package(tree)}")
        results = [
            _bench(work, corpus, args.lines, args.runs, tools, tree, args.seed)
            for corpus in corpora
        ]
        if len(results) > 1:
            print("\n== side by side")
            _table(args.lines, results)
        return 0
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cached_corpus(path: Path, corpus: str, lines: int, seed: int) -> dict[str, int]:
    """`make_corpus`, or the counts of the same corpus written before (kept with `--keep`, in a
    file next to it written last, so that an interrupted corpus is written again)."""
    counts_file = path.with_suffix(".counts.json")
    if path.exists() and counts_file.exists():
        counts: dict[str, int] = json.loads(counts_file.read_text())
        return counts
    counts = make_corpus(path, corpus, lines, seed)
    counts_file.write_text(json.dumps(counts))
    return counts


def _bench(
    work: Path, corpus: str, lines: int, runs: int, tools: set[str], tree: Path | None, seed: int
) -> tuple[str, dict[str, Run]]:
    """Generate one corpus, run the tools on it, check the counts; (corpus, best run by tool)."""
    path = work / f"etcd-zap-{corpus}-{lines}-{seed}.log"
    started = time.perf_counter()
    counts = cached_corpus(path, corpus, lines, seed)
    made = time.perf_counter() - started
    size = path.stat().st_size
    print(f"\n== {corpus} corpus: {lines:,} lines, {size / 1e6:,.0f} MB, ready in {made:.0f} s")
    for kind, n in sorted(counts.items(), key=lambda item: -item[1]):
        print(f"   {kind:<18} {n:>10,}  {100 * n / lines:6.2f} %")
    expected = expected_events(corpus, counts)
    print(f"   events parse must count: {sum(expected.values()):,} {expected}")
    print(f"load average before: {_load()} ({os.cpu_count()} CPUs)")
    best: dict[str, Run] = {}
    if "parse" in tools:
        best["parse"], found = best_of(runs, lambda: run_exporter(path, tree))
        assert found == expected, f"parse counted {found}, not {expected}"
    if "mtail" in tools:
        best["mtail"], found = best_of(runs, lambda: run_mtail(path, work))
        assert found == expected, f"mtail counted {found}, not {expected}"
    if "grep" in tools:
        best["grep"], total = best_of(runs, lambda: run_grep(path))
        assert total == sum(expected.values()), (
            f"grep counted {total}, not {sum(expected.values())}"
        )
    print(f"load average after:  {_load()}")
    _table(lines, [(corpus, best)])
    return corpus, best


NAMES = {"parse": "etcd-latency-exporter parse", "mtail": "mtail --one_shot", "grep": "grep -c"}


def _table(lines: int, results: list[tuple[str, dict[str, Run]]]) -> None:
    """Every corpus's figures side by side, then the ratios against the targets."""
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS: ru_maxrss of the child, at least this process's {floor:.0f} MiB (fork)")
    print(f"{'':<10} {'tool':<28} {'wall':>8} {'lines/s':>12} {'CPU':>8} {'peak RSS':>10}")
    for corpus, best in results:
        for tool, run in best.items():
            print(
                f"{corpus:<10} {NAMES[tool]:<28} {run.seconds:6.2f} s {lines / run.seconds:>12,.0f}"
                f" {run.cpu:6.2f} s {run.maxrss_kib / 1024:7.0f} MiB"
            )
    for corpus, best in results:
        parse = best.get("parse")
        if parse is None:
            continue
        if "mtail" in best:
            ratio, cpu = best["mtail"].seconds / parse.seconds, best["mtail"].cpu / parse.cpu
            print(
                f"{corpus}: exporter vs mtail: {ratio:.1f}x the throughput (target >= 10x);"
                f" by CPU time {cpu:.1f}x"
            )
        if "grep" in best:
            ratio, cpu = parse.seconds / best["grep"].seconds, parse.cpu / best["grep"].cpu
            print(
                f"{corpus}: exporter vs grep -c: {ratio:.1f}x the time (target <= 3x);"
                f" by CPU time {cpu:.1f}x"
            )


if __name__ == "__main__":
    sys.exit(main())
