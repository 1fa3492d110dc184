"""Static discovery: the targets file schema, every problem listed, reloading without resets."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from exporter.cli import load
from exporter.discovery.sharding import owns
from exporter.discovery.static import (
    StaticDiscovery,
    TargetsFileError,
    load_targets_file,
    parse_targets,
)
from exporter.model import CommandLogSpec, FileLogSpec, ScrapeSpec, Target
from exporter.preflight import prepare_run
from exporter.settings import RunSettings
from exporter.state import Store
from exporter.supervisor import Supervisor

DOC = Path(__file__).resolve().parents[2] / "docs" / "static-targets.md"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def doc_example() -> str:
    text = DOC.read_text()
    return re.findall(r"```yaml\n(.*?)```", text, re.S)[0]


def test_documented_example_is_valid(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    for name in ("ca.crt", "client.crt", "client.key"):
        (pki / name).write_text("x")
    targets = load_targets_file(str(write(tmp_path / "targets.yaml", doc_example())))
    main, events = targets["etcd-main-0"], targets["etcd-events-0"]
    assert main.identity.project == "dev"
    assert main.identity.shoot == "crm"
    assert main.volume.disk_class == "hdd"  # pd.csi.storage.gke.io + pd-standard
    assert main.volume.mismatch is True
    assert main.scrape is not None
    assert main.scrape.tls is not None
    assert main.scrape.tls.ca_file == str(pki / "ca.crt")
    assert main.scrape.tls.server_name == "etcd-main-0.local"
    assert isinstance(main.log, CommandLogSpec)
    assert main.log.argv[0] == "journalctl"
    assert events.volume.disk_class == "ssd"
    assert events.log == FileLogSpec("/var/log/etcd-events.log")
    assert events.scrape == ScrapeSpec(url="http://127.0.0.1:2381/metrics")
    # pd-standard, 25Gi: 1.5 write IOPS per GiB
    assert main.volume.volume_handle.endswith("/disks/pvc-4d1d8c7e")
    assert (main.volume.capacity_bytes, main.volume.expected_write_iops) == (25 * 1024**3, 37.5)
    assert (events.volume.capacity_bytes, events.volume.expected_write_iops) == (None, None)


def test_capacity_must_be_a_quantity(tmp_path: Path) -> None:
    text = "targets:\n  - {name: a, log: {file: a.log}, capacity: 25 gigs}\n"
    with pytest.raises(TargetsFileError, match=r"targets\[0\]\.capacity: .*'25 gigs'"):
        load_targets_file(str(write(tmp_path / "t.yaml", text)))


def entry(extra: str = "") -> str:
    return f"targets:\n  - {{name: a, log: {{file: a.log}}{extra}}}\n"


def test_capacity_is_parsed_once_where_it_is_checked() -> None:
    """The validator hands the model the bytes it parsed (to_target does not parse again)."""
    assert parse_targets(entry(", capacity: 2Gi")).targets[0].capacity == 2 * 1024**3
    assert parse_targets(entry()).targets[0].capacity is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("25 gigs", "'25 gigs' is not a Kubernetes quantity"),
        ("25", "Input should be a valid string"),
    ],
)
def test_capacity_is_the_text_of_a_quantity(value: str, problem: str) -> None:
    """A YAML number is not a quantity's text: the field reads a string, as it always did."""
    with pytest.raises(TargetsFileError, match=re.escape(f"targets[0].capacity: {problem}")):
        parse_targets(entry(f", capacity: {value}"))


def test_every_problem_is_listed_with_its_key(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.yaml",
        """
targets:
  - name: a
    metrics_url: localhost:2379
  - name: b
    metrics_url: http://127.0.0.1:2379/metrics
    log: {file: x.log, command: [cat]}
    colour: blue
  - name: c
    tls: {cert_file: c.crt}
  - {log: {file: y.log}}
""",
    )
    with pytest.raises(TargetsFileError) as err:
        load_targets_file(str(path))
    problems = err.value.problems
    assert any(p.startswith("targets[0].metrics_url: expected an http(s) URL") for p in problems)
    assert any(
        p.startswith("targets[1].log: give exactly one of file or command") for p in problems
    )
    assert "targets[1].colour: Extra inputs are not permitted" in problems
    assert any(p.startswith("targets[2].tls: cert_file and key_file go together") for p in problems)
    assert "targets[3].name: Field required" in problems
    assert len(problems) == 5


def test_duplicate_names_rejected(tmp_path: Path) -> None:
    text = "targets:\n" + "".join(
        f"  - {{name: m, metrics_url: 'http://127.0.0.1:{p}/metrics'}}\n" for p in (1, 2)
    )
    with pytest.raises(TargetsFileError) as err:
        load_targets_file(str(write(tmp_path / "t.yaml", text)))
    assert err.value.problems == ["targets[1].name: duplicate 'm' (first at targets[0])"]


def test_unreadable_tls_files_named(tmp_path: Path) -> None:
    text = """
targets:
  - name: m
    metrics_url: https://127.0.0.1:2379/metrics
    tls: {ca_file: missing-ca.crt, cert_file: c.crt, key_file: /nonexistent/k.key}
"""
    with pytest.raises(TargetsFileError) as err:
        load_targets_file(str(write(tmp_path / "t.yaml", text)))
    assert err.value.problems == [
        f"targets[0].tls.ca_file: cannot read {tmp_path / 'missing-ca.crt'}",
        f"targets[0].tls.cert_file: cannot read {tmp_path / 'c.crt'}",
        "targets[0].tls.key_file: cannot read /nonexistent/k.key",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("targets: [\n", "(file): not valid YAML"),
        ("- a\n- b\n", "(file): Input should be a valid dictionary"),
        ("targets: {name: a}\n", "targets: Input should be a valid list"),
        ("targets: []\nextra: 1\n", "extra: Extra inputs are not permitted"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(TargetsFileError) as err:
        load_targets_file(str(write(tmp_path / "t.yaml", text)))
    assert err.value.problems[0].startswith(expected)


def test_missing_file_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(TargetsFileError) as err:
        load_targets_file(str(tmp_path / "absent.yaml"))
    assert err.value.problems[0].startswith("(file): cannot read")


def test_empty_file_means_no_targets(tmp_path: Path) -> None:
    assert load_targets_file(str(write(tmp_path / "t.yaml", ""))) == {}


def test_disk_class_overrides_apply_when_not_given(tmp_path: Path) -> None:
    text = """
targets:
  - {name: a, log: {file: a.log}, storage_class: local-fast, provisioner: rancher.io/local-path}
  - {name: b, log: {file: b.log}, provisioner: rancher.io/local-path}
  - {name: c, log: {file: c.log}, provisioner: rancher.io/local-path, disk_class: unknown}
"""
    overrides = {"local-fast": "ssd", "rancher.io/local-path": "hdd"}
    targets = load_targets_file(str(write(tmp_path / "t.yaml", text)), overrides=overrides)
    assert [targets[k].volume.disk_class for k in "abc"] == ["ssd", "hdd", "unknown"]
    assert targets["a"].log == FileLogSpec(str(tmp_path / "a.log"))


def test_sharding_splits_by_namespace(tmp_path: Path) -> None:
    namespaces = [f"shoot--p--s{i}" for i in range(20)]
    text = "targets:\n" + "".join(
        f"  - {{name: m{i}, namespace: {ns}, log: {{file: '-'}}}}\n"
        for i, ns in enumerate(namespaces)
    )
    path = str(write(tmp_path / "t.yaml", text))
    shard0 = load_targets_file(path, shard=0, total_shards=2)
    shard1 = load_targets_file(path, shard=1, total_shards=2)
    assert shard0
    assert shard1
    assert shard0.keys().isdisjoint(shard1.keys())
    assert len(shard0) + len(shard1) == 20
    assert all(owns(t.identity.namespace, shard=1, total_shards=2) for t in shard1.values())


class Published:
    def __init__(self) -> None:
        self.sets: list[dict[str, Target]] = []
        self.changed = asyncio.Event()

    def __call__(self, targets: Mapping[str, Target]) -> None:
        self.sets.append(dict(targets))
        self.changed.set()

    async def next(self) -> dict[str, Target]:
        async with asyncio.timeout(5):
            await self.changed.wait()
        self.changed.clear()
        return self.sets[-1]


def target_line(name: str, *, pod: str, port: int = 2379) -> str:
    url = f"http://127.0.0.1:{port}/metrics"
    return f"  - {{name: {name}, metrics_url: '{url}', pod: {pod}}}\n"


async def until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while True:
            if cond():
                return
            await asyncio.sleep(0.01)


def rewrite(path: Path, text: str) -> None:
    """Replace the file's content and make sure its mtime moves."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


@pytest.mark.looptime  # the polls and the 0.3 s of quiet on the virtual clock
async def test_run_publishes_and_rereads_on_change(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    rewrite(path, "targets:\n" + target_line("a", pod="p1"))
    published = Published()
    disc = StaticDiscovery(str(path), poll_interval=0.05)
    task = asyncio.create_task(disc.run(published))
    try:
        first = await published.next()
        assert list(first) == ["a"]
        rewrite(path, "targets:\n" + target_line("a", pod="p2") + target_line("b", pod="x"))
        second = await published.next()
        assert second["a"].identity.pod == "p2"
        assert set(second) == {"a", "b"}
        rewrite(path, "targets:\n  - {name: a, metrics_url: nope}\n")  # broken: keep last good
        await asyncio.sleep(0.3)
        assert len(published.sets) == 2
        rewrite(path, "targets:\n" + target_line("b", pod="x"))
        assert list(await published.next()) == ["b"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_reload_rereads_without_waiting_for_the_poll(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    rewrite(path, "targets:\n" + target_line("a", pod="p1"))
    published = Published()
    disc = StaticDiscovery(str(path), poll_interval=3600)
    task = asyncio.create_task(disc.run(published))
    try:
        await published.next()
        # Same size and a restored mtime: only reload() can notice the change.
        st = path.stat()
        path.write_text("targets:\n" + target_line("a", pod="p9"))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        disc.reload()
        assert (await published.next())["a"].identity.pod == "p9"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.looptime  # the polls on the virtual clock
async def test_reread_keeps_counters_of_unchanged_targets(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    rewrite(path, "targets:\n" + target_line("a", pod="p1") + target_line("b", pod="q"))
    store = Store()
    started: list[str] = []

    async def scrape(state: object, spec: ScrapeSpec) -> None:
        started.append(spec.url)
        await asyncio.Event().wait()

    async def follow(state: object, spec: object) -> None:
        await asyncio.Event().wait()

    sup = Supervisor(store=store, scrape=scrape, follow=follow)  # type: ignore[arg-type]
    disc = StaticDiscovery(str(path), poll_interval=0.05)
    task = asyncio.create_task(disc.run(sup.publish))
    try:
        await until(lambda: len(store) == 2)
        state_a = store.get("a")
        assert state_a is not None
        state_a.count_line(unparsed=False)
        rewrite(path, "targets:\n" + target_line("a", pod="p2") + target_line("b", pod="q", port=9))
        await until(lambda: len(started) >= 3)
        assert store.get("a") is state_a
        assert state_a.lines_read == 1
        assert state_a.target.identity.pod == "p2"
        assert started.count("http://127.0.0.1:2379/metrics") == 2  # a once, b's first URL once
        assert started[-1] == "http://127.0.0.1:9/metrics"
    finally:
        task.cancel()
        await sup.stop()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_prepare_run_lists_the_problems_of_every_file(tmp_path: Path) -> None:
    targets = write(tmp_path / "t.yaml", "targets:\n  - {name: a, metrics_url: nope}\n")
    overrides = write(tmp_path / "o.yaml", "standard: spinning\n")
    web = write(tmp_path / "w.yaml", "basic_auth_users: [x]\ncolour: blue\n")
    settings = load(
        RunSettings,
        "run",
        [
            "--discovery=static",
            f"--static.targets-file={targets}",
            f"--storage.disk-class-overrides-file={overrides}",
            f"--web.config.file={web}",
        ],
    )
    prepared = prepare_run(settings)
    report = prepared.report()
    assert f"invalid configuration ({len(prepared.problems)})" in report
    assert len(prepared.problems) >= 3
    assert any(
        p.startswith("--static.targets-file / ") and "targets[0].metrics_url" in p
        for p in prepared.problems
    )
    assert any(p.startswith("--storage.disk-class-overrides-file / ") for p in prepared.problems)
    assert any(p.startswith("--web.config.file / ") for p in prepared.problems)


def test_prepare_run_merges_overrides_flag_over_file(tmp_path: Path) -> None:
    targets = write(tmp_path / "t.yaml", "targets: []\n")
    overrides = write(tmp_path / "o.yaml", "standard: hdd\nlocal: hdd\n")
    settings = load(
        RunSettings,
        "run",
        [
            "--discovery=static",
            f"--static.targets-file={targets}",
            f"--storage.disk-class-overrides-file={overrides}",
            '--storage.disk-class-overrides={"local":"ssd"}',
        ],
    )
    prepared = prepare_run(settings)
    assert prepared.problems == []
    assert prepared.overrides == {"standard": "hdd", "local": "ssd"}
