"""A volume's size and write budget in words (exporter/diagnosis/budget.py)."""

from __future__ import annotations

import pytest

from exporter.diagnosis.budget import against_etcd, budget_line, iops_text, size_text
from exporter.model import Volume

GIB = 1024**3


@pytest.mark.parametrize(
    ("capacity", "text"),
    [(25 * GIB, "25 GiB"), (GIB * 3 // 2, "1.5 GiB"), (512 * 1024**2, "512 MiB"),
     (2048 * GIB, "2,048 GiB")],
)  # fmt: skip
def test_size_text(capacity: int, text: str) -> None:
    assert size_text(capacity) == text


def test_iops_text() -> None:
    assert [iops_text(v) for v in (15.0, 37.5, 100.0, 6750.0)] == ["15", "37.5", "100", "6,750"]


@pytest.mark.parametrize(
    ("iops", "text"),
    [(15, "below etcd's 50"), (49.9, "below etcd's 50"), (50, "below etcd's 500 for heavy load"),
     (499, "below etcd's 500 for heavy load"), (500, ""), (6750, "")],
)  # fmt: skip
def test_against_etcd(iops: float, text: str) -> None:
    assert against_etcd(iops) == text


def test_budget_line() -> None:
    pd_standard = Volume(
        disk_type="pd-standard",
        capacity_bytes=10 * GIB,
        expected_write_iops=15.0,
        iops_basis="GCE pd-standard: 1.5 write IOPS per GiB",
    )
    assert budget_line(pd_standard) == (
        "10 GiB: ~15 write IOPS expected (GCE pd-standard: 1.5 write IOPS per GiB), below etcd's 50"
    )
    pd_ssd = Volume(capacity_bytes=25 * GIB, expected_write_iops=6750.0, iops_basis="GCE pd-ssd")
    assert budget_line(pd_ssd) == "25 GiB: ~6,750 write IOPS expected (GCE pd-ssd)"
    st1 = Volume(disk_type="st1", capacity_bytes=500 * GIB)
    assert budget_line(st1) == "500 GiB: no documented write IOPS for st1"
    assert budget_line(Volume(expected_write_iops=100.0)) == (
        "size unknown: ~100 write IOPS expected, below etcd's 500 for heavy load"
    )
    assert budget_line(Volume()) is None
