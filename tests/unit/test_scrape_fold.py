"""The apply histogram relayed summed over `op`, `success`, `version` (metrics.FOLDED, fold.py).

On captured etcd 3.5 payloads, one of a busy member (14 op/success pairs): the folded buckets,
`_sum` and `_count` are the sums over the pairs of etcd's; the layout's fast path, the full
extraction and a federation answer of the same payload give the same folded family, to the bit;
the order of the series does not change a sum.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.metrics import FOLDED, RELAYED
from exporter.model import RelayedFamily, Sample
from exporter.scrape.caches import ScrapeCaches, Shared
from exporter.scrape.extract import WANTED, extract_blocks, extract_payload
from exporter.scrape.federate import parse_federation
from exporter.scrape.fold import (
    Fold,
    FoldKey,
    apply_folds,
    fold_families,
    fold_family,
    fold_of,
)
from exporter.scrape.layout import Extractor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "metrics"
APPLY = "etcd_server_apply_duration_seconds"
BUSY = "etcd-3.5-trace-disk.metrics"
WITH_APPLY = sorted(p.name for p in FIXTURES.glob("etcd-3.5*.metrics"))


def read(name: str) -> str:
    return (FIXTURES / name).read_text()


def as_etcd_wrote(text: str) -> dict[str, RelayedFamily]:
    return {family.name: family for family, _ in extract_blocks("\n" + text, WANTED)}


def folded(text: str) -> RelayedFamily:
    return next(f for f in extract_payload(text.encode()) if f.name == APPLY)


def test_the_apply_histogram_is_folded_over_op_and_success() -> None:
    assert FOLDED == {APPLY: ("op", "success", "version")}
    assert APPLY in RELAYED


@pytest.mark.parametrize("payload", WITH_APPLY)
def test_buckets_sum_and_count_are_sums_over_the_ops(payload: str) -> None:
    raw = as_etcd_wrote(read(payload))[APPLY]
    ops = {(dict(s.labels)["op"], dict(s.labels)["success"]) for s in raw.samples}
    expected: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = defaultdict(list)
    for s in raw.samples:
        labels = dict(s.labels)
        kept = [("le", labels["le"])] if "le" in labels else []
        expected[(s.name, tuple(kept))].append(s.value)
    fam = folded(read(payload))
    got = {(s.name, s.labels): s.value for s in fam.samples}
    assert set(got) == set(expected)
    assert len(fam.samples) == len(got)  # one sample per name and label set
    for key, values in expected.items():
        assert got[key] == math.fsum(values), key
    # _count is the sum of the ops' counts (both versions), and the +Inf bucket
    counts = [s.value for s in raw.samples if s.name == APPLY + "_count"]
    count = got[(APPLY + "_count", ())]
    assert count == sum(counts)
    assert got[(APPLY + "_bucket", (("le", "+Inf"),))] == count
    if payload == BUSY:
        assert len(ops) == 14
        assert (len(raw.samples), len(fam.samples)) == (322, 23)


def test_the_folded_family_looks_like_one_histogram() -> None:
    fam = folded(read(BUSY))
    assert (fam.name, fam.type) == (APPLY, "histogram")
    assert fam.help == (
        "The latency distributions of v2 apply called by backend. "
        "Summed over op, success and version by the exporter."
    )
    assert {k for s in fam.samples for k, _ in s.labels} == {"le"}
    names = [s.name.removeprefix(APPLY) for s in fam.samples]
    assert names == ["_bucket"] * 21 + ["_sum", "_count"]  # as etcd writes a histogram
    bounds = [float(s.labels[0][1]) for s in fam.samples[:21]]
    assert bounds == sorted(bounds)
    counts = [s.value for s in fam.samples[:21]]
    assert counts == sorted(counts)  # still cumulative


def test_other_families_are_left_as_etcd_wrote_them() -> None:
    raw = as_etcd_wrote(read(BUSY))
    for fam in extract_payload(read(BUSY).encode()):
        if fam.name != APPLY:
            assert fam == raw[fam.name]
    families = tuple(f for name, f in raw.items() if name != APPLY)
    assert fold_families(families) is families


def bumped(text: str, rng: random.Random) -> str:
    """The apply histogram's values changed, often to ones of another length."""

    def new_value(m: re.Match[str]) -> str:
        return f"{m[1]} {float(m[2]) + rng.choice([0.0, 1.0, 3.0, 250.125, 1e-9])!r}"

    return re.sub(rf"(?m)^({APPLY}_\w+\{{[^}}]*\}}) (\S+)$", new_value, text)


@pytest.mark.parametrize("payload", WITH_APPLY)
def test_the_fast_path_folds_as_the_full_extraction(payload: str) -> None:
    rng = random.Random(11)
    caches = ScrapeCaches()
    extractor = Extractor(caches=caches)
    text = read(payload)
    for _ in range(12):
        body = bumped(text, rng).encode()
        assert extractor.extract(bytearray(body)) == extract_payload(body)
    assert (extractor.full, extractor.reused) == (1, 11)
    assert len(caches.folds) == 1  # worked out once, kept by the layout


class CountedFolds(Shared[FoldKey, Fold]):
    """The folds table, counting lookups."""

    __slots__ = ("lookups",)

    def __init__(self) -> None:
        super().__init__(10)
        self.lookups = 0

    def get(self, key: FoldKey) -> Fold | None:
        self.lookups += 1
        return super().get(key)


def test_learning_a_layout_looks_each_fold_up_once() -> None:
    """The full extraction folds with the fold its layout keeps: one lookup per folded family."""
    folds = CountedFolds()
    extractor = Extractor(caches=ScrapeCaches(folds=folds))
    body = read(BUSY).encode()
    assert extractor.extract(body) == extract_payload(body)
    assert extractor.full == 1
    assert folds.lookups == len(FOLDED) == 1
    assert extractor.extract(body) == extract_payload(body)  # the layout's: no lookup
    assert (extractor.reused, folds.lookups) == (1, 1)


def test_apply_folds_folds_only_what_has_a_fold() -> None:
    raw = as_etcd_wrote(read(BUSY))
    families = tuple(raw.values())
    folds = [fold_of(family) for family in families]
    assert [f.name for f, fold in zip(families, folds, strict=True) if fold] == [APPLY]
    assert apply_folds(families, folds) == fold_families(families)
    assert apply_folds(families, [None] * len(families)) is families


@settings(max_examples=200, deadline=None)
@given(
    st.randoms(use_true_random=False),
    st.lists(
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
        min_size=322,
        max_size=322,
    ),
)
def test_the_order_of_the_series_does_not_change_a_sum(
    rng: random.Random, values: list[float]
) -> None:
    raw = as_etcd_wrote(read(BUSY))[APPLY]
    samples = [Sample(s.name, s.labels, v) for s, v in zip(raw.samples, values, strict=True)]
    family = RelayedFamily(raw.name, raw.type, raw.help, tuple(samples))
    rng.shuffle(samples)
    shuffled = RelayedFamily(raw.name, raw.type, raw.help, tuple(samples))
    assert fold_family(shuffled) == fold_family(family)


def federated(text: str, namespace: str, pod: str) -> str:
    """A payload's relayed series as a Prometheus federates them: every sample name its own
    untyped family, target and external labels added, a timestamp, the series of a name in no
    particular order (as in shoot.federate, a real Prometheus 2.42 answer)."""
    lines = []
    for fam in as_etcd_wrote(text).values():
        for s in fam.samples:
            labels = [
                ("container", "etcd"),
                ("instance", ""),
                ("job", "kube-etcd3-main"),
                ("namespace", namespace),
                ("pod", pod),
                ("seed_api", "https://api.seed.example"),
                *s.labels,
            ]
            text_labels = ",".join(f'{k}="{v}"' for k, v in sorted(labels))
            lines.append((s.name, f"{s.name}{{{text_labels}}} {s.value!r} 1700000000000"))
    random.Random(5).shuffle(lines)
    lines.sort(key=lambda line: line[0])
    out = []
    for name in dict.fromkeys(name for name, _ in lines):
        out.append(f"# TYPE {name} untyped")
        out += [line for n, line in lines if n == name]
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("payload", WITH_APPLY)
def test_a_federation_answer_folds_as_a_direct_scrape(payload: str) -> None:
    text = read(payload)
    answer = parse_federation(federated(text, "shoot--p1--a", "etcd-main-0"))
    assert answer.malformed == 0
    assert answer.families("shoot--p1--a", "etcd-main-0") == extract_payload(text.encode())


def test_members_with_the_same_series_share_one_fold() -> None:
    text = read(BUSY)
    two = federated(text, "shoot--p1--a", "etcd-main-0") + federated(
        text, "shoot--p1--a", "etcd-main-1"
    )
    folds = Shared[FoldKey, Fold](10)
    answer = parse_federation(two, own=Shared(4096), folds=folds)
    a, b = (
        next(f for f in answer.families("shoot--p1--a", pod) if f.name == APPLY)
        for pod in ("etcd-main-0", "etcd-main-1")
    )
    assert len(folds) == 1
    assert a == b
    assert all(x.labels is y.labels for x, y in zip(a.samples, b.samples, strict=True))


@pytest.mark.parametrize(
    ("values", "summed"),
    [
        ([math.inf, 1.0], math.inf),
        ([math.inf, -math.inf], math.nan),
        ([math.nan, 1.0], math.nan),
        ([1e308, 1e308], math.inf),
        ([-1e308, -1e308], -math.inf),
    ],
)
def test_values_that_do_not_add_up_give_nan_or_infinity(values: list[float], summed: float) -> None:
    family = RelayedFamily(
        APPLY,
        "histogram",
        "",
        tuple(
            Sample(APPLY + "_count", (("op", op), ("success", "true"), ("version", "v3")), v)
            for op, v in zip(("Put", "Range"), values, strict=True)
        ),
    )
    (sample,) = fold_family(family).samples
    assert sample.labels == ()
    assert repr(sample.value) == repr(summed)
    assert fold_family(family).help == "Summed over op, success and version by the exporter."


def test_a_summary_is_not_folded() -> None:
    family = RelayedFamily(
        APPLY,
        "summary",
        "",
        (Sample(APPLY, (("op", "Put"), ("quantile", "0.5")), 0.1),),
    )
    assert fold_family(family) is family
