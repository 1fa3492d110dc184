"""Processes of a benchmark run: start with output to files, wait for a ready line, stop by PID,
and read CPU time and memory from /proc."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import procs

REPO = Path(__file__).resolve().parents[2]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Proc:
    """A started process; stdout and stderr go to files in the run's directory."""

    name: str
    popen: subprocess.Popen[bytes]
    out: Path
    err: Path
    ready: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        """The process ID."""
        return self.popen.pid

    def alive(self) -> bool:
        """True while the process runs."""
        return self.popen.poll() is None

    def tail(self, chars: int = 2000) -> str:
        """The end of its stderr (for error messages)."""
        return self.err.read_text(errors="replace")[-chars:] if self.err.exists() else ""

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        return procs.stop(self.popen, timeout)


def start(name: str, argv: list[str], *, workdir: Path, tree: Path = REPO, nice: int = 0) -> Proc:
    """Start `argv` in source tree `tree` (its root on PYTHONPATH), output in
    `workdir/<name>.out|.err`, at scheduling priority `nice` (`nice` execs: the PID is argv's)."""
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if nice:
        argv = ["nice", "-n", str(nice), *argv]
    with out.open("wb") as o, err.open("wb") as e:
        popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e, env=env, cwd=tree
        )
    return Proc(name, popen, out, err)


def python(*args: str) -> list[str]:
    """argv of this interpreter running `args`."""
    return [sys.executable, *args]


async def wait_ready_line(proc: Proc, *, seconds: float) -> dict[str, Any]:
    """The first JSON line the process prints; RuntimeError when it exits first."""
    async with asyncio.timeout(seconds):
        while True:
            text = proc.out.read_text(errors="replace")
            if text.strip():
                proc.ready = json.loads(text.splitlines()[0])
                return proc.ready
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited {proc.popen.returncode}: {proc.tail()}")
            await asyncio.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (threads included)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


class CpuWindow:
    """CPU cores used by each of a set of processes between `begin` and `end`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._start: dict[str, float] = {}
        self._t0 = 0.0

    def begin(self) -> None:
        """Take the first reading."""
        self._t0 = _now()
        self._start = {name: cpu_seconds(pid) for name, pid in self._pids.items()}

    def end(self) -> tuple[float, dict[str, float]]:
        """(window seconds, average cores per process name)."""
        elapsed = _now() - self._t0
        cores = {
            name: (cpu_seconds(pid) - self._start[name]) / elapsed
            for name, pid in self._pids.items()
        }
        return elapsed, cores


def _now() -> float:
    return asyncio.get_running_loop().time()
