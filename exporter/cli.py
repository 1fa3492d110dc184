"""Command line: `run`, `parse`, `diagnose`. Parses settings, maps errors to exit codes.

No business logic here; each subcommand lives in its own module and is imported lazily, and so
are pydantic and the settings models (`--version` and the usage text need neither). The plainest
`parse` command lines (`parse [--output FORMAT] FILE…`, no `ETCD_LATENCY_…` variable set) do
without them too: `commands.parse.fastargs` reads them to the same settings, which makes `parse`
start in half the time or less.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn, TypeVar

from exporter import __version__

if TYPE_CHECKING:
    from pydantic import ValidationError
    from pydantic_settings import BaseSettings

    from exporter.commands.parse.fastargs import FastParseArgs

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2

USAGE = f"""usage: etcd-latency-exporter {{run,parse,diagnose}} [options]

etcd-latency-exporter {__version__}: finds the etcd on a slow disk.

subcommands:
  run        the daemon: discover etcd, follow logs, scrape /metrics, serve /metrics
  parse      offline analysis of saved etcd logs (files, .gz, or - for stdin)
  diagnose   one-shot report: which etcd is on a slow disk, and why

Run `etcd-latency-exporter SUBCOMMAND --help` for its options.
"""

S = TypeVar("S", bound="BaseSettings")

COMMANDS = ("run", "parse", "diagnose")


def settings_model(command: str) -> type[BaseSettings]:
    """The settings model of a subcommand (imports pydantic)."""
    from exporter.settings import DiagnoseSettings, ParseSettings, RunSettings

    models: dict[str, type[BaseSettings]] = {
        "run": RunSettings,
        "parse": ParseSettings,
        "diagnose": DiagnoseSettings,
    }
    return models[command]


def flag_name(loc: Sequence[int | str]) -> str:
    """('scrape', 'interval') → '--scrape.interval'."""
    parts = [str(p).replace("_", "-") for p in loc if not isinstance(p, int)]
    return "--" + ".".join(parts) if parts else "(settings)"


def env_name(loc: Sequence[int | str]) -> str:
    """('scrape', 'interval') → 'ETCD_LATENCY_SCRAPE__INTERVAL'."""
    from exporter.settings import ENV_PREFIX

    parts = [str(p).upper() for p in loc if not isinstance(p, int)]
    return ENV_PREFIX + "__".join(parts)


def format_errors(command: str, err: ValidationError) -> str:
    """Every problem, one a line, naming the flag and the environment variable."""
    lines = [f"etcd-latency-exporter {command}: invalid configuration ({err.error_count()}):"]
    for e in err.errors():
        loc = e["loc"]
        msg = e["msg"].removeprefix("Value error, ")
        where = f"{flag_name(loc)} / {env_name(loc)}" if loc else "configuration"
        value = e.get("input")
        shown = loc and not isinstance(value, dict) and repr(value) not in msg
        got = f" (got {value!r})" if shown else ""
        lines.append(f"  {where}: {msg}{got}")
    return "\n".join(lines)


def load(model: type[S], command: str, args: list[str]) -> S:
    """Parse flags and environment into settings, or print every problem and exit 2."""
    from pydantic import ValidationError
    from pydantic_settings import CliApp, SettingsError

    try:
        return CliApp.run(model, cli_args=args)
    except ValidationError as err:
        print(format_errors(command, err), file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    except SettingsError as err:  # an argument or variable the settings sources cannot read
        print(f"etcd-latency-exporter {command}: invalid configuration: {err}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def fast_settings(command: str, args: list[str]) -> FastParseArgs | None:
    """The settings of a plain `parse` command line, read without pydantic; else None."""
    if command != "parse":
        return None
    from exporter.commands.parse.fastargs import fast_parse_args

    return fast_parse_args(args, os.environ)


def dispatch(command: str, settings: BaseSettings | FastParseArgs) -> int:
    """Run a subcommand; returns its exit code."""
    from exporter.commands.parse.fastargs import FastParseArgs

    if isinstance(settings, FastParseArgs):
        from exporter.commands.parse.command import run_parse

        return run_parse(settings)
    from exporter.settings import DiagnoseSettings, ParseSettings, RunSettings

    if isinstance(settings, RunSettings):
        from exporter.app import run_daemon

        return run_daemon(settings)
    if isinstance(settings, ParseSettings):
        from exporter.commands.parse.command import run_parse

        return run_parse(settings)
    if isinstance(settings, DiagnoseSettings):
        from exporter.commands.diagnose.command import run_diagnose

        return run_diagnose(settings)
    raise AssertionError(command)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the console script and `python -m exporter`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, file=sys.stdout if args else sys.stderr)
        raise SystemExit(EXIT_OK if args else EXIT_USAGE)
    if args[0] == "--version":
        print(f"etcd-latency-exporter {__version__}")
        raise SystemExit(EXIT_OK)
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"etcd-latency-exporter: unknown subcommand {command!r}\n\n{USAGE}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    fast = fast_settings(command, rest)
    settings = fast if fast is not None else load(settings_model(command), command, rest)
    try:
        code = dispatch(command, settings)
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)
