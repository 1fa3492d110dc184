"""The test tree is laid out by level, and the levels do not lean on each other.

- every test file sits in a level's folder (tests/support/levels.py), and none writes a level
  marker itself: the folder gives it, so `-m <level>` and the folder select the same tests;
- pyproject.toml declares exactly the level markers and `slow`;
- no module imports a test module or a conftest (shared helpers live in tests/support/), and a
  level's own helper modules are imported only from that level's folder;
- nothing under tests/ imports bench/ (by import or by loading its files), and bench/ imports
  only tests.support: the dependency runs one way, bench → tests.support.
"""

from __future__ import annotations

import ast
import functools
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

from tests.support.levels import LEVELS, ORTHOGONAL, level_of

REPO = Path(__file__).resolve().parents[2]
SKIP_DIRS = {"build", "dist", "node_modules", "out", "__pycache__"}  # and hidden ones (.venv, ...)


def python_files(top: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        yield from (Path(folder, name) for name in sorted(files) if name.endswith(".py"))


@functools.cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def is_test_file(path: Path) -> bool:
    return path.name.startswith("test_") or path.name.endswith("_test.py")


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every absolute import in a file, `from a import b` giving a.b too."""
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def level_markers_in(path: Path) -> list[str]:
    """`pytest.mark.<level>` (or `mark.<level>`) written anywhere in the file."""
    levels = set(LEVELS.values())
    found = []
    for node in ast.walk(tree(path)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in levels
            and isinstance(node.value, ast.Attribute | ast.Name)
            and (node.value.attr if isinstance(node.value, ast.Attribute) else node.value.id)
            == "mark"
        ):
            found.append(f"{relative(path)}:{node.lineno}: mark.{node.attr}")
    return found


TEST_FILES = [p for p in python_files(REPO) if is_test_file(p)]
TREES = [p for top in (REPO / "tests", REPO / "bench") for p in python_files(top)]


def test_the_walk_finds_the_tree() -> None:
    """The checks below look at files that exist (a wrong root would pass them all)."""
    assert len(TEST_FILES) > 50
    assert {level_of(p, REPO) for p in TEST_FILES} == set(LEVELS.values())


def test_every_test_file_is_in_a_level_folder() -> None:
    outside = [relative(p) for p in TEST_FILES if level_of(p, REPO) is None]
    assert outside == [], f"move them under one of {sorted(map(str, LEVELS))}"


def test_no_test_file_writes_a_level_marker() -> None:
    written = [hit for p in TEST_FILES for hit in level_markers_in(p)]
    assert written == [], "the folder gives the level marker (tests/support/levels.py)"


def test_declared_markers_are_the_levels_and_slow() -> None:
    ini = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    declared = {line.split(":", 1)[0] for line in ini["markers"]}
    assert declared == set(LEVELS.values()) | ORTHOGONAL
    assert {PurePosixPath(p) for p in ini["testpaths"]} == {PurePosixPath("tests")} | {
        folder for folder in LEVELS if folder.parts[0] != "tests"
    }


def test_this_test_got_its_folder_marker(request: pytest.FixtureRequest) -> None:
    marked = {m.name for m in request.node.iter_markers()} & set(LEVELS.values())
    assert marked == {"meta"}


def test_level_of_paths() -> None:
    assert level_of(REPO / "tests" / "unit" / "test_x.py", REPO) == "unit"
    assert level_of(REPO / "bench" / "tests" / "test_x.py", REPO) == "bench"
    assert level_of(REPO / "tests" / "support" / "test_x.py", REPO) is None
    assert level_of(REPO / "tests" / "test_x.py", REPO) is None
    assert level_of(REPO / "tests" / "unitary" / "test_x.py", REPO) is None


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    """A helper two tests share lives in tests/support/, not in one of the tests."""
    bad = [
        f"{relative(path)}:{line}: {name}"
        for path in TREES
        for line, name in imported_modules(path)
        if name.startswith(("tests.", "bench."))
        and any(part.startswith("test_") or part == "conftest" for part in name.split(".")[1:])
    ]
    assert bad == []


def test_level_helpers_stay_in_their_level() -> None:
    """tests/<level>/<helper>.py is that level's own; what two levels share is in tests/support/."""
    folders = {".".join(folder.parts): folder for folder in LEVELS}
    bad = []
    for path in TREES:
        here = PurePosixPath(relative(path))
        for line, name in imported_modules(path):
            for dotted, folder in folders.items():
                if name.startswith(dotted + ".") and not here.is_relative_to(folder):
                    bad.append(f"{here}:{line}: {name}")
    assert bad == []


def test_tests_do_not_use_bench() -> None:
    """Neither `import bench…` nor loading a file of bench/ by its path."""
    bad = []
    this = Path(__file__).resolve()  # reads bench/ as text, which is its job
    for path in (p for p in python_files(REPO / "tests") if p != this):
        for line, name in imported_modules(path):
            if name == "bench" or name.startswith("bench."):
                bad.append(f"{relative(path)}:{line}: import {name}")
        for node in ast.walk(tree(path)):
            if (  # <path> / "bench" or <path> / "bench/…"
                isinstance(node, ast.BinOp)
                and isinstance(node.op, ast.Div)
                and isinstance(node.right, ast.Constant)
                and str(node.right.value).split("/")[0] == "bench"
            ):
                bad.append(f"{relative(path)}:{node.lineno}: a path into bench/")
    assert bad == []


def test_bench_imports_only_tests_support() -> None:
    bad = [
        f"{relative(path)}:{line}: {name}"
        for path in python_files(REPO / "bench")
        for line, name in imported_modules(path)
        if (name == "tests" or name.startswith("tests."))
        and not (name == "tests.support" or name.startswith("tests.support."))
    ]
    assert bad == []
