"""A container's status in a pod object, read defensively, and what it means for a member. Pure.

Discovery reads it to tell a member's state (`running`, `restarting`, `pending`); the pod log
follower reads it to know which container's log the API serves. The kubelet serves:

- `previous=true`: the container in `lastState.terminated` (its only kept dead container);
- otherwise: the running container; a `terminated` one; while `waiting` (CrashLoopBackOff) the
  one in `lastState.terminated`; nothing (400) for a container that never ran.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass

from exporter.kube.objects import JSON, as_dict, as_list
from exporter.model import MemberState


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    """One container's `containerStatuses` entry; empty values where a field is missing."""

    container_id: str = ""  # the newest container (also while waiting after a crash)
    running: bool = False
    ready: bool = False
    waiting_reason: str = ""  # state.waiting.reason: CrashLoopBackOff, ContainerCreating, …
    terminated_id: str = ""  # state.terminated.containerID: exited, not restarted yet
    terminated_reason: str = ""
    last_id: str = ""  # lastState.terminated.containerID: what `previous=true` reads
    last_reason: str = ""  # lastState.terminated.reason: Error, OOMKilled, Completed, …
    last_exit_code: int | None = None
    last_finished_at: float | None = None  # Unix time
    restart_count: int = 0

    @property
    def ever_ran(self) -> bool:
        """A container ran in this pod (now, or before a restart)."""
        return self.running or bool(self.terminated_id or self.last_id) or self.restart_count > 0

    @property
    def last_exit(self) -> str:
        """`Error, exit code 2`; "" when no container has exited."""
        if not self.last_id and not self.last_reason:
            return ""
        code = f"exit code {self.last_exit_code}" if self.last_exit_code is not None else ""
        return ", ".join(p for p in (self.last_reason, code) if p)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def rfc3339(text: object) -> float | None:
    """`2026-11-21T05:30:12Z` (metav1.Time, seconds) → Unix time; None when unreadable."""
    if not isinstance(text, str) or len(text) < 20:
        return None
    try:
        parsed = time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    return float(calendar.timegm(parsed))


def container_status(pod: JSON, name: str) -> ContainerStatus:
    """The status of container `name` in a pod object; an empty status when it has none."""
    found: JSON = {}
    statuses = as_dict(pod.get("status")).get("containerStatuses")
    for st in as_list(statuses):
        if isinstance(st, dict) and st.get("name") == name:
            found = st
    if not found:
        return ContainerStatus()
    state, last = (
        as_dict(found.get("state")),
        as_dict(as_dict(found.get("lastState")).get("terminated")),
    )
    waiting, terminated = as_dict(state.get("waiting")), as_dict(state.get("terminated"))
    return ContainerStatus(
        container_id=str(found.get("containerID") or ""),
        running="running" in state,
        ready=found.get("ready") is True,
        waiting_reason=str(waiting.get("reason") or ("waiting" if "waiting" in state else "")),
        terminated_id=str(terminated.get("containerID") or ""),
        terminated_reason=str(terminated.get("reason") or ""),
        last_id=str(last.get("containerID") or ""),
        last_reason=str(last.get("reason") or ""),
        last_exit_code=_int(last.get("exitCode")),
        last_finished_at=rfc3339(last.get("finishedAt")),
        restart_count=_int(found.get("restartCount")) or 0,
    )


def member_state(status: ContainerStatus) -> tuple[MemberState, str]:
    """The member's state and why it does not run ("" when it runs), from its etcd container.

    `restarting` when a container ran in this pod and none runs now (exited, in back-off, the pod
    failed or is being deleted); `pending` when none ran in this pod yet (a new or re-created pod
    that is scheduled, pulling, or waiting for its volume).
    """
    if status.running:
        return MemberState.RUNNING, ""
    reason = status.waiting_reason or status.terminated_reason
    if status.ever_ran:
        return MemberState.RESTARTING, reason or status.last_reason or "not running"
    return MemberState.PENDING, reason or "pod pending"
