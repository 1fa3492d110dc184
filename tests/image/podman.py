"""Runs the built image with podman, the way a hardened Kubernetes pod runs it.

`make image` builds `localhost/etcd-latency-exporter:<version>` (`IMAGE_UNDER_TEST` names another
one). Every container here runs as the numeric user 65532 with every capability dropped and
no-new-privileges; `read_only=True` adds a read-only root filesystem whose only writable place
is a tmpfs at /tmp (podman's default tmpfs at /run and /var/tmp is turned off), the way the
chart's readOnlyRootFilesystem with an emptyDir at /tmp leaves it. Every call is bounded in time
and every container started is removed by its name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter import __version__

DEFAULT_IMAGE = f"localhost/etcd-latency-exporter:{__version__}"
USER = "65532"
TIMEOUT = 120.0

HARDENED: tuple[str, ...] = (
    f"--user={USER}",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    # podman would add the user to /etc/passwd and /etc/group otherwise: a write of its own
    "--passwd=false",
)
READ_ONLY: tuple[str, ...] = (
    "--read-only",
    "--read-only-tmpfs=false",
    "--tmpfs=/tmp:rw,size=16m,mode=1777",
)


def image_name() -> str:
    """The image under test."""
    return os.environ.get("IMAGE_UNDER_TEST") or DEFAULT_IMAGE


def in_ci() -> bool:
    """True when CI=true: there a missing podman or image is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def find_podman() -> str | None:
    """The podman binary on PATH."""
    return shutil.which("podman")


@dataclass(frozen=True)
class Mount:
    """A host file or directory mounted read-only at `target`."""

    source: Path
    target: str

    def arg(self) -> str:
        return f"--volume={self.source}:{self.target}:ro"


@dataclass(frozen=True)
class Podman:
    """A podman binary and the image to run."""

    binary: str
    image: str

    def call(
        self, args: Sequence[str], *, timeout: float = TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """One podman command; never raises on a non-zero exit."""
        return subprocess.run(
            [self.binary, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def image_exists(self) -> bool:
        return self.call(["image", "exists", self.image], timeout=30).returncode == 0

    def inspect_image(self) -> dict[str, Any]:
        """`podman image inspect` of the image (its Config: User, Env, Entrypoint, Labels…)."""
        proc = self.call(["image", "inspect", self.image], timeout=30)
        assert proc.returncode == 0, proc.stderr
        result: dict[str, Any] = json.loads(proc.stdout)[0]
        return result

    def run(
        self,
        args: Sequence[str],
        *,
        mounts: Sequence[Mount] = (),
        entrypoint: str | None = None,
        read_only: bool = True,
        network: str = "none",
        timeout: float = TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """`podman run --rm` of the image, hardened, in the foreground."""
        return self.call(
            [
                "run",
                "--rm",
                *self._options(mounts, entrypoint, read_only, network),
                self.image,
                *args,
            ],
            timeout=timeout,
        )

    @contextlib.contextmanager
    def started(
        self,
        args: Sequence[str],
        *,
        mounts: Sequence[Mount] = (),
        read_only: bool = True,
        network: str = "host",
    ) -> Iterator[Container]:
        """A detached, hardened container; removed (killed if need be) on exit."""
        name = f"etcd-latency-exporter-test-{uuid.uuid4().hex[:12]}"
        options = self._options(mounts, None, read_only, network)
        proc = self.call(["run", "--detach", f"--name={name}", *options, self.image, *args])
        assert proc.returncode == 0, f"podman run failed: {proc.stderr}"
        container = Container(self, name)
        try:
            yield container
        finally:
            self.call(["rm", "--force", "--time=0", name], timeout=60)

    def _options(
        self, mounts: Sequence[Mount], entrypoint: str | None, read_only: bool, network: str
    ) -> list[str]:
        options = [*HARDENED, f"--network={network}", *(m.arg() for m in mounts)]
        if read_only:
            options += READ_ONLY
        if entrypoint is not None:
            options.append(f"--entrypoint={entrypoint}")
        return options


@dataclass
class Container:
    """A running container of `Podman.started`."""

    podman: Podman
    name: str
    stop_seconds: float | None = field(default=None)

    def state(self) -> dict[str, Any]:
        proc = self.podman.call(["container", "inspect", self.name], timeout=30)
        assert proc.returncode == 0, proc.stderr
        state: dict[str, Any] = json.loads(proc.stdout)[0]["State"]
        return state

    def running(self) -> bool:
        return bool(self.state().get("Running"))

    def logs(self) -> str:
        proc = self.podman.call(["logs", self.name], timeout=30)
        return proc.stdout + proc.stderr

    def stop(self, *, grace: int = 10) -> int:
        """`podman stop`: SIGTERM, SIGKILL after `grace` s. Returns the exit code and records
        how long the stop took in `stop_seconds`."""
        started = time.monotonic()
        proc = self.podman.call(["stop", f"--time={grace}", self.name], timeout=grace + 30)
        self.stop_seconds = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr
        return int(self.state()["ExitCode"])

    def diff(self) -> list[tuple[str, str]]:
        """`podman diff`: (kind A/C/D, path) of every change to the root filesystem."""
        proc = self.podman.call(["diff", "--format=json", self.name], timeout=30)
        assert proc.returncode == 0, proc.stderr
        doc: dict[str, list[str] | None] = json.loads(proc.stdout or "{}")
        kinds = {"added": "A", "changed": "C", "deleted": "D"}
        return sorted(
            (kinds[key], path) for key, paths in doc.items() if key in kinds for path in paths or ()
        )
