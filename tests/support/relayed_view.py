"""One member's relayed families as an exposition shows them, for comparing two scrape sources.

`relayed_view(text, namespace, pod)` reads an exposition (the daemon's /metrics) and keeps, per
relayed family: its TYPE, its HELP, the label names of the member's samples, and each sample's
value keyed by its name and etcd's own labels (identity and volume labels left out, since they
say who the member is, not what etcd sent). `direct_view(families, …)` gives the same view of
families as the collector exposes them after a direct scrape of etcd.
"""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter import metrics as m
from exporter.exposition.handler import make_registry
from exporter.model import Identity, RelayedFamily, ScrapeSpec, Target, Volume
from exporter.state import Store

SampleKey = tuple[str, frozenset[tuple[str, str]]]
View = dict[str, tuple[str, str, frozenset[frozenset[str]], dict[SampleKey, float]]]
Shape = dict[str, tuple[str, str, frozenset[frozenset[str]], frozenset[SampleKey]]]

RELAYED_NAMES = frozenset(
    name
    for etcd_name in m.RELAYED_WITH_VOLUME + m.RELAYED
    for name in (m.relayed_name(etcd_name), m.relayed_name(etcd_name).removesuffix("_total"))
)
WHO = frozenset(m.IDENTITY_LABELS) | frozenset(m.VOLUME_LABELS)


def relayed_view(text: str, namespace: str, pod: str) -> View:
    """name → (type, HELP, label names, {(sample name, own labels): value}) of the member."""
    out: View = {}
    for fam in text_string_to_metric_families(text):
        if fam.name not in RELAYED_NAMES:
            continue
        mine = [
            s
            for s in fam.samples
            if (s.labels.get("namespace"), s.labels.get("pod")) == (namespace, pod)
        ]
        if not mine:
            continue
        keys = frozenset(frozenset(s.labels) for s in mine)
        values = {
            (s.name, frozenset((k, v) for k, v in s.labels.items() if k not in WHO)): s.value
            for s in mine
        }
        out[fam.name] = (fam.type, fam.documentation, keys, values)
    return out


def direct_view(families: tuple[RelayedFamily, ...], namespace: str, pod: str) -> View:
    """The view of `families` scraped directly from the member's etcd, as the collector exposes
    them."""
    store = Store()
    target = Target(
        key=f"{namespace}/{pod}",
        identity=Identity(namespace=namespace, project="p", shoot="s", etcd="etcd-main", pod=pod),
        volume=Volume(pvc="c", pv="v", storage_class="s", disk_class="ssd"),
        scrape=ScrapeSpec(url="https://10.0.0.1:2379/metrics"),
    )
    store.upsert(target).record_scrape_success(families, duration=0.01)
    registry = make_registry(store, shard=0, total_shards=1, exporter_metrics=False)
    return relayed_view(generate_latest(registry).decode(), namespace, pod)


def shape(
    view: View,
) -> dict[str, tuple[str, str, frozenset[frozenset[str]], frozenset[SampleKey]]]:
    """The view without values: what must be equal between two sources read at other moments."""
    return {name: (t, h, keys, frozenset(values)) for name, (t, h, keys, values) in view.items()}
