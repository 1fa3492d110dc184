"""Scraping one URL the way the scrape loop does, and client TLS settings from a test CA: for the
scrape tests against test servers (tests/component/test_scrape.py) and against real etcd
(tests/integration/test_scrape_etcd.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
import trustme

from exporter.model import ScrapeSpec, TLSConfig
from exporter.scrape import ScrapeError, scrape_once
from exporter.scrape.caches import ScrapeCaches

MAX = 1024 * 1024


async def scrape(session: aiohttp.ClientSession, url: str, **kwargs: object) -> object:
    spec = ScrapeSpec(url=url, tls=kwargs.pop("tls", None))  # type: ignore[arg-type]
    async with asyncio.timeout(10):
        return await scrape_once(
            session=session,
            spec=spec,
            timeout=float(kwargs.pop("timeout", 5.0)),  # type: ignore[arg-type]
            max_bytes=int(kwargs.pop("max_bytes", MAX)),  # type: ignore[call-overload]
            caches=ScrapeCaches(),
        )


async def scrape_error(session: aiohttp.ClientSession, url: str, **kwargs: object) -> ScrapeError:
    with pytest.raises(ScrapeError) as err:
        await scrape(session, url, **kwargs)
    return err.value


def client_tls(
    ca: trustme.CA, tmp_path: Path, *, files: bool, with_cert: bool = True, **more: object
) -> TLSConfig:
    client = ca.issue_cert("etcd-client")
    cert = "".join(blob.bytes().decode() for blob in client.cert_chain_pems)
    key = client.private_key_pem.bytes().decode()
    if not files:
        data = {"cert_data": cert, "key_data": key} if with_cert else {}
        return TLSConfig(ca_data=ca.cert_pem.bytes().decode(), **data, **more)  # type: ignore[arg-type]
    for name, text in (
        ("ca.crt", ca.cert_pem.bytes().decode()),
        ("tls.crt", cert),
        ("tls.key", key),
    ):
        (tmp_path / name).write_text(text)
    paths = {"cert_file": str(tmp_path / "tls.crt"), "key_file": str(tmp_path / "tls.key")}
    return TLSConfig(ca_file=str(tmp_path / "ca.crt"), **(paths if with_cert else {}), **more)  # type: ignore[arg-type]
