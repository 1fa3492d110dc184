"""`etcd-latency-exporter diagnose`: which etcd is on a slow disk, and why — in one command.

Discovers every member like the daemon (`discover_once` in this package), then per member,
concurrently: scrapes /metrics, waits `--window`, scrapes again (the difference gives WAL fsync
and backend commit p99 over the window), then reads the last `--since` of its log. The
evidence goes through `exporter.diagnosis.verdict.judge`; the report is a table or JSON on stdout.

`--concurrency` bounds the members being scraped or having their log read at the same time; the
windows of all members overlap, so the run takes about one window plus the I/O.
Exit codes: 0 every verdict `ok`, 1 any other verdict, 2 bad configuration or nothing to report.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

import aiohttp

from exporter.commands.diagnose.discover_once import DiscoveryFailed, discover_once
from exporter.commands.diagnose.logread import LogReadError, PodLogs, read_events
from exporter.commands.diagnose.progress import Progress
from exporter.commands.diagnose.table import render_table
from exporter.diagnosis import humanize as h
from exporter.diagnosis.evidence import (
    disk_between,
    events_evidence,
    not_scraped,
    p99_between,
    pod_member_evidence,
    slow_applies_between,
)
from exporter.diagnosis.histogram import Latency
from exporter.diagnosis.report import (
    EtcdReport,
    exit_code,
    report_json,
    sort_reports,
    with_class_medians,
)
from exporter.diagnosis.verdict import DiskEvidence, LogEvidence, judge
from exporter.model import RelayedFamily, ScrapeSpec, Target
from exporter.runtime.logconfig import setup_logging
from exporter.scrape.client import make_session
from exporter.scrape.errors import ScrapeError
from exporter.scrape.scraper import Scraper, make_scraper
from exporter.settings import DiagnoseSettings

logger = logging.getLogger(__name__)

EXIT_USAGE = 2


@dataclass(frozen=True, slots=True)
class Context:
    """What every member's examination shares."""

    settings: DiagnoseSettings
    scraper: Scraper  # one session, one set of scrape caches, the source's federation
    kube: PodLogs | None
    limit: asyncio.Semaphore
    progress: Progress
    now: datetime


def run_diagnose(settings: DiagnoseSettings) -> int:
    """The `diagnose` subcommand: report on stdout, progress on a terminal's stderr."""
    explicit = "level" in settings.log.model_fields_set
    setup_logging(level=settings.log.level if explicit else "warn", fmt=settings.log.format)
    try:
        return asyncio.run(diagnose(settings, out=sys.stdout, progress=Progress(sys.stderr)))
    except DiscoveryFailed as err:
        print(f"etcd-latency-exporter diagnose: {err}", file=sys.stderr)
        return EXIT_USAGE


async def diagnose(settings: DiagnoseSettings, *, out: TextIO, progress: Progress) -> int:
    """Discover, examine, print the report; returns the exit code."""
    async with progress.running(), discover_once(settings) as (targets, kube):
        if not targets:
            raise DiscoveryFailed(_nothing_found(settings))
        progress.total = len(targets)
        reports = await examine_all(targets, settings=settings, kube=kube, progress=progress)
    reports = sort_reports(with_class_medians(reports, min_members=settings.class_min_members))
    if settings.output == "json":
        doc = report_json(
            reports, window=settings.window, since=settings.since, generated_at=datetime.now(UTC)
        )
        out.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    else:
        out.write(render_table(reports, window=settings.window, since=settings.since))
    out.flush()
    return exit_code(reports)


def _nothing_found(settings: DiagnoseSettings) -> str:
    if settings.discovery == "static":
        return f"no etcd members in {settings.static.targets_file}"
    return "no etcd members found (check --kubernetes.selectors and --kubernetes.namespaces)"


async def examine_all(
    targets: list[Target], *, settings: DiagnoseSettings, kube: PodLogs | None, progress: Progress
) -> list[EtcdReport]:
    """Every member's report; members run concurrently, their I/O bounded by --concurrency."""
    async with _session(settings) as session:
        ctx = Context(
            settings=settings,
            scraper=_scraper(settings, session),
            kube=kube,
            limit=asyncio.Semaphore(settings.concurrency),
            progress=progress,
            now=datetime.now(UTC),
        )
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(examine(t, ctx), name=f"diagnose {t.key}") for t in targets]
        finally:
            await ctx.scraper.close()
    return [t.result() for t in tasks]


def _scraper(settings: DiagnoseSettings, session: aiohttp.ClientSession) -> Scraper:
    """With --scrape.source=shoot-prometheus, one /federate request per namespace and round of
    scrapes, shared by its members: an answer is reused for half the window, so the second
    round asks again."""
    sc = settings.scrape
    return make_scraper(
        session,
        source=sc.source,
        jobs=sc.shoot_prometheus_jobs,
        timeout=sc.timeout,
        max_bytes=sc.max_bytes,
        max_age=settings.window / 2,
    )


@asynccontextmanager
async def _session(settings: DiagnoseSettings) -> AsyncIterator[aiohttp.ClientSession]:
    session = make_session(concurrency=max(settings.concurrency, 1))
    try:
        yield session
    finally:
        await session.close()


async def examine(target: Target, ctx: Context) -> EtcdReport:
    """One member: two scrapes `--window` apart, then its recent log, judged.

    The log is read after the window so that it covers it: when etcd counted more slow applies
    within the window than the log holds lines, the log is sampled (zap) and its counts are
    lower bounds."""
    disk, last_run, applies = await _disk(target, ctx)
    covered = ctx.settings.since >= ctx.settings.window
    logs = await _logs(target, ctx, etcd_slow_applies=applies if covered else None)
    member = pod_member_evidence(target, last_run, now=time.time())
    verdict = judge(volume=target.volume, disk=disk, logs=logs, member=member)
    ctx.progress.done += 1
    return EtcdReport(target=target, disk=disk, logs=logs, verdict=verdict, member=member)


async def _disk(target: Target, ctx: Context) -> tuple[DiskEvidence, Latency | None, int | None]:
    """Two scrapes; for a member whose container stops running between them, the WAL fsync of
    the first one (since its etcd started: its run so far); and etcd's slow applies between
    them."""
    spec = target.scrape
    unscraped = not_scraped(target)
    if unscraped is not None or spec is None:
        return unscraped or DiskEvidence(reachable=False), None, None
    first = await _scrape(target.key, spec, ctx)
    if isinstance(first, ScrapeError):
        return DiskEvidence(reachable=False, error=first.reason), None, None
    started = time.monotonic()
    ends = started + ctx.settings.window
    ctx.progress.window_ends = max(ctx.progress.window_ends or 0.0, ends)
    await asyncio.sleep(max(0.0, ends - time.monotonic()))
    second = await _scrape(target.key, spec, ctx)
    if isinstance(second, ScrapeError):
        last_run = p99_between(None, first) if target.member is not None else None
        return DiskEvidence(reachable=False, error=second.reason), last_run, None
    window = time.monotonic() - started
    return disk_between(first, second, window=window), None, slow_applies_between(first, second)


async def _scrape(
    key: str, spec: ScrapeSpec, ctx: Context
) -> tuple[RelayedFamily, ...] | ScrapeError:
    async with ctx.limit:
        try:
            families = await ctx.scraper.families(spec)
        except ScrapeError as err:
            logger.info(
                "Scrape failed",
                extra={"target": key, "reason": err.reason, "detail": err.detail},
            )
            return err
    ctx.progress.scraped += 1
    return families


async def _logs(target: Target, ctx: Context, *, etcd_slow_applies: int | None) -> LogEvidence:
    scope = f"in the last {h.span(ctx.settings.since)}"
    if target.log is None:
        return LogEvidence(scope=scope, read=False, error="no log source")
    async with ctx.limit:
        try:
            events = await read_events(
                target.log,
                since=ctx.settings.since,
                now=ctx.now,
                kube=ctx.kube,
                read_timeout=ctx.settings.kubernetes.request_timeout,
            )
        except LogReadError as err:
            logger.info("Log not read", extra={"target": target.key, "err": str(err)})
            return LogEvidence(scope=scope, read=False, error=str(err))
    return events_evidence(events, scope=scope, etcd_slow_applies=etcd_slow_applies)
