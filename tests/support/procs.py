"""Stopping a process started by a test, a benchmark or the demo: the one way, by its PID."""

from __future__ import annotations

import subprocess
from typing import Any


def stop(popen: subprocess.Popen[Any], timeout: float = 10.0) -> int | None:
    """SIGTERM, then SIGKILL after `timeout`; idempotent. Returns the exit code."""
    if popen.poll() is None:
        popen.terminate()  # SIGTERM
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(5.0)
    return popen.returncode
