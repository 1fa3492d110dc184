"""etcd's defragmentation lines: when a defrag starts and when it ends. Pure.

A defrag rewrites the whole bbolt file while holding the backend's lock, so writes (and reads
waiting for them) stall for its duration even on a healthy disk; requests slow during one are
counted apart (exporter/state.py `DefragWindow`). One start and one end per defrag:

- 3.4 zap: `starting defragment` (v3rpc/maintenance.go) ... `defragmented` (backend, `took`);
- 3.5 and 3.6 zap: `starting defragment` ... `finished defragmenting directory` (backend, `took`);
- 3.3 and 3.4 capnslog: `starting to defragment the storage backend...` ... `finished
  defragmenting the storage backend`;
- a failure ends it too: zap `failed to defragment` (warn), capnslog `failed to defragment the
  storage backend (<error>)`.

The other lines of a defrag (`defragmenting`, the backend's start; `finished defragment`, the
maintenance server's end a few milliseconds after the backend's) are of no interest: counting
them as well would count each defrag twice. `took` is measured from the maintenance request's
start (3.4: 3.86 s from `starting defragment`, whose `defragmenting` came 1.95 s later).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from exporter.model import EventKind
from exporter.parser.events import Result, optional_duration, optional_text, simple


def _started(fields: Mapping[str, object], level: str, time: datetime | None) -> Result:
    return simple(EventKind.DEFRAG_STARTED, time)


def _finished(fields: Mapping[str, object], level: str, time: datetime | None) -> Result:
    return simple(
        EventKind.DEFRAG_FINISHED,
        time,
        took=optional_duration(fields.get("took")),
        error=optional_text(fields.get("error")),
    )


# zap messages → handlers (merged into exporter.parser.zap.HANDLERS)
ZAP_HANDLERS = {
    "starting defragment": _started,
    "defragmented": _finished,
    "finished defragmenting directory": _finished,
    "failed to defragment": _finished,
}

# capnslog messages (level N for start and end, E for a failure), matched whole
_TEXT_STARTED = re.compile(r"starting to defragment the storage backend\.\.\.", re.ASCII)
_TEXT_FINISHED = re.compile(
    r"finished defragmenting the storage backend|"
    r"failed to (?:defragment|deframent) the storage backend \((.*)\)",
    re.ASCII | re.DOTALL,
)
TEXT_STARTS = ("starting to defragment ", "finished defragmenting ", "failed to defrag")


def text_event(message: str, time: datetime | None) -> Result:
    """A capnslog defrag message → its event, None for any other message."""
    if _TEXT_STARTED.fullmatch(message):
        return simple(EventKind.DEFRAG_STARTED, time)
    m = _TEXT_FINISHED.fullmatch(message)
    if m is not None:
        return simple(EventKind.DEFRAG_FINISHED, time, error=m.group(1))
    return None
