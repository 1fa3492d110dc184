"""Which container's log a pod log follower reads next, across restarts. Pure.

Each start of a pod's etcd container is a new container (a run) with its own log. The kubelet
keeps the log of the running container and of one dead one, the `lastState.terminated`
container, which `previous=true` reads (also while the container waits in CrashLoopBackOff).
The follower remembers the newest container it read from (`ours`), whether it read that one to
its end (`drained`: it had exited), and the restart count when it took it. From the pod's
container status, `next_step` says what to do so that the runs are read oldest first, each line
once:

- `previous`: read the dead container's log (its tail after the last line seen, or all of it
  when it is a run never read), then look again;
- `follow`: follow the running container;
- `wait`: nothing to read now (not started yet, just exited and not yet restarted, or the dead
  container was read already).

Runs that started and ended between two looks, except the last one, are gone before they can
be read: `lost` counts them (the restart count tells), and `tail_lost` says that the unread end
of `ours` went with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from exporter.kube.containers import ContainerStatus

Action = Literal["previous", "follow", "wait"]


@dataclass(frozen=True, slots=True)
class Step:
    """What to read next; `restarts` is the restart count the container read belongs to."""

    action: Action
    container_id: str = ""
    restarts: int = 0
    lost: int = 0
    tail_lost: bool = False
    why: str = ""


def next_step(
    *,
    ours: str | None,
    drained: bool,
    ours_restarts: int | None,
    status: ContainerStatus,
    previous_is_new: bool,
    ours_read_to_end: bool = False,
) -> Step:
    """The next step (see the module docstring). `previous_is_new` matters only before the
    first read (`ours` None): the dead container ended after following began, so its lines
    count. `ours_read_to_end`: `ours` was read to its end once, and is read again only to be
    sure (`drained` then follows when that adds nothing): if it is gone, nothing was lost."""
    running = status.container_id if status.running else ""
    dead = status.last_id
    # restart counts of the running run and of the dead one
    run_count = status.restart_count
    dead_count = run_count - 1 if running else run_count
    if ours is None:
        if dead and previous_is_new and dead != running:
            return Step("previous", dead, restarts=dead_count)
        if running:
            return Step("follow", running, restarts=run_count)
        return Step("wait", why=_why_waiting(status))
    if running == ours:
        return Step("follow", running, restarts=run_count)
    if dead == ours:
        if not drained:
            return Step("previous", dead, restarts=dead_count)
        if running:
            return Step("follow", running, restarts=run_count)
        return Step("wait", why=_why_waiting(status))
    # `ours` is no longer kept: every kept container is newer than it
    newer = [c for c in (dead, running) if c]
    if not newer:
        return Step("wait", why=_why_waiting(status))
    lost = max(run_count - (ours_restarts or 0) - len(newer), 0) if ours_restarts is not None else 0
    tail_lost = not drained and not ours_read_to_end
    if dead:
        return Step("previous", dead, restarts=dead_count, lost=lost, tail_lost=tail_lost)
    return Step("follow", running, restarts=run_count, lost=lost, tail_lost=tail_lost)


def _why_waiting(status: ContainerStatus) -> str:
    if status.waiting_reason:
        return status.waiting_reason
    if status.terminated_id:
        return status.terminated_reason or "terminated"
    return "not started"
