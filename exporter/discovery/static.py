"""Static discovery: targets from a YAML file (`--discovery=static --static.targets-file=FILE`).

The schema is documented in docs/static-targets.md. `load_targets_file` validates the whole file
and raises `TargetsFileError` listing every problem with the key that caused it
(`targets[2].metrics_url: …`). `StaticDiscovery.run` re-reads the file when it changes (polling
its identity, size and mtime) or on `reload()` (SIGHUP); a broken file keeps the last good set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    ValidationError,
    model_validator,
)
from pydantic_core import core_schema

from exporter.backoff import wait_set
from exporter.discovery.base import Publish
from exporter.discovery.disk_budget import budget_fields, parse_capacity
from exporter.discovery.disk_class import classify
from exporter.discovery.identity import project_and_shoot
from exporter.discovery.sharding import owns
from exporter.model import (
    CommandLogSpec,
    FileLogSpec,
    Identity,
    LogSpec,
    ScrapeSpec,
    Target,
    TLSConfig,
    Volume,
)

log = logging.getLogger(__name__)


class TargetsFileError(ValueError):
    """The targets file is unusable; `problems` names each problem with its file key."""

    def __init__(self, path: str, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL with a host, got {value!r}")
    with contextlib.suppress(ValueError):
        parts.port  # noqa: B018 - validates the port
        return value
    raise ValueError(f"invalid port in {value!r}")


def _name(value: str) -> str:
    if not value.strip() or any(c.isspace() for c in value):
        raise ValueError("must be non-empty and contain no whitespace")
    return value


def _capacity(value: str) -> int | None:
    capacity = parse_capacity(value)
    if value and capacity is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 25Gi)")
    return capacity


# A Kubernetes quantity in the file (a string, validated as `str` is), its bytes in the model:
# parsed once, where it is checked.
Capacity = Annotated[
    int | None,
    GetPydanticSchema(
        lambda _type, _handler: core_schema.no_info_after_validator_function(
            _capacity, core_schema.str_schema()
        )
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TLSModel(_Strict):
    """Client TLS for scraping; file paths are relative to the targets file."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _pair(self) -> TLSModel:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("cert_file and key_file go together")
        return self


class LogModel(_Strict):
    """Exactly one log source: a file (or `-`), or a command's standard output."""

    file: str | None = None
    command: list[str] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> LogModel:
        if (self.file is None) == (self.command is None):
            raise ValueError("give exactly one of file or command")
        return self


class TargetModel(_Strict):
    """One etcd member."""

    name: Annotated[str, AfterValidator(_name)]
    metrics_url: Annotated[str, AfterValidator(_url)] | None = None
    tls: TLSModel | None = None
    log: LogModel | None = None
    namespace: str = ""
    project: str = ""
    shoot: str = ""
    etcd: str = ""
    pod: str = ""
    pvc: str = ""
    pv: str = ""
    storage_class: str = ""
    provisioner: str = ""
    disk_type: str = ""
    disk_class: Literal["ssd", "hdd", "unknown"] | None = None
    expected_storage_class: str = ""
    volume_handle: str = ""
    capacity: Capacity = None  # bytes; `25Gi` in the file

    @model_validator(mode="after")
    def _something_to_do(self) -> TargetModel:
        if self.metrics_url is None and self.log is None:
            raise ValueError("needs metrics_url, log, or both")
        if self.tls is not None and self.metrics_url is None:
            raise ValueError("tls needs metrics_url")
        return self


class TargetsFile(_Strict):
    """The whole file: `targets: [...]`."""

    targets: list[TargetModel] = Field(default_factory=list)


def _key(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def _validation_problems(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        problems.append(f"{_key(tuple(e['loc']))}: {msg}")
    return problems


def parse_targets(text: str, *, path: str = "<targets>") -> TargetsFile:
    """YAML text → validated model; raises TargetsFileError with every problem."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise TargetsFileError(path, [f"(file): not valid YAML: {err}"]) from None
    problems = _duplicates(doc)
    try:
        model = TargetsFile.model_validate(doc if doc is not None else {})
    except ValidationError as err:
        problems = _validation_problems(err) + problems
    else:
        if not problems:
            return model
    raise TargetsFileError(path, problems)


def _duplicates(doc: object) -> list[str]:
    """Names used twice, found in the raw document so they are listed with every other problem."""
    targets = doc.get("targets") if isinstance(doc, dict) else None
    if not isinstance(targets, list):
        return []
    first: dict[str, int] = {}
    problems = []
    for i, entry in enumerate(targets):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            problems.append(
                f"targets[{i}].name: duplicate {name!r} (first at targets[{first[name]}])"
            )
        first.setdefault(name, i)
    return problems


def _resolve(base: Path, value: str | None) -> str | None:
    if value is None or value == "-":
        return value
    return str(base / value) if not os.path.isabs(value) else value


def _tls_problems(i: int, tls: TLSModel, base: Path) -> list[str]:
    problems = []
    for field in ("ca_file", "cert_file", "key_file"):
        value = _resolve(base, getattr(tls, field))
        if value is not None and not os.access(value, os.R_OK):
            problems.append(f"targets[{i}].tls.{field}: cannot read {value}")
    return problems


def _log_spec(model: LogModel | None, base: Path) -> LogSpec | None:
    if model is None:
        return None
    if model.command is not None:
        return CommandLogSpec(tuple(model.command))
    return FileLogSpec(_resolve(base, model.file) or "-")


def _scrape_spec(t: TargetModel, base: Path) -> ScrapeSpec | None:
    if t.metrics_url is None:
        return None
    tls = None
    if t.tls is not None:
        tls = TLSConfig(
            ca_file=_resolve(base, t.tls.ca_file),
            cert_file=_resolve(base, t.tls.cert_file),
            key_file=_resolve(base, t.tls.key_file),
            server_name=t.tls.server_name,
            insecure_skip_verify=t.tls.insecure_skip_verify,
        )
    return ScrapeSpec(url=t.metrics_url, tls=tls)


def to_target(t: TargetModel, *, base: Path, overrides: Mapping[str, str]) -> Target:
    """One file entry → a Target (project/shoot from the namespace, disk class derived)."""
    project, shoot = project_and_shoot(t.namespace)
    disk_class: str | None = t.disk_class
    params = {"type": t.disk_type} if t.disk_type else {}
    if disk_class is None:
        _, disk_class = classify(
            provisioner=t.provisioner,
            parameters=params,
            class_name=t.storage_class,
            overrides=overrides,
        )
    return Target(
        key=t.name,
        identity=Identity(
            namespace=t.namespace,
            project=t.project or project,
            shoot=t.shoot or shoot,
            etcd=t.etcd,
            pod=t.pod,
        ),
        volume=Volume(
            pvc=t.pvc,
            pv=t.pv,
            storage_class=t.storage_class,
            provisioner=t.provisioner,
            disk_type=t.disk_type,
            disk_class=disk_class,
            expected_storage_class=t.expected_storage_class,
            expected_from="config" if t.expected_storage_class else "",
            volume_handle=t.volume_handle,
            **budget_fields(
                provisioner=t.provisioner, parameters=params, capacity_bytes=t.capacity
            ),
        ),
        scrape=_scrape_spec(t, base),
        log=_log_spec(t.log, base),
    )


def load_targets_file(
    path: str,
    *,
    shard: int = 0,
    total_shards: int = 1,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, Target]:
    """Read and validate the file → targets of this shard by key; raises TargetsFileError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise TargetsFileError(path, [f"(file): cannot read: {err}"]) from None
    model = parse_targets(text, path=path)
    base = Path(path).resolve().parent
    problems = [
        p for i, t in enumerate(model.targets) if t.tls for p in _tls_problems(i, t.tls, base)
    ]
    if problems:
        raise TargetsFileError(path, problems)
    return {
        t.name: to_target(t, base=base, overrides=overrides or {})
        for t in model.targets
        if owns(t.namespace, shard=shard, total_shards=total_shards)
    }


def _signature(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class StaticDiscovery:
    """A `Discovery`: publishes the targets file's set; re-reads it on change or `reload()`."""

    def __init__(
        self,
        path: str,
        *,
        shard: int = 0,
        total_shards: int = 1,
        overrides: Mapping[str, str] | None = None,
        poll_interval: float = 2.0,
    ) -> None:
        self._path = path
        self._shard = shard
        self._total_shards = total_shards
        self._overrides = dict(overrides or {})
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._published: dict[str, Target] | None = None

    def reload(self) -> None:
        """Re-read the file at once (SIGHUP)."""
        self._wake.set()

    async def run(self, publish: Publish) -> None:
        """Publish the file's targets now and whenever it changes; runs until cancelled."""
        seen: tuple[int, int, int, int] | Literal["never"] | None = "never"
        while True:
            forced = self._wake.is_set()
            self._wake.clear()
            signature = await asyncio.to_thread(_signature, self._path)
            if forced or signature != seen:
                seen = signature
                await self._read_and_publish(publish, forced=forced)
            await wait_set(self._wake, self._poll_interval)

    async def _read_and_publish(self, publish: Publish, *, forced: bool) -> None:
        try:
            targets = await asyncio.to_thread(
                load_targets_file,
                self._path,
                shard=self._shard,
                total_shards=self._total_shards,
                overrides=self._overrides,
            )
        except TargetsFileError as err:
            log.error(
                "Targets file invalid, keeping the last good targets",
                extra={"file": self._path, "problems": err.problems},
            )
            return
        if targets == self._published and not forced:
            return
        log.info("Targets file read", extra={"file": self._path, "targets": len(targets)})
        self._published = targets
        publish(targets)
