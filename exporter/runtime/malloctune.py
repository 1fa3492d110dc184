"""C allocator settings that keep the daemon's resident memory from creeping up as it runs.

The daemon allocates and frees blocks of 128 kB and more many times a second, each living only
a moment: every socket read (asyncio reads up to 256 kB at a time, then shrinks the block), the
scraped payloads, the buffers of each `/metrics` render. glibc serves such blocks with their own
`mmap` and gives them back on `free`, but each such `free` also raises the size from which it
does so (the "dynamic mmap threshold", up to 32 MB). After the first few frees, these blocks are
carved out of the heap instead, between longer-lived objects, and the holes they leave are not
reused well enough: at 2,000 members the heap's free space grew by about 10 MB per scrape
interval (resident memory +0.5 MB/s, 445 MiB after 6.5 minutes), with the Python objects and
the heap's blocks in use steady. Neither a single allocator arena (`MALLOC_ARENA_MAX=1`), nor a
fixed threshold of 1 MiB, nor `malloc_trim` every 15 s stopped the growth.

Setting the threshold explicitly at glibc's starting value turns the dynamic adjustment off, so
transient large blocks keep going to `mmap` and back: the heap's free space stayed at 3–5 MB over
the same run. The price is a page fault for each 4 kB of them that is touched (about 7,000 a
second at 2,000 members, 0.01–0.02 cores). This is the setting `MALLOC_MMAP_THRESHOLD_` makes
from the environment; when that variable is set, it is left to win. Other C libraries (musl)
have no such adjustment and are left alone.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, now kept
ENVIRONMENT_VARIABLE = "MALLOC_MMAP_THRESHOLD_"


def configure(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes (call once, early); True if it was set."""
    if ENVIRONMENT_VARIABLE in os.environ or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols, glibc's among them
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
