"""Plain-text tables for a terminal, written once for `parse` and `diagnose`. Pure."""

from __future__ import annotations

from collections.abc import Sequence


def text_table(rows: Sequence[Sequence[str]], *, numbers_from: int | None = None) -> str:
    """Each column padded to its widest cell, two spaces apart, trailing spaces trimmed; the
    columns from `numbers_from` on are right-aligned (counts, durations), the others left."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = len(widths) if numbers_from is None else numbers_from
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i >= right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
