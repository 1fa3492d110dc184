"""diagnose's table and JSON rendering, and the JSON Schema in docs/ (pure)."""

from __future__ import annotations

import asyncio
import copy
import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from exporter.commands.diagnose.progress import Progress
from exporter.commands.diagnose.table import COLUMNS, clean, render_table
from exporter.diagnosis.histogram import Latency
from exporter.diagnosis.report import (
    EtcdReport,
    exit_code,
    report_json,
    sort_reports,
    with_class_medians,
)
from exporter.diagnosis.verdict import DiskEvidence, LogEvidence, VerdictCode, judge
from exporter.model import Identity, Target, Volume

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "diagnose.schema.json"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def schema() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return doc


def validate(doc: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(doc)


def report(
    pod: str,
    *,
    volume: Volume,
    disk: DiskEvidence,
    logs: LogEvidence | None = None,
    shoot: str = "dev",
) -> EtcdReport:
    target = Target(
        key=f"shoot--p--{shoot}/{pod}",
        identity=Identity(
            namespace=f"shoot--p--{shoot}", project="p", shoot=shoot, etcd="etcd-main", pod=pod
        ),
        volume=volume,
    )
    logs = logs or LogEvidence(scope="in the last 1h")
    return EtcdReport(target, disk, logs, judge(volume=volume, disk=disk, logs=logs))


FAST = Latency(p99=0.0021, count=812, share_above=0.0)
SLOW = Latency(p99=0.412, count=1234, share_above=0.62)
SSD = Volume(pvc="main-etcd-etcd-main-0", pv="pv-1", storage_class="fast", disk_class="ssd",
             expected_storage_class="fast")  # fmt: skip
HDD = Volume(pvc="main-etcd-etcd-main-0", pv="pv-2", storage_class="standard", disk_class="hdd",
             provisioner="pd.csi.storage.gke.io", disk_type="pd-standard",
             expected_storage_class="fast", expected_from="etcd",
             volume_handle="projects/p/zones/z/disks/pvc-2", capacity_bytes=10 * 1024**3,
             expected_write_iops=15.0,
             iops_basis="GCE pd-standard: 1.5 write IOPS per GiB")  # fmt: skip
NOISY = LogEvidence(
    scope="in the last 1h", slow_requests=7, top_operation="range", top_resource="pods", top_count=5
)


def sample_reports() -> list[EtcdReport]:
    fine = DiskEvidence(True, window=30, fsync=FAST, commit=FAST)
    slow = DiskEvidence(True, window=30, fsync=SLOW, commit=FAST)
    return [
        report("etcd-main-0", volume=SSD, disk=fine),
        report("etcd-main-1", volume=HDD, disk=slow, logs=NOISY, shoot="prod"),
        report("etcd-main-2", volume=Volume(), disk=DiskEvidence(False, error="connect"),
               logs=LogEvidence(scope="in the last 1h", read=False, error="no log source")),
        report("etcd-main-3", volume=SSD, disk=DiskEvidence(True, window=30,
               fsync=Latency(None, 0, None), commit=None), logs=NOISY),
    ]  # fmt: skip


def test_table_lists_every_member_worst_first_with_reasons() -> None:
    reports = sort_reports(sample_reports())
    text = render_table(reports, window=30, since=3600)
    lines = text.splitlines()
    assert lines[0].split("  ")[0] == "SHOOT"
    for column in COLUMNS:
        assert column in lines[0]
    verdicts = [line.split()[-1] for line in lines[1:5]]
    assert verdicts == ["slow-disk", "slow-requests-not-disk", "unreachable", "ok"]
    row = lines[1].split()
    assert row[:10] == ["prod", "etcd-main", "etcd-main-1", "standard", "hdd", "fast", "412ms",
                        "2.1ms", "—", "7"]  # fmt: skip
    assert "range/pods" in lines[1]
    assert "unreachable  unreachable" in lines[3]
    assert "shoot--p--prod/etcd-main-1: slow-disk: WAL fsync p99 412ms > 10ms over 30s" in text
    assert "  remedy: move the member to an SSD StorageClass" in text
    assert (
        "  volume: 10 GiB: ~15 write IOPS expected (GCE pd-standard: 1.5 write IOPS per GiB), "
        "below etcd's 50, disk projects/p/zones/z/disks/pvc-2\n"
    ) in text
    assert text.count("  volume: ") == 1  # the others know neither size nor disk
    assert lines[-1] == (
        "4 etcd members: 1 slow-disk, 1 slow-requests-not-disk, 1 unreachable, 1 ok "
        "(window 30s, logs of the last 1h)"
    )


def test_columns_line_up() -> None:
    lines = render_table(sort_reports(sample_reports()), window=30, since=3600).splitlines()
    start = lines[0].index("VERDICT")
    for line in lines[1:5]:
        assert line[start - 2 : start] == "  "
        assert line[start] != " "


def test_cluster_values_cannot_drive_the_terminal() -> None:
    bad = report("etcd-\x1b[2J\x07evil", volume=SSD, disk=DiskEvidence(True, window=3))
    text = render_table([bad], window=3, since=60)
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "etcd-?[2J?evil" in text
    assert clean("plain text") == "plain text"


def test_exit_code_is_zero_only_when_all_ok() -> None:
    reports = sample_reports()
    assert exit_code(reports) == 1
    assert exit_code([reports[0]]) == 0
    assert exit_code([]) == 0


def test_json_matches_the_schema_and_the_table() -> None:
    reports = sort_reports(sample_reports())
    doc = report_json(reports, window=30, since=3600, generated_at=NOW)
    validate(doc)
    assert [e["verdict"] for e in doc["etcds"]] == [
        "slow-disk", "slow-requests-not-disk", "unreachable", "ok"
    ]  # fmt: skip
    first = doc["etcds"][0]
    assert first["wal_fsync"]["p99_seconds"] == 0.412
    assert first["wal_fsync"]["share_above_16ms"] == 0.62
    assert first["volume"]["mismatch"] is True
    assert first["volume"]["expected_from"] == "etcd"
    assert first["volume"]["volume_handle"] == "projects/p/zones/z/disks/pvc-2"
    assert (first["volume"]["capacity_bytes"], first["volume"]["expected_write_iops"]) == (
        10 * 1024**3,
        15.0,
    )
    assert first["volume"]["iops_basis"] == "GCE pd-standard: 1.5 write IOPS per GiB"
    assert doc["etcds"][1]["volume"]["capacity_bytes"] is None
    assert first["logs"]["top_operation"] == "range"
    assert doc["etcds"][2]["scrape"] == {
        "source": None,  # these targets have no scrape spec
        "reachable": False,
        "error": "connect",
        "window_seconds": None,
    }
    assert doc["etcds"][2]["volume"]["mismatch"] is None
    assert doc["summary"] == {
        "total": 4,
        "ok": 1,
        "not_ok": 3,
        "by_verdict": {"slow-disk": 1, "slow-requests-not-disk": 1, "unreachable": 1, "ok": 1},
        "window_seconds": 30,
        "since_seconds": 3600,
        "generated_at": "2026-01-02T03:04:05+00:00",
        "exit_code": 1,
    }
    json.dumps(doc, allow_nan=False)  # no NaN/Infinity: valid JSON for every consumer


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["etcds"][0].update(verdict="fine"),
        lambda d: d["etcds"][0]["volume"].update(disk_class="nvme"),
        lambda d: d["etcds"][0]["wal_fsync"].update(share_above_16ms=1.5),
        lambda d: d["summary"].pop("exit_code"),
        lambda d: d["etcds"][0].update(extra=1),
    ],
)
def test_schema_rejects_broken_documents(breakage: Any) -> None:
    doc = report_json(sample_reports(), window=30, since=3600, generated_at=NOW)
    broken = copy.deepcopy(doc)
    breakage(broken)
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())


def test_schema_lists_every_verdict() -> None:
    assert schema()["$defs"]["verdict"]["enum"] == [str(c) for c in VerdictCode]


# -- × class median ---------------------------------------------------------------------------


def class_reports() -> list[EtcdReport]:
    """19 members at 2.1 ms and one at 8.4 ms on `fast`, 6 uniformly slow members on `standard`
    (HDD), 4 members on `small` (one of them 10× the others), one without a class."""
    fine = DiskEvidence(True, window=30, fsync=FAST, commit=FAST)
    outlier = DiskEvidence(True, window=30, fsync=Latency(0.0084, 900, 0.0), commit=FAST)
    slow = DiskEvidence(True, window=30, fsync=SLOW, commit=FAST)
    small = replace(SSD, storage_class="small", expected_storage_class="small")
    return [
        *(report(f"etcd-main-{i}", volume=SSD, disk=fine, shoot=f"f{i}") for i in range(19)),
        report("etcd-main-0", volume=SSD, disk=outlier, shoot="noisy"),
        *(report(f"etcd-main-{i}", volume=HDD, disk=slow, shoot=f"h{i}") for i in range(6)),
        *(report(f"etcd-main-{i}", volume=small, disk=fine, shoot=f"s{i}") for i in range(3)),
        report("etcd-main-3", volume=small, disk=outlier, shoot="s3"),
        report("etcd-main-0", volume=Volume(), disk=fine, shoot="none"),
    ]


def test_class_median_column_and_note() -> None:
    plain = class_reports()
    reports = sort_reports(with_class_medians(plain, min_members=5))
    assert [r.verdict.code for r in reports] == [r.verdict.code for r in sort_reports(plain)]
    assert exit_code(reports) == exit_code(plain)  # the note changes no verdict
    text = render_table(reports, window=30, since=3600)
    lines = text.splitlines()
    start = lines[0].index("× CLASS MEDIAN")
    cells = {(line.split()[0], line[start:].split()[0]) for line in lines[1 : len(reports) + 1]}
    assert ("noisy", "4.0×/1.0×") in cells
    assert {c for shoot, c in cells if shoot.startswith("f")} == {"1.0×/1.0×"}
    assert {c for shoot, c in cells if shoot.startswith("h")} == {"1.0×/1.0×"}  # all slow
    assert {c for shoot, c in cells if shoot.startswith("s") or shoot == "none"} == {"—"}
    note = "; slow for its class: WAL fsync p99 8.4ms, 4.0× the median of 20 members on fast"
    noisy = next(line for line in lines if line.startswith("shoot--p--noisy/etcd-main-0: ok: "))
    assert noisy.endswith(f"{note} (2.1ms)")
    assert text.count("slow for its class") == 1  # not the slow class, not the class of 4
    remedy = lines[lines.index(noisy) + 1]
    assert remedy.startswith("  remedy: the class is fine, this volume or its node is not")
    assert remedy.endswith("(docs/runbooks.md#etcdlatencywalfsyncslowforclass)")

    doc = report_json(reports, window=30, since=3600, generated_at=NOW)
    validate(doc)
    by_shoot = {e["shoot"]: e["class_median_ratio"] for e in doc["etcds"]}
    assert by_shoot["noisy"]["slow_for_class"] is True
    assert by_shoot["noisy"]["wal_fsync"]["ratio"] == 4.0
    assert by_shoot["noisy"]["wal_fsync"]["median_seconds"] == 0.0021
    assert by_shoot["h0"]["wal_fsync"]["ratio"] == 1.0
    assert by_shoot["s3"]["wal_fsync"] == {"ratio": None, "median_seconds": None, "members": 4,
                                           "floor_seconds": 0.005, "slow": False}  # fmt: skip
    assert by_shoot["none"] is None
    # a report not put through with_class_medians has no standing
    unranked = report_json(plain, window=30, since=3600, generated_at=NOW)["etcds"]
    assert unranked[0]["class_median_ratio"] is None


@pytest.mark.parametrize(
    "breakage",
    [
        lambda c: c["wal_fsync"].update(ratio=-1),
        lambda c: c.pop("slow_for_class"),
        lambda c: c["backend_commit"].update(extra=1),
        lambda c: c.update(storage_class=""),
    ],
)
def test_schema_rejects_broken_class_median_ratio(breakage: Any) -> None:
    reports = with_class_medians(class_reports(), min_members=5)
    doc = report_json(reports, window=30, since=3600, generated_at=NOW)
    validate(doc)
    breakage(doc["etcds"][0]["class_median_ratio"])
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


# -- progress indicator -----------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_counts_members_and_the_window() -> None:
    p = Progress(io.StringIO(), enabled=True)
    assert p.line(now=0) == "diagnose: discovering etcd members…"
    p.total, p.scraped, p.done, p.window_ends = 4, 3, 1, 12.2
    assert p.line(now=10) == "diagnose: 1/4 etcd members done, 3 scraped, window ends in 2s"
    assert p.line(now=13) == "diagnose: 1/4 etcd members done, 3 scraped"


@pytest.mark.looptime  # the redraw timer on the virtual clock
async def test_progress_draws_only_on_a_terminal() -> None:
    quiet = io.StringIO()
    async with Progress(quiet).running():
        await asyncio.sleep(0.01)
    assert quiet.getvalue() == ""
    tty = Terminal()
    async with Progress(tty).running() as p:
        p.total = 2
        await asyncio.sleep(0.01)
    out = tty.getvalue()
    assert out.startswith("\r\x1b[Kdiagnose: 0/2 etcd members done")
    assert out.endswith("\r\x1b[K")  # the line is erased before the report is printed
