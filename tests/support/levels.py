"""Test levels: each folder is one level, and its tests carry the level's marker.

The marker is put on by folder (tests/conftest.py and bench/tests/conftest.py call
`mark_by_folder`), never written in a test file, so `-m` selects exactly a folder's tests and a
test cannot sit in one folder while claiming another level. tests/meta/test_levels.py holds the
tree to that.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import pytest

# folder (relative to the repository) → marker. The markers are declared in pyproject.toml.
LEVELS: dict[PurePosixPath, str] = {
    PurePosixPath("tests", level): level
    for level in ("unit", "component", "integration", "e2e", "rules", "chart", "image", "meta")
} | {PurePosixPath("bench", "tests"): "bench"}

# Markers that say something else than the level, allowed anywhere.
ORTHOGONAL = frozenset({"slow"})


def level_of(path: Path, root: Path) -> str | None:
    """The level of a test file, or None when it sits in no level's folder."""
    try:
        relative = PurePosixPath(path.resolve().relative_to(root.resolve()).as_posix())
    except ValueError:
        return None
    for folder, level in LEVELS.items():
        if relative.is_relative_to(folder):
            return level
    return None


def mark_by_folder(items: Iterable[pytest.Item], root: Path) -> None:
    """Adds each item's level marker (once, whichever conftest gets there first)."""
    for item in items:
        level = level_of(item.path, root)
        if level is not None and item.get_closest_marker(level) is None:
            item.add_marker(level)
