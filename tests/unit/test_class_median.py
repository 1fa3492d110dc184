"""Slow for its class: each member's p99 against the median p99 of its StorageClass (pure)."""

from __future__ import annotations

import statistics

import pytest

from exporter.diagnosis.classmedian import (
    ClassRatio,
    MemberP99,
    class_standings,
    ratio_cell,
    ratio_text,
    slow_for_class_remedy,
    slow_for_class_text,
    standing_json,
)
from exporter.metrics import (
    BACKEND_COMMIT_CLASS_FLOOR,
    CLASS_MEDIAN_FACTOR,
    CLASS_MEDIAN_MIN_MEMBERS,
    WAL_FSYNC_CLASS_FLOOR,
)

FAST = "gardener.cloud-fast"


def one_outlier() -> list[MemberP99]:
    """19 healthy members at 2–2.5 ms fsync and 4 ms commit, the last at 8 ms fsync and 12 ms
    commit (3× its class too, but below the commit floor of 12.5 ms)."""
    healthy = [MemberP99(FAST, 0.002 if i < 10 else 0.0025, 0.004) for i in range(19)]
    return [*healthy, MemberP99(FAST, 0.008, 0.012)]


def test_one_outlier_among_20_is_slow_for_its_class() -> None:
    standings = class_standings(one_outlier())
    outlier = standings[-1]
    assert outlier is not None
    # median of 10 × 2 ms, 9 × 2.5 ms and 8 ms: the mean of the 10th and 11th values
    assert outlier.fsync.median == pytest.approx(0.00225)
    assert outlier.fsync.members == 20
    assert outlier.fsync.ratio == pytest.approx(0.008 / 0.00225)
    assert outlier.fsync.slow
    assert outlier.commit.ratio == pytest.approx(3.0)
    assert not outlier.commit.slow  # 3× its class, but 12 ms is below the 12.5 ms floor
    assert outlier.slow
    assert ratio_cell(outlier) == "3.6×/3.0×"
    healthy = [s for s in standings[:-1] if s is not None]
    assert len(healthy) == 19
    assert all(not s.slow for s in healthy)
    assert max(s.fsync.ratio or 0.0 for s in healthy) == pytest.approx(0.0025 / 0.00225)
    assert slow_for_class_text(outlier) == (
        "slow for its class: WAL fsync p99 8ms, 3.6× the median of 20 members on "
        "gardener.cloud-fast (2.25ms)"
    )
    assert slow_for_class_text(healthy[0]) == ""
    assert slow_for_class_remedy(outlier).endswith(
        "(docs/runbooks.md#etcdlatencywalfsyncslowforclass)"
    )


def test_a_uniformly_slow_class_has_ratios_near_one() -> None:
    slow = [MemberP99(FAST, 0.064 + i * 0.0032, 0.128 + i * 0.0064) for i in range(20)]
    standings = [s for s in class_standings(slow) if s is not None]
    assert len(standings) == 20
    for s in standings:
        assert 0.6 < (s.fsync.ratio or 0.0) < 1.4
        assert 0.6 < (s.commit.ratio or 0.0) < 1.4
        assert not s.slow  # the fixed thresholds cover a slow class, not this


def test_a_class_of_four_has_no_median() -> None:
    four = [MemberP99("small", 0.002, 0.004) for _ in range(3)] + [MemberP99("small", 0.5, 1.0)]
    standings = class_standings(four)
    for s in standings:
        assert s is not None
        assert (s.fsync.members, s.fsync.median, s.fsync.ratio) == (4, None, None)
        assert not s.slow
        assert ratio_cell(s) == "—"
    assert CLASS_MEDIAN_MIN_MEMBERS == 5
    # the same four with a fifth member have one
    five = class_standings([*four, MemberP99("small", 0.002, 0.004)])
    assert five[3] is not None
    assert five[3].slow


def test_classes_are_judged_apart_and_members_without_a_p99_or_class_do_not_count() -> None:
    members = [
        *one_outlier(),
        *(MemberP99("other", 0.05, 0.05) for _ in range(4)),
        MemberP99("other", None, None),  # idle or unreachable: no p99, not a member of the median
        MemberP99("", 0.9, 0.9),  # no StorageClass: no class
    ]
    standings = class_standings(members)
    assert standings[19] is not None
    assert standings[19].fsync.members == 20  # "other" is not mixed in
    idle = standings[-2]
    assert idle is not None
    assert (idle.fsync.members, idle.fsync.median, idle.fsync.ratio) == (4, None, None)
    assert standings[-1] is None
    assert ratio_cell(standings[-1]) == "—"
    assert standing_json(standings[-1]) is None


def test_min_members_is_a_parameter() -> None:
    pair = [MemberP99("c", 0.002, 0.004), MemberP99("c", 0.010, 0.004)]
    assert all(s is not None and s.fsync.median is None for s in class_standings(pair))
    two = class_standings(pair, min_members=2)
    assert two[1] is not None
    assert two[1].fsync.median == pytest.approx(0.006)  # PromQL's quantile(0.5): mean of two
    assert two[1].min_members == 2


@pytest.mark.parametrize(
    ("p99", "median", "slow"),
    [
        (3 * 0.002, 0.002, True),  # exactly the factor, above the floor: slow (>= as the alert)
        (WAL_FSYNC_CLASS_FLOOR, WAL_FSYNC_CLASS_FLOOR / 4, False),  # at the floor: not above it
        (0.0059, 0.002, False),  # above the floor, under the factor
        (0.004, 0.001, False),  # 4×, under the floor
        (0.010, 0.0, False),  # a median of 0 gives no ratio (the rules divide by `> 0` only)
        (None, 0.002, False),
    ],
)
def test_factor_and_floor(p99: float | None, median: float, slow: bool) -> None:
    r = ClassRatio(p99=p99, members=20, median=median, floor=WAL_FSYNC_CLASS_FLOOR)
    assert r.slow is slow
    if median == 0.0 or p99 is None:
        assert r.ratio is None
        assert ratio_text(r) == "—"


def test_commit_outlier_names_the_commit_and_its_runbook() -> None:
    members = [MemberP99(FAST, 0.002, 0.005) for _ in range(9)] + [MemberP99(FAST, 0.002, 0.05)]
    outlier = class_standings(members)[-1]
    assert outlier is not None
    assert not outlier.fsync.slow
    assert outlier.commit.slow
    assert slow_for_class_text(outlier) == (
        "slow for its class: backend commit p99 50ms, 10.0× the median of 10 members on "
        "gardener.cloud-fast (5ms)"
    )
    assert "#etcdlatencybackendcommitslowforclass" in slow_for_class_remedy(outlier)
    doc = standing_json(outlier)
    assert doc == {
        "storage_class": FAST,
        "min_members": CLASS_MEDIAN_MIN_MEMBERS,
        "factor": CLASS_MEDIAN_FACTOR,
        "wal_fsync": {"ratio": 1.0, "median_seconds": 0.002, "members": 10,
                      "floor_seconds": WAL_FSYNC_CLASS_FLOOR, "slow": False},
        "backend_commit": {"ratio": 10.0, "median_seconds": 0.005, "members": 10,
                           "floor_seconds": BACKEND_COMMIT_CLASS_FLOOR, "slow": True},
        "slow_for_class": True,
    }  # fmt: skip


def test_median_is_the_statistics_median() -> None:
    values = [0.001, 0.004, 0.002, 0.003, 0.1, 0.007]
    standings = class_standings([MemberP99("c", v, v) for v in values])
    assert standings[0] is not None
    assert standings[0].fsync.median == pytest.approx(statistics.median(values))
    assert standings[0].fsync.median == pytest.approx((0.003 + 0.004) / 2)
