"""Response bodies read into reused buffers instead of a new one per scrape.

An etcd 3.5 payload is about 160 kB; 2,000 members scraped every 30 s would allocate and free 67
of them a second (and as many decoded copies). With glibc's mmap threshold fixed
(`exporter/runtime/malloctune.py`), each fresh block of that size is a new `mmap` that costs a
page fault for every 4 kB of it. The few scrapes in flight at once instead take a buffer from
the process's free list (`caches.ScrapeCaches.buffers`) and give it back, and the
layout-reusing extractor reads the bytes without decoding them: after the first scrapes, a body
is read with no allocation of its size at all (the daemon's page faults at 2,000 members:
8,200 → 6,900 a second).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, Iterator

from exporter.scrape.errors import ScrapeError

KEEP_MAX = 32  # buffers kept between scrapes (scrapes in flight at once are usually far fewer)
KEEP_BYTES_MAX = 4 << 20  # a buffer grown past this by an outsized payload is not kept


class BodyBuffers:
    """A free list of bytearrays for response bodies."""

    __slots__ = ("_free", "created")

    def __init__(self) -> None:
        self._free: list[bytearray] = []
        self.created = 0

    @contextlib.contextmanager
    def borrowed(self) -> Iterator[bytearray]:
        """A buffer for the duration of the block; nothing may keep a reference to it after."""
        if self._free:
            buf = self._free.pop()
        else:
            buf = bytearray()
            self.created += 1
        try:
            yield buf
        finally:
            if len(self._free) < KEEP_MAX and len(buf) <= KEEP_BYTES_MAX:
                self._free.append(buf)

    @property
    def free(self) -> int:
        return len(self._free)


async def read_into(buf: bytearray, chunks: AsyncIterable[bytes], max_bytes: int) -> None:
    """Make `buf` hold the concatenated `chunks`, overwriting what it held in place (it keeps
    its allocation unless the body is longer, or less than half as long); ScrapeError("too_large")
    as soon as the body passes `max_bytes`."""
    n = 0
    async for chunk in chunks:
        end = n + len(chunk)
        if end > max_bytes:
            raise ScrapeError("too_large", f"body larger than {max_bytes} bytes")
        buf[n:end] = chunk
        n = end
    del buf[n:]
