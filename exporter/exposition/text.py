"""Exposition text: Go's float format, a Sink that writes sample lines, family headers.

Lines are written exactly as prometheus_client's encoders write them (tests compare the bytes);
each target's labels are rendered once and merged with a sample's own labels through the text
around their values that `labels.LabelBase` keeps. Both text formats share the sample lines; only
the headers differ. Pure; no I/O.
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


# Markers `_Traced` puts where a target's label text goes (`b<n>`) and `Template.of` where a value
# goes (`v<n>`); a family whose own text holds one is assembled without a template.
_MARKER = re.compile("\x00([bv])([0-9]+)\x00")


class _Traced:
    """A target's labels as `_assemble` reads them, each text replaced by a marker: the label
    texts a template takes from each target, in the order of `refs`."""

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


@dataclass(frozen=True, slots=True, eq=False)
class Template:
    """A family shape's lines under one set of target label names, as the order in which to join
    the target's label texts (its labels alone, then the `pieces` of each of `keysets`), the value
    texts and the template's own `literals` (names, own label values, punctuation).

    Rendering joins what `pick` (an itemgetter, in C) picks from those: about a third of
    `_assemble`'s time for a histogram of one own label, two fifths for one of two (the peer
    round-trip histogram), where `_assemble` does a few steps of Python per line."""

    keysets: tuple[tuple[str, ...], ...]
    literals: tuple[str, ...]
    pick: Callable[[tuple[str, ...]], tuple[str, ...]]

    @classmethod
    def of(
        cls, base: LabelBase, samples: Sequence[RelayedSample], names: dict[str, str]
    ) -> Template | None:
        """The template of `samples`' names and labels under `base`'s label names, traced from
        `_assemble`; None where a label value holds a marker."""
        traced = _Traced(base)
        marked = [f"\x00v{i}\x00" for i in range(len(samples))]
        parts = _MARKER.split(_assemble(traced, samples, names, marked))
        literals: list[str] = []
        order: list[int] = []
        first_literal = traced.refs + len(samples)
        for at in range(0, len(parts), 3):
            if parts[at]:
                order.append(first_literal + len(literals))
                literals.append(parts[at])
            if at + 1 < len(parts):
                number = int(parts[at + 2])
                order.append(number if parts[at + 1] == "b" else traced.refs + number)
        if len(order) < 2:  # itemgetter of one index gives the item, not a tuple
            return None
        template = cls(tuple(traced.keysets), tuple(literals), itemgetter(*order))
        # The literals are the family's own label values and names: one holding a marker has
        # split where no marker was put, which value texts other than the markers show.
        plain = [str(i) for i in range(len(samples))]
        if template.render(base, plain) != _assemble(base, samples, names, plain):
            return None
        return template

    def render(self, base: LabelBase, values: Sequence[str]) -> str:
        """The lines under `base`'s labels with the value texts `values`."""
        texts = [base.text]
        for keys in self.keysets:
            texts += base.pieces(keys).texts
        return "".join(self.pick((*texts, *values, *self.literals)))


TEMPLATES_MAX = 4096  # shapes × label-name sets; a peer round-trip histogram's is about 5 kB


class RelayedText:
    """Targets' relayed families as text: the lines of a family with a shape (`model.Shape`)
    through the shape's `Template` for the target's label names, built at the first family of
    that shape; the lines of any other family assembled one by one (`_assemble`). Either way the
    text is the same; the templates are kept here, bounded (emptied when full)."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._templates: dict[tuple[Shape, tuple[str, ...]], Template | None] = {}

    def lines(self, families: Sequence[RelayedFamily], bases: Sequence[LabelBase]) -> Iterator[str]:
        """Each family's lines under its base, in order (every value formatted at once)."""
        values = go_floats([s.value for family in families for s in family.samples])
        at = 0
        for family, base in zip(families, bases, strict=True):
            count = len(family.samples)
            texts = values[at : at + count]
            at += count
            template = None if family.shape is None else self._template(family, base)
            if template is None:
                yield _assemble(base, family.samples, self._names, texts)
            else:
                yield template.render(base, texts)

    def _template(self, family: RelayedFamily, base: LabelBase) -> Template | None:
        assert family.shape is not None
        key = (family.shape, base.names)
        try:
            return self._templates[key]
        except KeyError:
            if len(self._templates) >= TEMPLATES_MAX:
                self._templates.clear()
            found = self._templates[key] = Template.of(base, family.samples, self._names)
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
