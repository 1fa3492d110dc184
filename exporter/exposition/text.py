"""Exposition text: Go's float format, a Sink that writes sample lines, family headers.

Lines are written exactly as prometheus_client's encoders write them (tests compare the bytes);
each target's labels are rendered once and merged with a sample's own labels through the text
around their values that `labels.LabelBase` keeps. Both text formats share the sample lines; only
the headers differ. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from exporter.exposition.collector import Family
from exporter.exposition.labels import LabelBase, Labels, escape_value
from exporter.metrics import exposed, relayed_name
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
    """One target's lines of a relayed family, under our sample names (`names` caches them).

    The hot path of /metrics (most lines are relayed, and they change at every scrape): each
    line is assembled from shared pieces (name, the target's label text around the sample's own
    label values, the value) and joined once, instead of formatting a string per line.
    """
    out: list[str] = []
    values = go_floats([s.value for s in samples])
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


def header(family: Family, *, openmetrics: bool) -> str:
    """HELP and TYPE as prometheus_client's encoders write them: the text format 0.0.4 names the
    family by its samples (`metrics.exposed`), OpenMetrics by its bare name and type."""
    if openmetrics:
        doc = family.help.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
        return f"# HELP {family.name} {doc}\n# TYPE {family.name} {family.type}\n"
    name, type_ = exposed(family.name, family.type)
    doc = family.help.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {doc}\n# TYPE {name} {type_}\n"
