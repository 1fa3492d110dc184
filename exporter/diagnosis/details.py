"""The lines under a member's verdict — root cause, remedy, fix, volume — for `diagnose`'s table
and the status page. Pure.

Both surfaces show the same lines in the same order; each only renders them (plain text, HTML).
The one difference is where the disk's handle goes: `diagnose` has no other line for the
volume's names, so its `volume:` line ends with it; the status page names the PVC, PV and key on
a line of their own, and the handle goes there (`disk_in_volume=False`).
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.diagnosis.budget import budget_line
from exporter.diagnosis.report import EtcdReport
from exporter.model import Volume


@dataclass(frozen=True, slots=True)
class Detail:
    """One line: its label (`root cause`, `remedy`, `fix`, `volume`) and its text."""

    label: str
    text: str


def details(r: EtcdReport, *, disk_in_volume: bool = True) -> list[Detail]:
    """The lines under `r`'s verdict that have something to say, in order: the root cause
    discovery found, the verdict's remedy, the root cause's fix, the volume's size and budget."""
    cause = r.root_cause
    lines = []
    if cause is not None:
        lines.append(Detail("root cause", cause.reason))
    if r.verdict.remedy:
        lines.append(Detail("remedy", r.verdict.remedy))
    if cause is not None:
        lines.append(Detail("fix", cause.remedy))
    volume = volume_text(r.target.volume, disk=disk_in_volume)
    if volume:
        lines.append(Detail("volume", volume))
    return lines


def volume_text(volume: Volume, *, disk: bool = True) -> str:
    """The volume's size and documented write budget (`budget.budget_line`), and with `disk` the
    cloud's name of its disk: '10 GiB: ~15 write IOPS expected (…), below etcd's 50, disk
    projects/p/zones/z/disks/pvc-2'; "" when none is known."""
    parts = [budget_line(volume) or ""]
    if disk and volume.volume_handle:
        parts.append(f"disk {volume.volume_handle}")
    return ", ".join(p for p in parts if p)
