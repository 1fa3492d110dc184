"""The one text table of `parse` and `diagnose`."""

from __future__ import annotations

from exporter.texttable import text_table


def test_left_names_right_numbers_and_no_trailing_spaces() -> None:
    rows = [["kind", "count"], ["slow request", "1,234"], ["fdatasync", "7"]]
    assert text_table(rows, numbers_from=1).splitlines() == [
        "kind          count",
        "slow request  1,234",
        "fdatasync         7",
    ]


def test_all_left_aligned_by_default() -> None:
    assert text_table([["A", "BB", ""], ["ccc", "d", ""]]).splitlines() == ["A    BB", "ccc  d"]
