"""Checks every file `run` depends on before anything starts, and collects what they yield.

The flags themselves are validated by the settings; this reads the files they name (static
targets, web config, disk-class overrides) and lists every problem with the flag, environment
variable and file key that caused it. Synchronous: it runs before the event loop exists.
`diagnose` merges the disk-class overrides with the same `disk_class_overrides`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

import yaml

from exporter.cli import env_name, flag_name
from exporter.discovery.disk_class import load_overrides_file
from exporter.discovery.static import TargetsFileError, load_targets_file
from exporter.settings import RunSettings, StorageSettings
from exporter.web.webconfig import ConfigError, load_web_config, server_ssl_context


def where(*loc: str) -> str:
    """`("web", "config", "file")` → `--web.config.file / ETCD_LATENCY_WEB__CONFIG__FILE`."""
    return f"{flag_name(loc)} / {env_name(loc)}"


def disk_class_overrides(storage: StorageSettings) -> tuple[dict[str, str], str | None]:
    """The overrides file's entries with --storage.disk-class-overrides over them, and the
    problem with the file (where it says so), if any: the flag's entries apply regardless."""
    merged: dict[str, str] = {}
    problem = None
    path = storage.disk_class_overrides_file
    if path:
        try:
            merged.update(load_overrides_file(path))
        except (OSError, ValueError, yaml.YAMLError) as err:
            problem = f"{where('storage', 'disk_class_overrides_file')}: {_message(err)}"
    merged.update(storage.disk_class_overrides)
    return merged, problem


@dataclass
class Prepared:
    """The checked inputs of the daemon, or the problems that stop it."""

    problems: list[str] = field(default_factory=list)
    overrides: dict[str, str] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = None
    basic_auth: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def add(self, where: str, problem: str) -> None:
        """Record one problem found in the file named by a flag."""
        self.problems.append(f"{where}: {problem}")

    def report(self) -> str:
        """Every problem, one a line, under a header like the flag errors' one."""
        head = f"etcd-latency-exporter run: invalid configuration ({len(self.problems)}):"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


def prepare_run(settings: RunSettings) -> Prepared:
    """Read and check every file; `problems` is empty when the daemon may start."""
    prepared = Prepared()
    _overrides(settings, prepared)
    _targets(settings, prepared)
    _web_config(settings, prepared)
    return prepared


def _overrides(settings: RunSettings, prepared: Prepared) -> None:
    prepared.overrides, problem = disk_class_overrides(settings.storage)
    if problem is not None:
        prepared.problems.append(problem)


def _targets(settings: RunSettings, prepared: Prepared) -> None:
    path = settings.static.targets_file
    if settings.discovery != "static" or not path:
        return
    try:
        load_targets_file(
            path,
            shard=settings.shard,
            total_shards=settings.total_shards,
            overrides=prepared.overrides,
        )
    except TargetsFileError as err:
        for problem in err.problems:
            prepared.add(where("static", "targets_file"), f"{path}: {problem}")


def _web_config(settings: RunSettings, prepared: Prepared) -> None:
    path = settings.web.config.file
    if not path:
        return
    flag = where("web", "config", "file")
    try:
        config = load_web_config(path)
        prepared.ssl_context = server_ssl_context(config)
    except ConfigError as err:
        for problem in err.problems:
            prepared.add(flag, f"{path}: {problem}")
        return
    except (OSError, ValueError, ssl.SSLError) as err:
        prepared.add(flag, f"{path}: {_message(err)}")
        return
    prepared.basic_auth = dict(config.basic_auth_users) or None
    prepared.headers = dict(config.headers)


def _message(err: BaseException) -> str:
    if isinstance(err, OSError) and err.filename:
        return f"cannot read {err.filename}: {err.strerror}"
    return str(err)
