"""The HTTP application: /metrics, /healthz, /readyz and the page at /.

`make_app` only builds routes and middlewares; the composition root owns the runner, the
listening socket and its TLS context (`webconfig.server_ssl_context`). Further pages are added
through `routes` (e.g. `/api/targets`) and `index` (the handler of `/`).
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Iterable, Mapping

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client.registry import CollectorRegistry

from exporter import __version__
from exporter.exposition.handler import add_metrics_route
from exporter.state import Store
from exporter.web.auth import basic_auth_middleware

STORE = web.AppKey("store", Store)
REGISTRY = web.AppKey("registry", CollectorRegistry)


def make_app(
    *,
    store: Store,
    registry: CollectorRegistry,
    telemetry_path: str = "/metrics",
    basic_auth: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    routes: Iterable[web.AbstractRouteDef] = (),
    index: Handler | None = None,
) -> web.Application:
    """The aiohttp application.

    `basic_auth` maps users to bcrypt hashes (web config `basic_auth_users`) and, when given,
    guards every path, as exporter-toolkit does. `headers` are added to every response (web
    config `http_server_config.headers`). `index` serves `/` (default: a small landing page).
    """
    middlewares = [basic_auth_middleware(basic_auth)] if basic_auth else []
    app = web.Application(middlewares=middlewares)
    app[STORE] = store
    app[REGISTRY] = registry
    if headers:
        app.on_response_prepare.append(_add_headers(dict(headers)))
    add_metrics_route(app, telemetry_path, registry)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", index or landing_page(telemetry_path))
    app.add_routes(routes)
    return app


async def healthz(request: web.Request) -> web.Response:
    """200 while the process serves requests: liveness checks nothing outside the process."""
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    """200 once discovery has synced and a collection cycle finished, else 503."""
    if request.app[STORE].ready:
        return web.Response(text="ready\n")
    return web.Response(status=503, text="not ready\n")


def landing_page(telemetry_path: str) -> Handler:
    """A minimal page at `/` linking the endpoints."""
    path = html.escape(telemetry_path, quote=True)
    body = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>etcd-latency-exporter</title>'
        "</head><body><h1>etcd-latency-exporter</h1>"
        f"<p>Version {html.escape(__version__)}</p><ul>"
        f'<li><a href="{path}">{path}</a> metrics</li>'
        '<li><a href="/healthz">/healthz</a> liveness</li>'
        '<li><a href="/readyz">/readyz</a> readiness</li>'
        "</ul></body></html>\n"
    )

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="text/html")

    return index


def _add_headers(
    headers: dict[str, str],
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    async def add(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(headers)

    return add
