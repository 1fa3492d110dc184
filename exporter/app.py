"""Composition root of `run`: validates the files, builds every stage, owns signals and shutdown.

The only place that wires discovery, log following, scraping and state together (Kubernetes
discovery included: its API client, its pod-log follower and the Store's error counters meet
here), and the owner of what the stages share — the scrape session and caches — so that no
module holds a cache or a singleton of its own.

Order: logging → every configuration file checked (all problems printed, exit 2, nothing opened)
→ asyncio.run: Store, registry, scrape session, discovery, supervisor, HTTP listener → run until
SIGTERM/SIGINT (SIGHUP re-reads the static targets file) → stop accepting, cancel the tasks
(bounded), close the HTTP runner and the scrape session. A crash of discovery or the supervisor
ends the process with code 1 after the same cleanup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiohttp import ClientSession, web

from exporter import __version__
from exporter.discovery.base import Discovery
from exporter.discovery.static import StaticDiscovery
from exporter.exposition.handler import make_registry
from exporter.model import (
    CommandLogSpec,
    FileLogSpec,
    KubernetesLogSpec,
    LogSpec,
    ScrapeSpec,
)
from exporter.preflight import Prepared, prepare_run, where
from exporter.runtime import gctune, malloctune
from exporter.runtime.logconfig import setup_logging
from exporter.scrape import make_session, scrape_loop
from exporter.scrape.caches import ScrapeCaches
from exporter.scrape.scraper import Scraper, make_scraper
from exporter.settings import RunSettings
from exporter.sources import command, file
from exporter.sources.sink import LineSink
from exporter.state import Limits, Store, TargetState
from exporter.supervisor import LogRunner, ScrapeRunner, Supervisor
from exporter.web.app import make_app
from exporter.web.status import status_routes

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

HTTP_SHUTDOWN_TIMEOUT = 1.0
TASK_STOP_TIMEOUT = 2.0
# Connections the Kubernetes API client may hold open: every followed log is one long-lived
# stream, plus a few watches. 2,000 members per replica fit with room to spare.
CONNECTION_POOL = 8192

Follow = Callable[[Any, LineSink], Awaitable[None]]


class ConfigProblem(Exception):
    """A configuration problem only found once the loop runs (e.g. no usable kubeconfig)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Parts:
    """What a discovery mode contributes: the discovery, extra log followers, hooks."""

    discovery: Discovery
    followers: Mapping[type, Follow] = field(default_factory=dict)
    reload: Callable[[], None] | None = None  # SIGHUP
    close: Callable[[], Awaitable[None]] | None = None  # after the tasks have stopped


def run_daemon(settings: RunSettings) -> int:
    """`etcd-latency-exporter run`: returns the process exit code."""
    setup_logging(level=settings.log.level, fmt=settings.log.format)
    malloctune.configure()  # transient large blocks stay out of the heap: RSS stays flat
    prepared = prepare_run(settings)
    if prepared.problems:
        print(prepared.report(), file=sys.stderr)
        return EXIT_CONFIG
    return asyncio.run(serve(settings, prepared))


async def serve(settings: RunSettings, prepared: Prepared) -> int:
    """The daemon's lifetime on the running loop; returns the exit code."""
    log.info(
        "Starting",
        extra={"version": __version__, "discovery": settings.discovery, "shard": settings.shard},
    )
    store = Store(
        limits=Limits(
            max_resources_per_target=settings.limits.max_resources_per_target,
            max_series_per_target=settings.limits.max_series_per_target,
        )
    )
    async with contextlib.AsyncExitStack() as stack:
        session = make_session(concurrency=settings.scrape.concurrency)
        stack.push_async_callback(session.close)
        scraper = make_run_scraper(settings, session)
        stack.push_async_callback(scraper.close)
        try:
            parts = await make_discovery(settings, prepared, store)
        except ConfigProblem as err:
            prepared.add(err.where, err.problem)
            print(prepared.report(), file=sys.stderr)
            return EXIT_CONFIG
        if parts.close is not None:
            stack.push_async_callback(parts.close)
        supervisor = Supervisor(
            store=store,
            scrape=scrape_runner(settings, scraper, store),
            follow=log_runner(settings, parts.followers),
            first_collection_after=settings.scrape.interval,
            stop_timeout=TASK_STOP_TIMEOUT,
        )
        runner = web.AppRunner(
            _web_app(settings, prepared, store),
            handle_signals=False,
            shutdown_timeout=HTTP_SHUTDOWN_TIMEOUT,
            access_log=None,
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        stack.callback(gctune.restore, gctune.configure())  # all built so far lives on
        if not await _listen(runner, settings.web.listen_address, prepared):
            return EXIT_FAILED
        return await _run(parts, supervisor, runner)
    return EXIT_FAILED  # pragma: no cover - the stack does not swallow exceptions


def _web_app(settings: RunSettings, prepared: Prepared, store: Store) -> web.Application:
    registry = make_registry(
        store,
        shard=settings.shard,
        total_shards=settings.total_shards,
        exporter_metrics=not settings.web.disable_exporter_metrics,
    )
    index, routes = status_routes(store, telemetry_path=settings.web.telemetry_path)
    return make_app(
        store=store,
        registry=registry,
        telemetry_path=settings.web.telemetry_path,
        basic_auth=prepared.basic_auth,
        headers=prepared.headers,
        routes=routes,
        index=index,
    )


async def make_discovery(settings: RunSettings, prepared: Prepared, store: Store) -> Parts:
    """The discovery of `--discovery` (Kubernetes' modules imported only when chosen)."""
    if settings.discovery == "kubernetes":
        return await _kubernetes(settings, prepared, store)
    assert settings.static.targets_file is not None  # checked by the settings
    static = StaticDiscovery(
        settings.static.targets_file,
        shard=settings.shard,
        total_shards=settings.total_shards,
        overrides=prepared.overrides,
    )
    return Parts(discovery=static, reload=static.reload)


async def _kubernetes(settings: RunSettings, prepared: Prepared, store: Store) -> Parts:
    """API client, discovery and pod-log follower; API and Secret errors are counted into the
    Store. ConfigProblem when no Kubernetes configuration is usable."""
    from exporter.discovery.kubernetes import KubernetesDiscovery
    from exporter.kube.client import KubeConfigError, connect
    from exporter.sources.kubelog import KubeLogFollower

    try:
        api = await connect(
            settings.kubernetes, errors=store.kubernetes_api_errors, pool_size=CONNECTION_POOL
        )
    except KubeConfigError as err:
        raise ConfigProblem(where("kubernetes", "kubeconfig"), str(err)) from err
    follower = KubeLogFollower(
        api, inactivity_timeout=settings.logs.inactivity_timeout, since=settings.logs.since
    )
    discovery = KubernetesDiscovery.configured(
        api,
        settings,
        overrides=prepared.overrides,
        tls_secret_errors=store.tls_secret_errors,
        on_container_change=follower.nudge,
    )
    return Parts(discovery=discovery, followers={KubernetesLogSpec: follower}, close=api.close)


def make_run_scraper(settings: RunSettings, session: ClientSession) -> Scraper:
    """The daemon's scraper: the shared session and the process's scrape caches; with
    --scrape.source=shoot-prometheus, one request per Prometheus per scrape interval."""
    sc = settings.scrape
    return make_scraper(
        session,
        source=sc.source,
        jobs=sc.shoot_prometheus_jobs,
        timeout=min(sc.timeout, sc.interval),
        max_bytes=sc.max_bytes,
        # a little less than the interval: each member's loop scrapes once per interval, at its
        # own phase, and the first of a namespace's members to come asks again
        max_age=0.9 * sc.interval,
        caches=ScrapeCaches(),
    )


def scrape_runner(settings: RunSettings, scraper: Scraper, store: Store) -> ScrapeRunner:
    """Binds the scrape interval and the process's scraper: (state, spec) → scrape loop, each
    target scraped at its place in the store's order (`scrape.loop`: a request then finds the
    changed text of members in few gzip blocks)."""

    async def run(state: TargetState, spec: ScrapeSpec) -> None:
        key = state.target.key
        await scrape_loop(
            scraper=scraper,
            state=state,
            spec=spec,
            interval=settings.scrape.interval,
            phase=lambda: store.phase(key),
        )

    return run


def log_runner(settings: RunSettings, extra: Mapping[type, Follow]) -> LogRunner:
    """(state, spec) → the follower for the spec's type, feeding a LineSink of that state."""
    followers: dict[type, Follow] = {
        FileLogSpec: partial(file.follow, from_start=settings.logs.from_start),
        CommandLogSpec: command.follow,
        **extra,
    }

    async def run(state: TargetState, spec: LogSpec) -> None:
        follow = followers.get(type(spec))
        if follow is None:
            log.error("No log follower for this source", extra={"target": state.target.key})
            await asyncio.Event().wait()
            return
        sink = LineSink(state, max_line_bytes=settings.logs.max_line_bytes)
        try:
            await follow(spec, sink)
        finally:
            sink.connected(False)

    return run


def _host_port(address: str) -> tuple[str | None, int]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    return (host or None), int(port)


async def _listen(runner: web.AppRunner, address: str, prepared: Prepared) -> bool:
    host, port = _host_port(address)
    site = web.TCPSite(runner, host, port, ssl_context=prepared.ssl_context, reuse_address=True)
    try:
        await site.start()
    except OSError as err:
        log.error("Cannot listen", extra={"address": address, "err": str(err)})
        return False
    bound = [f"{a[0]}:{a[1]}" for a in runner.addresses if isinstance(a, tuple)]
    log.info("Listening", extra={"addresses": bound, "tls": prepared.ssl_context is not None})
    return True


async def _run(parts: Parts, supervisor: Supervisor, runner: web.AppRunner) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handlers = {signal.SIGTERM: stop.set, signal.SIGINT: stop.set}
    if parts.reload is not None:
        handlers[signal.SIGHUP] = parts.reload
    for sig, handler in handlers.items():
        loop.add_signal_handler(sig, handler)
    try:
        return await _until_stopped(parts, supervisor, runner, stop)
    finally:
        for sig in handlers:
            loop.remove_signal_handler(sig)


async def _until_stopped(
    parts: Parts, supervisor: Supervisor, runner: web.AppRunner, stop: asyncio.Event
) -> int:
    code = EXIT_OK
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(supervisor.run(), name="supervisor"),
                tg.create_task(_discover(parts, supervisor), name="discovery"),
                tg.create_task(gctune.collect_periodically(), name="gc"),
            ]
            await stop.wait()
            log.info("Stopping")
            for site in list(runner.sites):
                await site.stop()
            for task in tasks:
                task.cancel()
    except* Exception as group:
        for err in group.exceptions:
            log.error("Daemon failed", exc_info=err)
        code = EXIT_FAILED
    log.info("Stopped", extra={"code": code})
    return code


async def _discover(parts: Parts, supervisor: Supervisor) -> None:
    await parts.discovery.run(supervisor.publish)
    raise RuntimeError("discovery ended")
