"""Exposition text: Go's float format, a Sink that writes sample lines, family headers.

Lines are written exactly as prometheus_client's encoders write them (tests compare the bytes);
each target's labels are rendered once and merged with a sample's own labels through the text
around their values that `labels.LabelBase` keeps. A relayed family with a shape (`model.Shape`)
renders through a `Template` traced from the same rule (`RelayedText`). Both text formats share
the sample lines; only the headers differ. Pure; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Protocol

from exporter.exposition.collector import Family
from exporter.exposition.labels import LabelBase, Labels, Pieces, escape_value
from exporter.metrics import exposed, relayed_name
from exporter.model import RelayedFamily, Shape
from exporter.model import Sample as RelayedSample


def go_float(value: float) -> str:
    """prometheus_client's floatToGoString, minus its redundant checks (the hot path)."""
    text = repr(float(value))
    if text[-1] in "fn":  # inf, -inf, nan
        return {"inf": "+Inf", "-inf": "-Inf"}.get(text, "NaN")
    dot = text.find(".")
    if dot > 6 and value > 0:  # Go switches to exponents sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def go_floats(values: Sequence[float]) -> list[str]:
    """`go_float` of many values: `repr` in C for the common case, go_float for the rest."""
    floats = list(map(float, values))
    texts = list(map(repr, floats))
    for i, value in enumerate(floats):
        if not -1e6 < value < 1e6:  # Go's exponent form from 1e6 up, and inf/nan
            texts[i] = go_float(value)
    return texts


class TextSink:
    """Collects sample lines per family, in the order the families came."""

    def __init__(self) -> None:
        self._heads: dict[str, Family] = {}
        self._lines: dict[str, list[str]] = {}
        self._names: dict[str, str] = {}

    def add(self, family: Family, sample: str, base: LabelBase, own: Labels, value: float) -> None:
        """One sample line, labels rendered through the target's cached LabelBase."""
        lines = self._lines_of(family)
        labels = base.render(own)
        if labels:
            lines.append(f"{sample}{{{labels}}} {go_float(value)}\n")
        else:
            lines.append(f"{sample} {go_float(value)}\n")

    def add_relayed(
        self, family: Family, base: LabelBase, samples: tuple[RelayedSample, ...]
    ) -> None:
        """One target's samples of a relayed family: one list lookup, names renamed once."""
        self._lines_of(family).append(relayed_lines(base, samples, self._names))

    def _lines_of(self, family: Family) -> list[str]:
        """The family's list of lines, begun (and its head kept) at its first sample."""
        lines = self._lines.get(family.name)
        if lines is None:
            self._heads[family.name] = family
            lines = self._lines[family.name] = []
        return lines

    def chunks(self) -> list[tuple[Family, bytes]]:
        """Each family's lines as one UTF-8 chunk, in the order the families came."""
        return [(self._heads[n], "".join(lines).encode()) for n, lines in self._lines.items()]


def relayed_lines(base: LabelBase, samples: Sequence[RelayedSample], names: dict[str, str]) -> str:
    """One target's lines of a relayed family, under our sample names (`names` caches them)."""
    return _assemble(base, samples, names, go_floats([s.value for s in samples]))


class LabelText(Protocol):
    """What `_assemble` reads of a target's labels: `LabelBase`, or `_Traced`'s stand-in."""

    @property
    def text(self) -> str: ...

    def pieces(self, keys: tuple[str, ...]) -> Pieces: ...


def _assemble(
    base: LabelText, samples: Sequence[RelayedSample], names: dict[str, str], values: Sequence[str]
) -> str:
    """The lines of `samples` under `base`'s labels, with the value texts `values`: the one rule
    for a relayed line's text, which `Template`s are traced from.

    The hot path of /metrics where a family has no template (most lines are relayed, and they
    change at every scrape): each line is assembled from shared pieces (name, the target's label
    text around the sample's own label values, the value) and joined once, instead of formatting
    a string per line.
    """
    out: list[str] = []
    for s, value in zip(samples, values, strict=True):
        name = names.get(s.name)
        if name is None:
            name = names[s.name] = relayed_name(s.name)
        own = s.labels
        if len(own) == 1:
            texts = base.pieces((own[0][0],)).texts
            out += (name, "{", texts[0], escape_value(own[0][1]), texts[1], "} ", value, "\n")
        elif own:
            pieces = base.pieces(tuple([k for k, _ in own]))
            out += (name, "{", pieces.texts[0])
            for text, slot in zip(pieces.texts[1:], pieces.order, strict=True):
                out += (escape_value(own[slot][1]), text)
            out += ("} ", value, "\n")
        elif base.text:
            out += (name, "{", base.text, "} ", value, "\n")
        else:
            out += (name, " ", value, "\n")
    return "".join(out)


# Markers put where a target's label texts go (`b<n>`, by `_Traced`), a sample's own label values
# (`o<n>`) and the values (`v<n>`), to trace a template from `_assemble`.
_MARKER = re.compile("\x00([bov])([0-9]+)\x00")


class _Traced:
    """A target's labels as `_assemble` reads them, each text replaced by a marker `b<n>`: its
    labels alone (0), then the `pieces` of each of `keysets` in turn; `refs` markers in all."""

    def __init__(self, base: LabelBase) -> None:
        self._base = base
        self._pieces: dict[tuple[str, ...], Pieces] = {}
        self.keysets: list[tuple[str, ...]] = []
        self.refs = 1  # marker 0 is the text of the target's labels alone
        self.text = "\x00b0\x00" if base.text else ""

    def pieces(self, keys: tuple[str, ...]) -> Pieces:
        found = self._pieces.get(keys)
        if found is None:
            real = self._base.pieces(keys)
            marks = tuple(f"\x00b{self.refs + i}\x00" for i in range(len(real.texts)))
            found = self._pieces[keys] = Pieces(marks, real.order)
            self.keysets.append(keys)
            self.refs += len(marks)
        return found


def own_values(samples: Sequence[RelayedSample]) -> tuple[str, ...]:
    """The samples' own label values, escaped, in the order a `Template` takes them."""
    return tuple([escape_value(value) for s in samples for _, value in s.labels])


@dataclass(frozen=True, slots=True, eq=False)
class Template:
    """The lines of samples with given names and own label names, under a target with given
    label names: the order in which to join the target's label texts (its labels alone, then the
    `pieces` of each of `keysets`), the samples' own label values (`own_values`), the value
    texts, and the template's `literals` (sample names, label names, punctuation).

    Rendering joins what `pick` (an itemgetter, in C) picks from those: about a third of
    `_assemble`'s time for a histogram of one own label, two fifths for one of two (the peer
    round-trip histogram), where `_assemble` does a few steps of Python per line. Label values
    are not in the template, so the members of every etcd cluster share one, whatever their
    peers' IDs."""

    keysets: tuple[tuple[str, ...], ...]
    literals: tuple[str, ...]
    pick: Callable[[tuple[str, ...]], tuple[str, ...]]

    @classmethod
    def of(
        cls, base: LabelBase, samples: Sequence[RelayedSample], names: dict[str, str]
    ) -> Template | None:
        """The template of `samples`' names and own label names under `base`'s label names,
        traced from `_assemble`; None where it would not give `_assemble`'s text."""
        traced = _Traced(base)
        marked: list[RelayedSample] = []
        own = 0
        for s in samples:
            labels = tuple([(k, f"\x00o{own + i}\x00") for i, (k, _) in enumerate(s.labels)])
            marked.append(RelayedSample(s.name, labels, 0.0))
            own += len(labels)
        values = [f"\x00v{i}\x00" for i in range(len(samples))]
        parts = _MARKER.split(_assemble(traced, marked, names, values))
        first = {"b": 0, "o": traced.refs, "v": traced.refs + own}
        first_literal = traced.refs + own + len(samples)
        literals: list[str] = []
        order: list[int] = []
        for at in range(0, len(parts), 3):
            if parts[at]:
                order.append(first_literal + len(literals))
                literals.append(parts[at])
            if at + 1 < len(parts):
                order.append(first[parts[at + 1]] + int(parts[at + 2]))
        if len(order) < 2:  # itemgetter of one index gives the item, not a tuple
            return None
        template = cls(tuple(traced.keysets), tuple(literals), itemgetter(*order))
        # A sample or label name holding a marker (none can: they are Prometheus names) would
        # have split where no marker was put: checked, as it costs little once per template.
        plain = [str(i) for i in range(len(samples))]
        if template.render(base, own_values(samples), plain) != _assemble(
            base, samples, names, plain
        ):
            return None
        return template

    def render(self, base: LabelBase, own: tuple[str, ...], values: Sequence[str]) -> str:
        """The lines under `base`'s labels with the own label values `own` (`own_values`) and
        the value texts `values`."""
        texts = [base.text]
        for keys in self.keysets:
            texts += base.pieces(keys).texts
        return "".join(self.pick((*texts, *own, *values, *self.literals)))


# Templates by sample and label names (one per etcd version, cluster size and label-name set),
# and each shape's template and own label values (about 670 bytes for a peer round-trip
# histogram): bounded, emptied when full.
TEMPLATES_MAX = 1024
SHAPES_MAX = 16384

Structure = tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]


class RelayedText:
    """Targets' relayed families as text: the lines of a family with a shape (`model.Shape`)
    through the `Template` of its sample and label names, traced at the first family of that
    shape; the lines of any other family assembled one by one (`_assemble`). Either way the text
    is the same."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._templates: dict[Structure, Template | None] = {}
        self._shapes: dict[tuple[Shape, tuple[str, ...]], tuple[Template, tuple[str, ...]] | None]
        self._shapes = {}

    def lines(self, families: Sequence[RelayedFamily], bases: Sequence[LabelBase]) -> Iterator[str]:
        """Each family's lines under its base, in order (every value formatted at once)."""
        values = go_floats([s.value for family in families for s in family.samples])
        at = 0
        for family, base in zip(families, bases, strict=True):
            count = len(family.samples)
            texts = values[at : at + count]
            at += count
            found = None if family.shape is None else self._of(family.shape, family.samples, base)
            if found is None:
                yield _assemble(base, family.samples, self._names, texts)
            else:
                yield found[0].render(base, found[1], texts)

    def _of(
        self, shape: Shape, samples: Sequence[RelayedSample], base: LabelBase
    ) -> tuple[Template, tuple[str, ...]] | None:
        """The template and own label values of `shape` (whose samples are `samples`) under
        `base`'s label names, None where there is no template."""
        key = (shape, base.names)
        try:
            return self._shapes[key]
        except KeyError:
            pass
        structure: Structure = (
            base.names,
            tuple([(s.name, tuple([k for k, _ in s.labels])) for s in samples]),
        )
        if structure in self._templates:
            template = self._templates[structure]
        else:
            if len(self._templates) >= TEMPLATES_MAX:
                self._templates.clear()
            template = self._templates[structure] = Template.of(base, samples, self._names)
        if len(self._shapes) >= SHAPES_MAX:
            self._shapes.clear()
        found = self._shapes[key] = None if template is None else (template, own_values(samples))
        return found


def header(family: Family, *, openmetrics: bool) -> str:
    """HELP and TYPE as prometheus_client's encoders write them: the text format 0.0.4 names the
    family by its samples (`metrics.exposed`), OpenMetrics by its bare name and type."""
    if openmetrics:
        doc = family.help.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
        return f"# HELP {family.name} {doc}\n# TYPE {family.name} {family.type}\n"
    name, type_ = exposed(family.name, family.type)
    doc = family.help.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {doc}\n# TYPE {name} {type_}\n"
