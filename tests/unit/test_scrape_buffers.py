"""Response bodies are read into reused buffers, in place."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import pytest

from exporter.scrape.buffers import KEEP_BYTES_MAX, KEEP_MAX, BodyBuffers, read_into
from exporter.scrape.errors import ScrapeError


async def chunks(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def pieces(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


@pytest.mark.parametrize("size", [1, 7, 4096, 65536])
async def test_a_body_overwrites_the_buffer_in_place(size: int) -> None:
    first = bytes(range(256)) * 800  # 204,800 bytes
    second = b"x" * 190_000  # shorter, by less than half
    buf = bytearray()
    await read_into(buf, chunks(pieces(first, 65536)), max_bytes=1 << 20)
    assert buf == first
    allocated = buf.__alloc__()
    await read_into(buf, chunks(pieces(second, size)), max_bytes=1 << 20)
    assert buf == second
    assert buf.__alloc__() == allocated  # no new block
    await read_into(buf, chunks(pieces(first, size)), max_bytes=1 << 20)
    assert buf == first


async def test_longer_and_empty_bodies() -> None:
    buf = bytearray(b"old")
    await read_into(buf, chunks([b"a" * 10, b"b" * 20]), max_bytes=100)
    assert buf == b"a" * 10 + b"b" * 20
    await read_into(buf, chunks([]), max_bytes=100)
    assert buf == b""


async def test_too_large_as_soon_as_it_passes_the_cap() -> None:
    read: list[int] = []

    async def counted() -> AsyncIterator[bytes]:
        for i in range(100):
            read.append(i)
            yield b"z" * 10

    with pytest.raises(ScrapeError) as err:
        await read_into(bytearray(), counted(), max_bytes=35)
    assert err.value.reason == "too_large"
    assert len(read) == 4


def test_one_buffer_serves_scrapes_one_after_another() -> None:
    buffers = BodyBuffers()
    seen = []
    for _ in range(5):
        with buffers.borrowed() as buf:
            buf[:] = b"payload"
            seen.append(buf)
    assert buffers.created == 1
    assert all(buf is seen[0] for buf in seen)


def test_scrapes_in_flight_get_buffers_of_their_own() -> None:
    buffers = BodyBuffers()
    with buffers.borrowed() as a, buffers.borrowed() as b:
        assert a is not b
    assert (buffers.created, buffers.free) == (2, 2)


def test_what_is_kept_is_bounded() -> None:
    buffers = BodyBuffers()
    held = [buffers.borrowed() for _ in range(KEEP_MAX + 5)]
    for cm in held:
        cm.__enter__()
    for cm in held:
        cm.__exit__(None, None, None)
    assert buffers.free == KEEP_MAX
    with buffers.borrowed() as big:
        big.extend(bytes(KEEP_BYTES_MAX + 1))
    assert all(len(buf) <= KEEP_BYTES_MAX for buf in buffers._free)


def test_a_buffer_is_given_back_when_the_scrape_fails() -> None:
    buffers = BodyBuffers()
    with pytest.raises(ScrapeError), buffers.borrowed():
        raise ScrapeError("timeout")
    assert (buffers.created, buffers.free) == (1, 1)
