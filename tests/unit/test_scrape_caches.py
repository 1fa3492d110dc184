"""The scrape caches are one object the composition root owns: what shares it shares, what is
given none gets the same results and shares nothing."""

from __future__ import annotations

from pathlib import Path

from exporter.metrics import FOLDED
from exporter.scrape.caches import ScrapeCaches, Shared
from exporter.scrape.extract import LABEL_CACHE_TEXT_MAX, extract_families, extract_payload
from exporter.scrape.federate import parse_federation
from exporter.scrape.fold import Fold, FoldKey
from exporter.scrape.layout import Extractor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PAYLOAD = (FIXTURES / "metrics" / "etcd-3.5.metrics").read_text()
ANSWER = (FIXTURES / "federate" / "shoot.federate").read_text()


def label_sets(text: str, **kwargs: object) -> list[tuple[tuple[str, str], ...]]:
    families = extract_families(text, **kwargs)  # type: ignore[arg-type]
    return [s.labels for f in families for s in f.samples if s.labels]


def test_scrapes_share_label_sets_through_the_table() -> None:
    table = Shared[str, tuple[tuple[str, str], ...]](1000)
    folds = Shared[FoldKey, Fold](10)  # the folded families' label sets are their fold's
    first = label_sets(PAYLOAD, labels=table, folds=folds)
    second = label_sets(PAYLOAD, labels=table, folds=folds)
    assert first
    assert first == second
    assert all(a is b for a, b in zip(first, second, strict=True))
    assert len(table) > 0
    assert len(folds) == len(FOLDED)


def test_without_a_table_the_same_label_sets_none_shared() -> None:
    first, second = label_sets(PAYLOAD), label_sets(PAYLOAD)
    assert first == second == label_sets(PAYLOAD, labels=Shared(1000))
    assert not any(a is b for a, b in zip(first, second, strict=True))


def test_long_label_texts_are_parsed_but_not_kept() -> None:
    long_value = "x" * (LABEL_CACHE_TEXT_MAX + 10)
    text = f'# TYPE etcd_server_has_leader gauge\netcd_server_has_leader{{peer="{long_value}"}} 1\n'
    table = Shared[str, tuple[tuple[str, str], ...]](1000)
    (fam,) = extract_families(text, labels=table)
    assert fam.samples[0].labels == (("peer", long_value),)
    assert len(table) == 0


def test_shared_stops_adding_or_starts_over_when_full() -> None:
    keep = Shared[str, int](2)
    for i in range(4):
        assert keep.put(str(i), i) == i
    assert (keep.get("0"), keep.get("1"), keep.get("3"), len(keep)) == (0, 1, None, 2)
    again = Shared[str, int](2, reset_when_full=True)
    for i in range(3):
        again.put(str(i), i)
    assert (again.get("0"), again.get("2"), len(again)) == (None, 2, 1)


def test_extractors_of_one_process_share_their_layout_pieces() -> None:
    caches = ScrapeCaches()
    a, b = Extractor(caches=caches), Extractor(caches=caches)
    body = PAYLOAD.encode()
    assert a.extract(body) == b.extract(body) == extract_payload(body)
    assert len(caches.headers) > 0
    assert len(caches.lines) > 0
    assert a._layout is not None
    assert b._layout is not None
    for pa, pb in zip(a._layout.places, b._layout.places, strict=True):
        assert pa.header is pb.header
        assert pa.lines is pb.lines
        assert pa.pattern is pb.pattern
    alone = Extractor()
    assert alone.extract(body) == a.extract(body)
    assert alone._layout is not None
    assert alone._layout.places[0].lines is not a._layout.places[0].lines


def test_federation_members_share_their_own_label_sets() -> None:
    own = Shared[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]](4096)
    folds = Shared[FoldKey, Fold](10)
    shared = parse_federation(ANSWER, own=own, folds=folds)
    assert shared.members == parse_federation(ANSWER).members
    by_labels: dict[tuple[tuple[str, str], ...], int] = {}
    for families in shared.members.values():
        for family in families:
            for sample in family.samples:
                if sample.labels and family.name not in FOLDED:
                    assert own.get(sample.labels) is sample.labels
                    by_labels[sample.labels] = id(sample.labels)
    assert by_labels
    # the two members on etcd 3.5 (the same apply series) share one fold, hence its label sets
    main, events = (
        next(f for f in shared.families("shoot--p1--a", pod) if f.name in FOLDED)
        for pod in ("etcd-main-0", "etcd-events-0")
    )
    assert len(folds) == 1
    assert all(a.labels is b.labels for a, b in zip(main.samples, events.samples, strict=True))
