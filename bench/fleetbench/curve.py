"""The scaling curve: one benchmark point per fleet size, a table and a PNG plot.

Each point is a full run (its own simulator, exporter and, with --curve-prometheus, Prometheus)
kept short: --cycles scrape intervals measured after --warmup-cycles. The plot shows the
exporter's average CPU, peak RSS and p50/p99 /metrics render time against the number of etcd
members.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.fleetbench import report
from bench.fleetbench.modes import PointPlan, bench_point
from bench.fleetbench.stack import Options


async def run_curve(
    args: argparse.Namespace,
    *,
    counts: list[int],
    plan: PointPlan,
    workdir: Path,
    make_options: Callable[[int], Options],
) -> int:
    """Run every point, print the table, save JSON and the plot."""
    rows: list[dict[str, Any]] = []
    for shoots in counts:
        opts = make_options(shoots)
        point_dir = workdir / f"shoots-{shoots}"
        point_dir.mkdir(parents=True, exist_ok=True)
        figures = await bench_point(opts, plan, point_dir)
        print(report.text(figures), "\n", flush=True)
        rows.append(figures)
        if args.out:
            report.save(args.out, rows)
    print(table(rows))
    plot(rows, args.plot)
    print(f"plot: {args.plot}")
    return 0


def table(rows: list[dict[str, Any]]) -> str:
    """The curve as a Markdown table."""
    lines = [
        "| shoots | members | exporter CPU (cores) | peak RSS (MiB) | render p50 / p99 (s) | "
        "/metrics (MB) | event p99 (s) | simulator CPU (cores) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in rows:
        lines.append(
            f"| {f['shoots']} | {f['members']} | {f['exporter_cpu_cores']:.3f} | "
            f"{f['exporter_peak_rss_mib']:.0f} | {f['render_p50_s']:.2f} / "
            f"{f['render_p99_s']:.2f} | {f['metrics_bytes'] / 1e6:.1f} | "
            f"{_num(f['event_p99_s'])} | {f['simulator_cpu_cores']:.2f} |"
        )
    return "\n".join(lines)


def _num(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f}"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Three panels against members: CPU, peak RSS, render time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    members = [f["members"] for f in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    panels = [
        ("average CPU (cores)", [("exporter", "exporter_cpu_cores")], 0.5),
        ("peak RSS (MiB)", [("exporter", "exporter_peak_rss_mib")], 400.0),
        ("/metrics render (s)", [("p50", "render_p50_s"), ("p99", "render_p99_s")], 1.0),
    ]
    for ax, (title, series, budget) in zip(axes, panels, strict=True):
        for label, key in series:
            ax.plot(members, [f[key] for f in rows], marker="o", label=label)
        ax.axhline(budget, color="red", linestyle="--", linewidth=1, label="budget at 2,000")
        ax.axvline(2000, color="grey", linestyle=":", linewidth=1)
        ax.set_title(title)
        ax.set_xlabel("etcd members (2 per shoot)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    interval = rows[0]["scrape_interval_s"] if rows else 0
    fig.suptitle(
        f"etcd-latency-exporter, one replica, scrape interval {interval:g} s, "
        f"{rows[0]['log_rate_per_member'] if rows else 0:g} log lines/member/s (2 shared cores)"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
