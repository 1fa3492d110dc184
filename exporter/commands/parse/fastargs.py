"""`parse [--output FORMAT] FILE…` read without pydantic: the plainest command lines start fast.

Why a second reader of these arguments: importing pydantic-settings and building the settings
models takes 0.2-0.35 s, more than all the rest of a `parse` run's start-up (`parse /dev/null`:
0.13 s this way, 0.31 s through the settings models; the 1M-line easy corpus of
bench/parse_bench.py: 0.43 s instead of 0.64 s; best of 5-10 alternated runs). `fast_parse_args`
takes only command lines the settings parser (`exporter.settings.ParseSettings` through
`exporter.cli.load`) reads into the same files and output, and returns None for anything else,
which then goes through that parser: `--help`, every error, `--`, a repeated or abbreviated
option, an option after a file, and any `ETCD_LATENCY_…` variable in the environment. Tests
compare the two on random command lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import get_args

from exporter.model import ENV_PREFIX, ParseOutput

OUTPUTS = frozenset(get_args(ParseOutput))
DEFAULT_OUTPUT = "summary"  # ParseSettings' default (tests compare)
DEFAULT_FILES = ("-",)  # ParseSettings' default: stdin
# What the settings parser reads into a list item other than itself: it splits at commas, takes
# an item in brackets or braces as JSON, unquotes double quotes, and `true`, `false`, `null`,
# `None` become values that are not file names. It keeps single quotes and backslashes, but reads
# them on the way (escapes, quoting), so names with either are left to it as well.
_SPECIAL = frozenset(",[]{}\"'\\")
_VALUES = frozenset({"true", "false", "null", "none"})


@dataclass(frozen=True, slots=True)
class FastParseArgs:
    """The settings of a plain `parse` command line (an `exporter.commands.parse.command.
    ParseOptions`)."""

    files: tuple[str, ...]
    output: str


def fast_parse_args(args: Sequence[str], environ: Mapping[str, str]) -> FastParseArgs | None:
    """The settings of `parse [--output FORMAT|--output=FORMAT] FILE…` (stdin without a file), or
    None when the settings parser may read the command line or environment otherwise."""
    prefix = ENV_PREFIX.lower()
    if any(key.lower().startswith(prefix) or key.upper().startswith(ENV_PREFIX) for key in environ):
        return None
    rest = list(args)
    output = DEFAULT_OUTPUT
    if rest and rest[0] == "--output" and len(rest) > 1:
        output, rest = rest[1], rest[2:]
    elif rest and rest[0].startswith("--output="):
        output, rest = rest[0].removeprefix("--output="), rest[1:]
    if output not in OUTPUTS or not all(map(_plain_file_name, rest)):
        return None
    return FastParseArgs(files=tuple(rest) or DEFAULT_FILES, output=output)


def _plain_file_name(name: str) -> bool:
    """A name the settings parser takes as it is: not an option (but `-`, stdin), nothing it
    would strip (white space), refuse (control characters) or decode (see `_SPECIAL`)."""
    if not name or (name.startswith("-") and name != "-") or name.lower() in _VALUES:
        return False
    return name.isprintable() and " " not in name and _SPECIAL.isdisjoint(name)
