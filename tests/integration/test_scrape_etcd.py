"""The scraper against real etcd 3.4 and 3.5 served as Gardener serves it: /metrics on the
client port, over https, with client certificates required."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import trustme

from exporter.metrics import RELAYED, RELAYED_WITH_VOLUME
from exporter.scrape import ScrapeError, make_session
from tests.support.etcd import StartEtcd, free_port
from tests.support.scrape import client_tls, scrape, scrape_error


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with make_session(concurrency=8) as s:
        yield s


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.mark.parametrize("version", ["3.4", "3.5"])
async def test_real_etcd_behind_mtls(
    etcd_factory: StartEtcd,
    session: aiohttp.ClientSession,
    ca: trustme.CA,
    tmp_path: Path,
    version: str,
) -> None:
    """etcd as Gardener runs it: /metrics on the client port, https, client certificates."""
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(tmp_path / "server.crt")
    server.private_key_pem.write_to_path(tmp_path / "server.key")
    ca.cert_pem.write_to_path(tmp_path / "ca.crt")
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    etcd_factory(
        version=version,
        listen_metrics=False,
        wait=None,
        extra_args=[
            f"--listen-client-urls={url}",
            f"--advertise-client-urls={url}",
            f"--cert-file={tmp_path / 'server.crt'}",
            f"--key-file={tmp_path / 'server.key'}",
            f"--trusted-ca-file={tmp_path / 'ca.crt'}",
            "--client-cert-auth",
        ],
    )
    tls = client_tls(ca, tmp_path, files=False)
    families: object = None
    async with asyncio.timeout(30):
        while families is None:
            try:
                families = await scrape(session, f"{url}/metrics", tls=tls, timeout=2.0)
            except ScrapeError:
                await asyncio.sleep(0.2)  # still starting
    names = {f.name for f in families}  # type: ignore[attr-defined]
    assert "etcd_disk_wal_fsync_duration_seconds" in names
    # every relayed family but the peer round trip (one member) and those of later versions
    assert names == set(RELAYED_WITH_VOLUME + RELAYED) - {
        "etcd_network_peer_round_trip_time_seconds",
        "etcd_disk_wal_write_duration_seconds",  # 3.5.x after 3.5.1, and 3.6
        "etcd_server_range_duration_seconds",  # 3.6
        *(["etcd_server_apply_duration_seconds"] if version == "3.4" else []),  # 3.5+
    }
    no_cert = client_tls(ca, tmp_path, files=False, with_cert=False)
    assert (await scrape_error(session, f"{url}/metrics", tls=no_cert)).reason == "tls"
    assert (await scrape_error(session, f"http://127.0.0.1:{port}/metrics")).reason in (
        "http_status",
        "connect",
    )
