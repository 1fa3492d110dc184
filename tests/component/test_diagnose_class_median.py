"""`diagnose`'s "× class median" through its command: static targets scraped over loopback from a
local server whose histograms grow between the two scrapes, one member slow for its class."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.cli import load
from exporter.commands.diagnose.command import diagnose
from exporter.commands.diagnose.progress import Progress
from exporter.settings import DiagnoseSettings

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs" / "diagnose.schema.json").read_text())
ServerFactory = Callable[..., Awaitable[TestServer]]
BOUNDS = ("0.001", "0.002", "0.004", "0.008", "0.016", "0.032", "+Inf")
HEALTHY = [0, 500]  # 500 fsyncs in (1 ms, 2 ms]: p99 1.99 ms
OUTLIER = [0, 0, 0, 500]  # in (4 ms, 8 ms]: p99 7.96 ms, 4× its class, under etcd's 10 ms
MEMBERS = {**{f"fast-{i}": ("fast", HEALTHY) for i in range(5)},
           "fast-slow": ("fast", OUTLIER), "lonely": ("lonely", OUTLIER)}  # fmt: skip


def exposition(name: str, per_bucket: list[int]) -> str:
    """A histogram in etcd's text format: 10 old observations, plus `per_bucket`."""
    extra = per_bucket + [0] * (len(BOUNDS) - len(per_bucket))
    counts = [10 + extra[0], *extra[1:]]
    lines = [f"# TYPE {name} histogram"]
    total = 0
    for le, n in zip(BOUNDS, counts, strict=True):
        total += n
        lines.append(f'{name}_bucket{{le="{le}"}} {total}')
    lines += [f"{name}_sum 1", f"{name}_count {total}"]
    return "\n".join(lines) + "\n"


def metrics_app() -> web.Application:
    """/<member>: a run's first scrape sees 10 old fsyncs and commits, its second the window's
    too (diagnose scrapes each member twice a run)."""
    seen: defaultdict[str, int] = defaultdict(int)

    async def serve(request: web.Request) -> web.Response:
        name = request.match_info["member"]
        seen[name] += 1
        second = seen[name] % 2 == 0
        fsync = MEMBERS[name][1] if second else []
        commit = HEALTHY if second else []
        body = exposition("etcd_disk_wal_fsync_duration_seconds", fsync) + exposition(
            "etcd_disk_backend_commit_duration_seconds", commit
        )
        return web.Response(text=body, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/{member}", serve)
    return app


async def run(server: TestServer, tmp_path: Path, *extra: str) -> tuple[int, str]:
    targets = [
        {"name": name, "metrics_url": str(server.make_url(f"/{name}")),
         "namespace": "shoot--p--x", "etcd": "etcd-main", "pod": name,
         "storage_class": storage_class, "disk_class": "ssd"}
        for name, (storage_class, _) in MEMBERS.items()
    ]  # fmt: skip
    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump({"targets": targets}))
    args = ["--discovery=static", f"--static.targets-file={path}", "--window=0.2s", *extra]
    out = io.StringIO()
    code = await diagnose(
        load(DiagnoseSettings, "diagnose", args), out=out, progress=Progress(io.StringIO())
    )
    return code, out.getvalue()


async def test_a_member_slow_for_its_class_gets_the_ratio_and_the_note(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    server = await aiohttp_server(metrics_app())
    code, text = await run(server, tmp_path)
    assert code == 0  # every verdict stays ok: the class note does not change a verdict
    lines = text.splitlines()
    start = lines[0].index("× CLASS MEDIAN")
    cells = {line.split()[2]: line[start:].split()[0] for line in lines[1:8]}
    assert cells == {**{f"fast-{i}": "1.0×/1.0×" for i in range(5)},
                     "fast-slow": "4.0×/1.0×", "lonely": "—"}  # fmt: skip
    note = (
        "shoot--p--x/fast-slow: ok: WAL fsync p99 7.96ms (limit 10ms), backend commit p99 1.99ms "
    )
    reason = next(line for line in lines if line.startswith(note))
    assert reason.endswith(
        "; slow for its class: WAL fsync p99 7.96ms, 4.0× the median of 6 members on fast (1.99ms)"
    )
    assert "  remedy: the class is fine, this volume or its node is not" in text
    assert "slow for its class" not in text.replace(reason, "")  # lonely has no class median

    code, doc_text = await run(server, tmp_path, "--output=json")
    doc: dict[str, Any] = json.loads(doc_text)
    jsonschema.validate(doc, SCHEMA)
    got = {e["pod"]: e["class_median_ratio"] for e in doc["etcds"]}
    assert got["fast-slow"]["slow_for_class"] is True
    assert got["fast-slow"]["wal_fsync"]["members"] == 6
    assert round(got["fast-slow"]["wal_fsync"]["ratio"], 1) == 4.0
    assert got["fast-0"]["slow_for_class"] is False
    assert got["lonely"]["wal_fsync"] == {"ratio": None, "median_seconds": None, "members": 1,
                                          "floor_seconds": 0.005, "slow": False}  # fmt: skip


async def test_class_min_members_flag(aiohttp_server: ServerFactory, tmp_path: Path) -> None:
    server = await aiohttp_server(metrics_app())
    code, doc_text = await run(server, tmp_path, "--output=json", "--class-min-members=7")
    doc = json.loads(doc_text)
    jsonschema.validate(doc, SCHEMA)
    assert code == 0
    for etcd in doc["etcds"]:
        assert etcd["class_median_ratio"]["min_members"] == 7
        assert etcd["class_median_ratio"]["wal_fsync"]["ratio"] is None
        assert "slow for its class" not in etcd["reason"]
    code, doc_text = await run(server, tmp_path, "--output=json", "--class-min-members=1")
    lonely = next(e for e in json.loads(doc_text)["etcds"] if e["pod"] == "lonely")
    assert lonely["class_median_ratio"]["wal_fsync"]["ratio"] == 1.0  # a class of itself
