"""The HTTP endpoint: /metrics negotiation, gzip, probes, basic auth, headers, TLS, web config."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import bcrypt
import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import generate_latest
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.exposition.handler import make_registry
from exporter.model import ScrapeSpec, Target
from exporter.state import Store
from exporter.web.app import make_app
from exporter.web.webconfig import ConfigError, load_web_config, server_ssl_context
from tests.support.web import app_for, store_with_targets

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
TEXT = "text/plain; version=0.0.4; charset=utf-8"
Client = Callable[..., Awaitable[TestClient]]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(user, password)}


async def get(
    client: TestClient, path: str, **kwargs: object
) -> tuple[aiohttp.ClientResponse, str]:
    async with asyncio.timeout(10):
        resp = await client.get(path, **kwargs)  # type: ignore[arg-type]
        return resp, await resp.text()


async def test_metrics_default_is_text_format(aiohttp_client: Client) -> None:
    store = store_with_targets()
    client = await aiohttp_client(app_for(store))
    resp, body = await get(client, "/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == TEXT
    names = {f.name for f in parse_text(body)}
    assert "etcd_latency_disk_wal_fsync_duration_seconds" in names
    assert body.count('etcd_latency_target_up{etcd="etcd-main"') == 3


async def test_openmetrics_negotiation(aiohttp_client: Client) -> None:
    client = await aiohttp_client(app_for(store_with_targets(), exporter_metrics=True))
    resp, body = await get(client, "/metrics", headers={"Accept": PROMETHEUS_ACCEPT})
    assert resp.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith("\n# EOF\n")
    assert body.count("# EOF") == 1
    names = {f.name for f in parse_om(body)}
    assert {"etcd_latency_target_up", "etcd_latency_exporter_build", "process_cpu_seconds"} <= names


async def test_gzip(aiohttp_client: Client) -> None:
    client = await aiohttp_client(app_for(store_with_targets()))
    plain_resp, plain = await get(client, "/metrics", headers={"Accept-Encoding": "identity"})
    resp, body = await get(client, "/metrics", headers={"Accept-Encoding": "gzip"})
    assert resp.headers["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in plain_resp.headers
    assert body == plain


@pytest.mark.parametrize(
    "accept",
    [
        "",
        PROMETHEUS_ACCEPT,
        "text/plain;version=1.0.0;escaping=allow-utf-8",
        "application/openmetrics-text;version=1.0.0;escaping=dots",
        "application/openmetrics-text;version=1.0.0;escaping=values",
    ],
)
async def test_same_bytes_as_prometheus_client_handler(aiohttp_client: Client, accept: str) -> None:
    store = store_with_targets()
    registry = make_registry(store, shard=0, total_shards=1, exporter_metrics=False)
    reference = web.Application()
    reference.router.add_get("/metrics", make_aiohttp_handler(registry))
    ours = await aiohttp_client(make_app(store=store, registry=registry))
    theirs = await aiohttp_client(reference)
    headers = {"Accept": accept} if accept else {}
    ours_resp, ours_body = await get(ours, "/metrics", headers=headers)
    theirs_resp, theirs_body = await get(theirs, "/metrics", headers=headers)
    assert ours_resp.headers["Content-Type"] == theirs_resp.headers["Content-Type"]
    assert ours_body == theirs_body


async def test_name_filter(aiohttp_client: Client) -> None:
    client = await aiohttp_client(app_for(store_with_targets()))
    _, body = await get(client, "/metrics?name[]=etcd_latency_target_up")
    assert {f.name for f in parse_text(body)} == {"etcd_latency_target_up"}


async def test_plain_registry_uses_prometheus_client_handler(aiohttp_client: Client) -> None:
    store = store_with_targets(1)
    registry = make_registry(store, shard=0, total_shards=1, exporter_metrics=False)
    from prometheus_client import CollectorRegistry

    plain = CollectorRegistry()
    plain.register(registry.collector)
    client = await aiohttp_client(make_app(store=store, registry=plain, telemetry_path="/m"))
    _, body = await get(client, "/m")
    assert body == generate_latest(plain).decode()


async def test_probes_and_landing_page(aiohttp_client: Client) -> None:
    store = Store()
    client = await aiohttp_client(app_for(store, telemetry_path="/custom"))
    assert (await get(client, "/healthz"))[0].status == 200
    assert (await get(client, "/readyz"))[0].status == 503
    store.discovery_synced = True
    assert (await get(client, "/readyz"))[0].status == 200  # nothing to collect yet
    store.upsert(Target(key="t", scrape=ScrapeSpec(url="http://x")))
    assert (await get(client, "/readyz"))[0].status == 503
    store.first_collection_done = True
    assert (await get(client, "/readyz"))[0].status == 200
    resp, body = await get(client, "/")
    assert resp.headers["Content-Type"].startswith("text/html")
    assert 'href="/custom"' in body
    assert (await get(client, "/metrics"))[0].status == 404


async def test_extra_routes_and_index(aiohttp_client: Client) -> None:
    async def targets(request: web.Request) -> web.Response:
        return web.json_response([])

    async def index(request: web.Request) -> web.Response:
        return web.Response(text="status page", content_type="text/html")

    app = app_for(Store(), routes=[web.get("/api/targets", targets)], index=index)
    client = await aiohttp_client(app)
    assert (await get(client, "/api/targets"))[1] == "[]"
    assert (await get(client, "/"))[1] == "status page"


# -- basic auth and headers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def users() -> dict[str, str]:
    return {"prometheus": bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()}


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz", "/"])
async def test_basic_auth_guards_every_path(
    aiohttp_client: Client, users: dict[str, str], path: str
) -> None:
    client = await aiohttp_client(app_for(store_with_targets(1), basic_auth=users))
    resp, _ = await get(client, path)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == "Basic"
    for login, password in (("prometheus", "wrong"), ("nobody", "s3cret"), ("", "")):
        resp, _ = await get(client, path, headers=basic(login, password))
        assert resp.status == 401, (login, password)
    resp, _ = await get(client, path, headers={"Authorization": "Basic !!!not-base64"})
    assert resp.status == 401
    resp, _ = await get(client, path, headers=basic("prometheus", "s3cret"))
    assert resp.status in (200, 503)  # /readyz: discovery has not synced


async def test_configured_headers_on_every_response(
    aiohttp_client: Client, users: dict[str, str]
) -> None:
    headers = {"X-Frame-Options": "deny", "Strict-Transport-Security": "max-age=31536000"}
    client = await aiohttp_client(app_for(Store(), basic_auth=users, headers=headers))
    for auth in ({}, basic("prometheus", "s3cret")):
        resp, _ = await get(client, "/healthz", headers=auth)
        assert resp.headers["X-Frame-Options"] == "deny"
        assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"


# -- web config and TLS ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def write_certs(ca: trustme.CA, directory: Path) -> None:
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(directory / "server.crt")
    server.private_key_pem.write_to_path(directory / "server.key")
    ca.cert_pem.write_to_path(directory / "ca.crt")


@pytest.fixture
async def serve() -> AsyncIterator[
    Callable[[web.Application, ssl.SSLContext | None], Awaitable[int]]
]:
    runners: list[web.AppRunner] = []

    async def start(app: web.Application, ctx: ssl.SSLContext | None) -> int:
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        assert site._server is not None
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    yield start
    for runner in runners:
        await runner.cleanup()


def client_context(ca: trustme.CA, client_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    if client_cert:
        ca.issue_cert("prometheus").configure_cert(ctx)
    return ctx


async def fetch(port: int, ctx: ssl.SSLContext, headers: dict[str, str] | None = None) -> int:
    url = f"https://127.0.0.1:{port}/metrics"
    async with asyncio.timeout(10), aiohttp.ClientSession() as session:
        resp = await session.get(url, ssl=ctx, headers=headers)
        await resp.read()
        return resp.status


async def test_tls_and_basic_auth_from_web_config(
    tmp_path: Path, ca: trustme.CA, users: dict[str, str], serve: Callable[..., Awaitable[int]]
) -> None:
    write_certs(ca, tmp_path)
    (tmp_path / "web.yml").write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"basic_auth_users:\n  prometheus: '{users['prometheus']}'\n"
        "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
    )
    config = load_web_config(str(tmp_path / "web.yml"))
    app = app_for(store_with_targets(1), basic_auth=config.basic_auth_users, headers=config.headers)
    port = await serve(app, server_ssl_context(config))
    assert await fetch(port, client_context(ca, False)) == 401
    assert await fetch(port, client_context(ca, False), basic("prometheus", "s3cret")) == 200
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await fetch(port, ssl.create_default_context())


async def test_mutual_tls_from_web_config(
    tmp_path: Path, ca: trustme.CA, serve: Callable[..., Awaitable[int]]
) -> None:
    write_certs(ca, tmp_path)
    (tmp_path / "web.yml").write_text(
        f"tls_server_config:\n  cert_file: {tmp_path / 'server.crt'}\n  key_file: server.key\n"
        "  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n"
        "  min_version: TLS12\n"
    )
    config = load_web_config(str(tmp_path / "web.yml"))
    port = await serve(app_for(store_with_targets(1)), server_ssl_context(config))
    assert await fetch(port, client_context(ca, True)) == 200
    with pytest.raises(aiohttp.ClientError):
        await fetch(port, client_context(ca, False))


def test_every_problem_is_listed(tmp_path: Path) -> None:
    (tmp_path / "web.yml").write_text(
        "tls_server_config:\n"
        "  cert_file: missing.crt\n"
        "  client_auth_type: Sometimes\n"
        "  min_version: TLS14\n"
        "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"
        "  colour: blue\n"
        "basic_auth_users:\n  alice: plaintext\n"
        "http_server_config:\n  headers:\n    X-Powered-By: me\n    X-Frame-Options: always\n"
        "rate_limit: {interval: 1s}\n"
        "extra: 1\n"
    )
    with pytest.raises(ConfigError) as err:
        load_web_config(str(tmp_path / "web.yml"))
    problems = "\n".join(err.value.problems)
    for fragment in (
        "missing one of key or key_file",
        "client_auth_type: invalid 'Sometimes'",
        "unknown TLS version 'TLS14'",
        "cipher_suites is not supported",
        "unknown field 'colour'",
        "basic_auth_users.alice: not a bcrypt hash",
        "header 'X-Powered-By' can not be configured",
        "X-Frame-Options: expected one of ['deny', 'sameorigin'], got 'always'",
        "rate_limit is not supported",
        "unknown field 'extra'",
    ):
        assert fragment in problems
    assert len(err.value.problems) == 10
    assert str(tmp_path / "web.yml") in str(err.value)


@pytest.mark.parametrize(
    ("tls", "problem"),
    [
        ("  client_ca_file: ca.crt\n", "client CAs are configured without a client_auth_type"),
        ("  client_auth_type: VerifyClientCertIfGiven\n", "needs client_ca_file"),
        ("  min_version: TLS13\n  max_version: TLS12\n", "min_version is above max_version"),
        ("  key_file: server.crt\n", "cannot load the certificates"),
    ],
)
def test_tls_consistency(tmp_path: Path, ca: trustme.CA, tls: str, problem: str) -> None:
    write_certs(ca, tmp_path)
    body = "tls_server_config:\n  cert_file: server.crt\n" + tls
    if "key_file" not in tls:
        body += "  key_file: server.key\n"
    (tmp_path / "web.yml").write_text(body)
    with pytest.raises(ConfigError, match=problem):
        load_web_config(str(tmp_path / "web.yml"))


def test_inline_pem_and_no_tls(tmp_path: Path, ca: trustme.CA) -> None:
    server = ca.issue_cert("127.0.0.1")
    cert = server.cert_chain_pems[0].bytes().decode()
    key = server.private_key_pem.bytes().decode()
    indent = "\n".join("    " + line for line in (cert + key).splitlines())
    (tmp_path / "inline.yml").write_text(
        f"tls_server_config:\n  cert: |\n{indent}\n  key: |\n{indent}\n"
    )
    config = load_web_config(str(tmp_path / "inline.yml"))
    assert isinstance(server_ssl_context(config), ssl.SSLContext)
    (tmp_path / "empty.yml").write_text("")
    assert server_ssl_context(load_web_config(str(tmp_path / "empty.yml"))) is None
    with pytest.raises(ConfigError, match="cannot read"):
        load_web_config(str(tmp_path / "absent.yml"))
    (tmp_path / "list.yml").write_text("- a\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_web_config(str(tmp_path / "list.yml"))
