"""The C allocator keeps serving transient large blocks with mmap (glibc)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

from exporter.runtime import malloctune

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the dynamic mmap threshold is glibc's"
)

# In a fresh interpreter: free one 4 MiB block (which, untuned, raises glibc's mmap threshold to
# 4 MiB), then allocate 512 kB and report whether it was mmapped (mallinfo2's hblkhd grew).
PROBE = textwrap.dedent(
    """
    import ctypes, sys
    from exporter.runtime import malloctune

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    applied = malloctune.configure() if sys.argv[1] == "tuned" else False
    big = bytearray(4 << 20)
    del big
    before = libc.mallinfo2().hblkhd
    block = bytearray(512 << 10)
    mmapped = libc.mallinfo2().hblkhd - before >= 512 << 10
    print(applied, mmapped)
    """
)


def probe(mode: str, **env: str) -> tuple[bool, bool]:
    environ = {k: v for k, v in os.environ.items() if k != malloctune.ENVIRONMENT_VARIABLE}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    applied, mmapped = done.stdout.split()
    return applied == "True", mmapped == "True"


def test_untuned_glibc_moves_large_blocks_into_the_heap_after_one_free() -> None:
    # The behaviour the module exists for; if a glibc stops doing this, the module is moot.
    assert probe("untuned") == (False, False)


def test_tuned_large_blocks_stay_mmapped() -> None:
    assert probe("tuned") == (True, True)


def test_the_environment_variable_wins() -> None:
    applied, mmapped = probe("tuned", **{malloctune.ENVIRONMENT_VARIABLE: str(8 << 20)})
    assert (applied, mmapped) == (False, False)
