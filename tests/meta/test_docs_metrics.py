"""docs/metrics.md against exporter/metrics.py and the relayed families of a real etcd payload."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exporter import metrics as m
from exporter.scrape.extract import extract_families

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "metrics.md").read_text()
OWN, RELAYED_PART = DOC.split("## Relayed etcd metrics", 1)
PAYLOAD = (ROOT / "tests" / "fixtures" / "metrics" / "etcd-3.5.metrics").read_text()
SHORTHAND = {"identity": m.IDENTITY_LABELS, "volume": m.VOLUME_LABELS}


def rows(text: str) -> dict[str, tuple[str, set[str], str]]:
    """Table rows `| `name` | type | labels | help |` → name: (type, labels, help)."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not re.fullmatch(r"`etcd_latency_\w+`", cells[0]):
            continue
        labels: set[str] = set()
        for token in filter(None, (t.strip() for t in cells[2].split(","))):
            labels.update(SHORTHAND.get(token, (token,)))
        out[cells[0].strip("`")] = (cells[1], labels, cells[3])
    return out


RELAYED_NAMES = {m.relayed_name(n) for n in m.RELAYED_WITH_VOLUME + m.RELAYED}


@pytest.mark.parametrize("defn", m.DEFINITIONS, ids=lambda d: d.name)
def test_every_definition_is_documented_as_defined(defn: m.MetricDef) -> None:
    name, type_ = defn.exposed  # the suffix rules the renderer writes the headers with
    documented = rows(OWN)
    assert name in documented, f"{name} missing from docs/metrics.md"
    assert documented[name] == (type_, set(defn.labels), defn.help)


def test_every_documented_metric_is_defined() -> None:
    assert set(rows(OWN)) == {d.exposed[0] for d in m.DEFINITIONS}


def test_relayed_table_is_the_relayed_list() -> None:
    documented = rows(RELAYED_PART)
    assert set(documented) == RELAYED_NAMES
    for etcd_name in m.RELAYED_WITH_VOLUME + m.RELAYED:
        assert f"`{etcd_name}`" in documented[m.relayed_name(etcd_name)][2]


def test_relayed_types_and_labels_are_etcds() -> None:
    documented = rows(RELAYED_PART)
    for fam in extract_families(PAYLOAD):
        type_, labels, _ = documented[m.relayed_name(fam.name)]
        assert type_ == fam.type, fam.name
        own = {k for s in fam.samples for k, _ in s.labels}
        extra = set(m.VOLUME_LABELS) if fam.name in m.RELAYED_WITH_VOLUME else set()
        assert labels == set(m.IDENTITY_LABELS) | extra | own, fam.name


def test_no_stale_names_anywhere_in_the_page() -> None:
    known = {d.exposed[0] for d in m.DEFINITIONS} | RELAYED_NAMES
    mentioned = set(re.findall(r"`(etcd_latency_\w+)`", DOC))
    assert mentioned <= known, mentioned - known
