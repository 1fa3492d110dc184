"""The log streams' read size: a connection reads at most `LOG_READ_BYTES` at a time, over plain
TCP and over TLS, and still delivers every byte; `open_log` sets it on the stream it opens."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from exporter.kube.client import LOG_READ_BYTES, read_in_blocks_of
from tests.support.kube.client import kube_api
from tests.support.kube.fixtures import kube_fixture  # noqa: F401
from tests.support.kube.scenario import add_classes, add_member
from tests.support.kube.server import KubeEmulator
from tests.support.pki import issue_server, make_ca

pytestmark = pytest.mark.timeout(60)

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, sent in one write


class Collect(asyncio.Protocol):
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.done = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)

    def eof_received(self) -> bool:
        self.done.set_result(None)
        return False


async def _send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)
    writer.write(PAYLOAD)
    await writer.drain()
    writer.close()


async def _received(
    server_tls: ssl.SSLContext | None, client_tls: ssl.SSLContext | None
) -> Collect:
    server = await asyncio.start_server(_send, "127.0.0.1", 0, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]
    try:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(
            Collect,
            "127.0.0.1",
            port,
            ssl=client_tls,
            server_hostname="etcd-main-local" if client_tls else None,
        )
        read_in_blocks_of(transport, LOG_READ_BYTES)
        # TLS: the layer that reads (the socket under it reads into one kept buffer)
        reader = getattr(transport, "_ssl_protocol", transport)
        assert reader.max_size == LOG_READ_BYTES
        transport.write(b"go")
        await asyncio.wait_for(protocol.done, 20)
        transport.close()
        return protocol
    finally:
        server.close()


async def test_plain_reads_are_at_most_the_size_and_lose_nothing() -> None:
    got = await _received(None, None)
    assert b"".join(got.chunks) == PAYLOAD
    assert max(map(len, got.chunks)) <= LOG_READ_BYTES
    assert len(got.chunks) >= len(PAYLOAD) // LOG_READ_BYTES


async def test_tls_reads_are_at_most_the_size_and_lose_nothing(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    pair = issue_server(ca, tmp_path / "server", namespace="shoot--p1--a")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(pair.cert, pair.key)
    client = ssl.create_default_context(cafile=str(ca.cert))
    got = await _received(server, client)
    assert b"".join(got.chunks) == PAYLOAD
    # the TLS layer hands on what it decrypted in one go, at most its read size per read
    assert len(got.chunks) >= len(PAYLOAD) // (4 * LOG_READ_BYTES)


def test_a_transport_without_a_read_size_is_left_alone() -> None:
    read_in_blocks_of(None, LOG_READ_BYTES)

    class Other(asyncio.BaseTransport):
        pass

    other = Other()
    read_in_blocks_of(other, LOG_READ_BYTES)
    assert not hasattr(other, "max_size")


async def test_open_log_reads_its_stream_in_small_blocks(kube: KubeEmulator) -> None:
    add_classes(kube)
    add_member(kube, namespace="shoot--p1--a", etcd="etcd-main", pod_ip="127.0.0.2")
    async with kube_api(kube) as api:
        resp = await api.open_log(
            namespace="shoot--p1--a",
            pod="etcd-main-0",
            container="etcd",
            since_seconds=None,
            follow=True,  # open until released
            timeout=10.0,
        )
        try:
            assert resp.connection is not None
            assert resp.connection.transport.max_size == LOG_READ_BYTES  # type: ignore[union-attr]
        finally:
            resp.release()
