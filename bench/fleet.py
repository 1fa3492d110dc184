"""Fleet benchmark: one exporter replica against a simulated Gardener seed, next to Prometheus.

A seed of N shoots (2N etcd members: pods, PVCs, PVs, StorageClasses, Etcd resources, pod logs
written at --log-rate lines per member per second, and 2N etcd /metrics endpoints serving the
captured etcd 3.5 payload with advancing histograms) is simulated in separate processes. The
real exporter (`python -m exporter run --discovery=kubernetes`) discovers, follows and scrapes
it; a real Prometheus scrapes the same endpoints. Prints CPU, peak RSS, /metrics render time,
event-to-/metrics delay, scrape spread and open log streams, and checks the budgets.

    python bench/fleet.py --shoots 1000                      # one point, 30 s interval, 3 cycles
    python bench/fleet.py --shoots 1000 --replicas 4 --reshard-to 5   # sharding
    python bench/fleet.py --curve 100,500,1000,2000          # scaling curve + PNG
    python bench/fleet.py --shoots 1000 --storm-members 200 --storm-rate 100 --storm-seconds 300
                                                             # an incident's log storm

See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.fleetbench import report, stack  # noqa: E402
from bench.fleetbench.modes import PointPlan, bench_point, storm_point  # noqa: E402
from bench.fleetbench.storm import StormPlan  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shoots", type=int, default=1000)
    p.add_argument("--scrape-interval", type=float, default=30.0, help="seconds")
    p.add_argument("--scrape-timeout", type=float, default=10.0, help="seconds")
    p.add_argument("--cycles", type=int, default=3, help="scrape intervals measured")
    p.add_argument("--warmup-cycles", type=int, default=1)
    p.add_argument("--log-rate", type=float, default=2.0, help="lines per member per second")
    p.add_argument("--replicas", type=int, default=1, help="exporter replicas (--total-shards)")
    p.add_argument("--reshard-to", type=int, default=0, help="then restart with this many shards")
    p.add_argument("--no-prometheus", action="store_true", help="skip the Prometheus baseline")
    p.add_argument("--endpoint-procs", type=int, default=1, help="processes serving /metrics")
    p.add_argument(
        "--nice-others", type=int, default=10, help="nice level of the simulator and Prometheus"
    )
    p.add_argument("--render-gets", type=int, default=20)
    p.add_argument("--events", type=int, default=20, help="marker lines injected")
    p.add_argument("--curve", default="", help="comma-separated shoot counts: the scaling curve")
    p.add_argument("--curve-prometheus", action="store_true", help="Prometheus in curve points")
    p.add_argument("--plot", type=Path, default=REPO / "docs" / "performance-curve.png")
    p.add_argument("--out", type=Path, help="write the figures as JSON here")
    p.add_argument("--workdir", type=Path, help="keep logs and TSDB here (default: a temp dir)")
    p.add_argument("--ready-timeout", type=float, default=900.0, help="seconds to a steady state")
    p.add_argument("--exporter-arg", action="append", default=[], help="extra exporter flag")
    p.add_argument(
        "--exporter-tree", type=Path, help="run the exporter from this source tree (A/B runs)"
    )
    s = p.add_argument_group(
        "storm mode (with --replicas, one per shard; replaces the measured window)"
    )
    s.add_argument("--storm-members", type=int, default=0, help="members in the storm (0: none)")
    s.add_argument("--storm-rate", type=float, default=100.0, help="slow requests/member/s")
    s.add_argument("--storm-seconds", type=float, default=300.0)
    s.add_argument("--storm-before", type=float, default=30.0, help="normal windows before, s")
    s.add_argument("--storm-after", type=float, default=120.0, help="longest wait to recover, s")
    s.add_argument("--storm-window", type=float, default=10.0, help="quiet part of a window, s")
    s.add_argument("--storm-probes", type=int, default=3, help="GETs and events per window")
    s.add_argument("--storm-settle", type=float, default=3.0, help="seconds between readings")
    args = p.parse_args(argv)
    if args.storm_members and (args.reshard_to or args.curve):
        p.error("the storm mode runs no resharding and no curve")
    return args


def options(args: argparse.Namespace, *, shoots: int, prometheus: bool) -> stack.Options:
    """The run options of one point."""
    return stack.Options(
        shoots=shoots,
        interval=args.scrape_interval,
        timeout=min(args.scrape_timeout, args.scrape_interval),
        log_rate=args.log_rate,
        endpoint_procs=args.endpoint_procs,
        prometheus=prometheus,
        exporter_args=list(args.exporter_arg),
        exporter_tree=args.exporter_tree,
        nice_others=args.nice_others,
        ready_timeout=args.ready_timeout,
    )


def storm_plan(args: argparse.Namespace) -> StormPlan:
    """The storm of the command line."""
    return StormPlan(
        members=args.storm_members,
        rate=args.storm_rate,
        seconds=args.storm_seconds,
        before=args.storm_before,
        window=args.storm_window,
        probes=args.storm_probes,
        after=args.storm_after,
        settle=args.storm_settle,
    )


async def main_async(args: argparse.Namespace, workdir: Path) -> int:
    """Run the chosen mode; returns the exit code (1 when a budget is exceeded)."""
    plan = PointPlan(
        replicas=args.replicas,
        cycles=args.cycles,
        warmup_cycles=args.warmup_cycles,
        render_gets=args.render_gets,
        events=args.events,
        reshard_to=args.reshard_to,
    )
    if args.curve:
        from bench.fleetbench.curve import run_curve

        counts = [int(x) for x in args.curve.split(",") if x]
        return await run_curve(
            args,
            counts=counts,
            plan=plan,
            workdir=workdir,
            make_options=lambda n: options(args, shoots=n, prometheus=args.curve_prometheus),
        )
    opts = options(args, shoots=args.shoots, prometheus=not args.no_prometheus)
    if args.storm_members:
        figures = await storm_point(opts, plan, storm_plan(args), workdir)
        print(report.storm_text(figures), flush=True)
        if args.out:
            report.save(args.out, figures)
        return 0 if all(b["ok"] for b in figures["budgets"].values()) else 1
    figures = await bench_point(opts, plan, workdir)
    print(report.text(figures), flush=True)
    if args.out:
        report.save(args.out, figures)
    budgets = figures.get("budgets") or {}
    return 0 if all(b["ok"] or b["value"] is None for b in budgets.values()) else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(main_async(args, workdir))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
