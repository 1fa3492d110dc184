"""Relayed lines through a family shape's template are the lines assembled one by one.

`RelayedText` renders a family with a shape (`model.Shape`) by joining the pieces its template
picks; the template is traced from `_assemble`, the one rule for a relayed line's text. These
tests compare the two on random families and targets: label values with every character the
text formats escape, markers the tracing uses, own labels that clash with ours, a target without
labels, and one shape rendered for many targets.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.exposition import text as tx
from exporter.exposition.labels import LabelBase
from exporter.exposition.text import RelayedText, Template, relayed_lines
from exporter.model import RelayedFamily, Sample, Shape

NAME = "etcd_network_peer_round_trip_time_seconds"
VALUES = st.sampled_from(
    ["", "x", "0.001", "+Inf", '"', "\\", "\n", "{", "}", "%s", "{0}", "\x00", "\x00b1\x00",
     "\x00v0\x00", "π", "a,b=c"]
)  # fmt: skip
TEXTS = st.lists(VALUES, min_size=1, max_size=3).map("".join)
OWN_KEYS = st.sampled_from(["le", "To", "pod", "namespace", "zz", "a"])  # pod, namespace clash
OURS = ("namespace", "project", "shoot", "etcd", "pod")
SAMPLE = st.builds(
    Sample,
    st.sampled_from([NAME + "_bucket", NAME + "_sum", NAME + "_count", NAME]),
    st.dictionaries(OWN_KEYS, TEXTS, max_size=3).map(lambda d: tuple(d.items())),
    st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, 1e6, 2147483648.0]),
)
BASE = st.one_of(
    st.just(()),
    st.tuples(*[TEXTS] * len(OURS)).map(lambda v: tuple(zip(OURS, v, strict=True))),
)


def family(samples: list[Sample], shape: Shape | None) -> RelayedFamily:
    return RelayedFamily(NAME, "histogram", "h", tuple(samples), shape)


def assembled(fams: list[RelayedFamily], bases: list[LabelBase]) -> list[str]:
    return [relayed_lines(base, fam.samples, {}) for fam, base in zip(fams, bases, strict=True)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(SAMPLE, max_size=8),
    st.lists(BASE, min_size=1, max_size=4),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=8, max_size=8),
)
def test_a_shape_renders_as_its_lines_assembled_for_every_target(
    samples: list[Sample], bases: list[tuple[tuple[str, str], ...]], values: list[float]
) -> None:
    shape = Shape()
    text = RelayedText()
    labels = [LabelBase(pairs) for pairs in bases]
    for i, base in enumerate(labels):  # one shape, each target with other values
        moved = [Sample(s.name, s.labels, values[(i + n) % 8]) for n, s in enumerate(samples)]
        fams = [family(moved, shape), family(moved, None)]
        assert list(text.lines(fams, [base, base])) == assembled(fams, [base, base])
    if samples:
        assert None not in text._shapes.values()  # the templates' path, not the fallback


def test_one_template_per_sample_and_label_names_whatever_the_label_values() -> None:
    # the peer round-trip histograms of two clusters: the same names, other peers
    shapes = [Shape(), Shape()]
    text = RelayedText()
    ident = [LabelBase(tuple((k, f"v{i}") for k in OURS)) for i in range(3)]
    for peer, shape in zip(("a1", "b2"), shapes, strict=True):
        samples = [
            Sample(NAME + "_bucket", (("To", peer), ("le", "1")), 1.0),
            Sample(NAME + "_sum", (("To", peer),), 2.5),
        ]
        for base in ident:
            fam = family(samples, shape)
            assert list(text.lines([fam], [base])) == assembled([fam], [base])
    assert len(text._templates) == 1
    other = LabelBase((("namespace", "n"),))  # other label names: another template
    fam = family(samples, shapes[0])
    assert list(text.lines([fam], [other])) == assembled([fam], [other])
    assert len(text._templates) == 2


def test_a_label_value_holding_a_marker_goes_through_the_template() -> None:
    samples = (Sample(NAME + "_bucket", (("To", "x\x00b0\x00y\x00v0\x00"),), 1.0),)
    base = LabelBase((("namespace", "n"),))
    assert Template.of(base, samples, {}) is not None
    fam = family(list(samples), Shape())
    assert list(RelayedText().lines([fam], [base])) == assembled([fam], [base])


def test_templates_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tx, "TEMPLATES_MAX", 3)
    monkeypatch.setattr(tx, "SHAPES_MAX", 2)
    text = RelayedText()
    base = LabelBase((("namespace", "n"),))
    for n in range(10):
        samples = [Sample(NAME, (), 1.0)] * (n + 1)  # another structure each time
        fam = family(samples, Shape())
        assert list(text.lines([fam], [base])) == assembled([fam], [base])
        assert len(text._templates) <= 3
        assert len(text._shapes) <= 2
