"""Many etcd `/metrics` endpoints in one process: one listener per member's loopback pod IP.

A plain asyncio protocol instead of a web framework: the simulator answers about 130 requests a
second at 1,000 shoots (the exporter and Prometheus both scrape every member every 30 s), and it
shares two cores with what it measures, so each request costs a dictionary lookup and one write.
HTTP/1.1 keep-alive and pipelining are honoured; bodies are never compressed (Accept-Encoding is
ignored, which HTTP allows).
"""

from __future__ import annotations

import asyncio
import errno
from collections import Counter
from collections.abc import Sequence

from bench.fleetbench.payload import CONTENT_TYPE, Payloads
from bench.fleetbench.seed import Member

MAX_HEAD = 16 * 1024
NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n\r\nnot found\n"
)


class PortInUse(Exception):
    """The shared port is taken on one of the addresses; pick another."""


class MetricsProtocol(asyncio.Protocol):
    """One connection to one member's endpoint."""

    def __init__(self, *, payloads: Payloads, profile: str, path: bytes, served: Counter[str]):
        self._payloads = payloads
        self._profile = profile
        self._path = path
        self._served = served
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None:
            head, sep, rest = self._buffer.partition(b"\r\n\r\n")
            if not sep:
                if len(self._buffer) > MAX_HEAD:
                    self._transport.close()
                return
            self._buffer = rest
            self._answer(head)

    def _answer(self, head: bytes) -> None:
        assert self._transport is not None
        request_line, _, headers = head.partition(b"\r\n")
        parts = request_line.split(b" ")
        close = (
            len(parts) != 3 or parts[2] == b"HTTP/1.0" or b"connection: close" in headers.lower()
        )
        if len(parts) == 3 and parts[0] == b"GET" and parts[1].split(b"?")[0] == self._path:
            body = self._payloads.body(self._profile)
            self._transport.writelines([_ok_head(len(body), close=close), body])
            self._served[self._profile] += 1
        else:
            self._transport.write(NOT_FOUND)
        if close:
            self._transport.close()
            self._transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


def _ok_head(length: int, *, close: bool) -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {length}\r\n"
        f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
    ).encode()


async def serve(
    members: Sequence[Member], *, port: int, path: str = "/metrics", payloads: Payloads
) -> tuple[list[asyncio.Server], Counter[str]]:
    """Listen on `ip:port` of every member; raises PortInUse when an address has it taken."""
    loop = asyncio.get_running_loop()
    served: Counter[str] = Counter()
    servers: list[asyncio.Server] = []
    try:
        for member in members:
            profile = "slow" if member.slow else "fast"
            servers.append(
                await loop.create_server(
                    lambda p=profile: MetricsProtocol(
                        payloads=payloads, profile=p, path=path.encode(), served=served
                    ),
                    host=member.ip,
                    port=port,
                    reuse_address=True,
                    backlog=128,
                )
            )
    except OSError as err:
        for server in servers:
            server.close()
        if err.errno == errno.EADDRINUSE:
            raise PortInUse(f"{port} is taken on one of the fleet's addresses") from err
        raise
    return servers, served
