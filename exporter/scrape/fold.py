"""Relayed families summed over some of etcd's labels (`metrics.FOLDED`). Pure.

etcd's apply histogram has one histogram per request type and outcome (`op`, `success`): relayed
as is, it would be the largest relayed family of a busy member (see `metrics.FOLDED`). It is
relayed summed over those labels instead: per remaining label set and sample name, the buckets,
`_sum` and `_count` of every op and outcome added up, under etcd's name and type, with a HELP that
says so.

The three readers of a member's families, the full extraction, the layout's fast path and the
federation answer, fold through the same `Fold`: worked out once per set of series (which folded
sample each series adds to), shared by the members that have that set (`ScrapeCaches.folds`),
then applied to each scrape's values without looking at a label. The sums are `math.fsum`'s,
exact whatever the order of the series, so that a direct scrape and a federation answer, which
list the series in different orders, give the same values to the bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from exporter.metrics import FOLDED
from exporter.model import RelayedFamily, Sample, Shape
from exporter.scrape.caches import Shared

Labels = tuple[tuple[str, str], ...]
# What a family's fold depends on: its name, type, HELP, and its samples' names and labels.
FoldKey = tuple[str, str, str, tuple[tuple[str, Labels], ...]]

_SUFFIX_RANK = {"_bucket": 0, "_sum": 1, "_count": 2}


@dataclass(frozen=True, slots=True, eq=False)
class Fold:
    """How the samples of one family fold: the folded family's name, type and HELP, its samples'
    names and labels (`outputs`), and for each sample of the family, in order, the index of the
    folded sample it adds to (`slots`); the folded families' `shape` stands for `outputs`."""

    name: str
    type: str
    help: str
    outputs: tuple[tuple[str, Labels], ...]
    slots: tuple[int, ...]
    shape: Shape = field(default_factory=Shape)

    def apply(self, values: Sequence[float]) -> RelayedFamily:
        """The folded family of a family whose samples' values are `values` (in the order of the
        samples this fold was worked out from)."""
        parts: list[list[float]] = [[] for _ in self.outputs]
        for slot, value in zip(self.slots, values, strict=True):
            parts[slot].append(value)
        samples = tuple(
            [
                Sample(name, labels, _sum(part))
                for (name, labels), part in zip(self.outputs, parts, strict=True)
            ]
        )
        return RelayedFamily(self.name, self.type, self.help, samples, self.shape)


def folded_help(help_: str, dropped: Sequence[str]) -> str:
    """etcd's HELP of a folded family, saying what the exporter summed over."""
    note = f"Summed over {_listed(dropped)} by the exporter."
    return f"{help_} {note}" if help_ else note


def fold_of(family: RelayedFamily, folds: Shared[FoldKey, Fold] | None = None) -> Fold | None:
    """The fold of `family`, None when it is not folded: not in `metrics.FOLDED`, or a summary
    (quantiles do not add up). Shared through `folds` when given."""
    dropped = FOLDED.get(family.name)
    if dropped is None or family.type == "summary":
        return None
    if folds is None:
        return _plan(family, dropped)
    key: FoldKey = (
        family.name,
        family.type,
        family.help,
        tuple([(s.name, s.labels) for s in family.samples]),
    )
    found = folds.get(key)
    return found if found is not None else folds.put(key, _plan(family, dropped))


def fold_families(
    families: tuple[RelayedFamily, ...], *, folds: Shared[FoldKey, Fold] | None = None
) -> tuple[RelayedFamily, ...]:
    """`families` with each folded family folded (the same tuple when there is none)."""
    if not any(family.name in FOLDED for family in families):
        return families
    return apply_folds(families, [fold_of(family, folds) for family in families])


def apply_folds(
    families: tuple[RelayedFamily, ...], folds: Sequence[Fold | None]
) -> tuple[RelayedFamily, ...]:
    """Each family folded by its fold (`fold_of`'s, in the same order; None: as it is), for a
    reader that has looked the folds up already; the same tuple when none is folded."""
    if all(fold is None for fold in folds):
        return families
    return tuple(_folded(family, fold) for family, fold in zip(families, folds, strict=True))


def fold_family(
    family: RelayedFamily, *, folds: Shared[FoldKey, Fold] | None = None
) -> RelayedFamily:
    """`family` folded, or `family` itself when it is not folded."""
    return _folded(family, fold_of(family, folds))


def _folded(family: RelayedFamily, fold: Fold | None) -> RelayedFamily:
    """`family` folded by `fold` (`fold_of`'s), or itself when there is none."""
    return family if fold is None else fold.apply([s.value for s in family.samples])


def _plan(family: RelayedFamily, dropped: Sequence[str]) -> Fold:
    """The fold of `family` without the labels `dropped`. A folded label set keeps the others in
    etcd's order (by name, `le` last); folded samples come as etcd writes a histogram's: per label
    set (sorted), the buckets by bound, then `_sum`, then `_count`."""
    gone = frozenset(dropped)
    outputs: dict[tuple[str, Labels], int] = {}
    keys: list[tuple[str, Labels]] = []
    for sample in family.samples:
        key = (sample.name, _kept(sample.labels, gone))
        keys.append(key)
        outputs.setdefault(key, len(outputs))
    ordered = sorted(outputs, key=lambda key: sample_order(family.name, key))
    index = {key: i for i, key in enumerate(ordered)}
    return Fold(
        family.name,
        family.type,
        folded_help(family.help, dropped),
        tuple(ordered),
        tuple([index[key] for key in keys]),
    )


def _kept(labels: Labels, gone: frozenset[str]) -> Labels:
    kept = sorted((k, v) for k, v in labels if k not in gone and k != "le")
    kept += [(k, v) for k, v in labels if k == "le"]
    return tuple(kept)


def sample_order(
    family: str, key: tuple[str, Labels]
) -> tuple[Labels, int, tuple[int, float, str]]:
    """Sort key of a sample (name, labels) of `family` in etcd's order, the order of folded and
    federated samples: its label set without `le`, its suffix, its bucket's bound (a bound that
    is not a number after those that are, by its text)."""
    name, labels = key
    suffix = name[len(family) :]
    le = labels[-1][1] if labels and labels[-1][0] == "le" else None
    group = labels[:-1] if le is not None else labels
    bound: tuple[int, float, str] = (0, 0.0, "")
    if le is not None:
        try:
            number = float(le)
        except ValueError:
            number = math.nan
        bound = (0, number, "") if not math.isnan(number) else (1, 0.0, le)
    return group, _SUFFIX_RANK.get(suffix, 0), bound


def _sum(values: list[float]) -> float:
    """The exact sum of `values`; NaN where it has none (+Inf and -Inf, or NaN among them), the
    infinity of its sign when finite values overflow."""
    if len(values) == 1:
        return values[0]
    try:
        return math.fsum(values)
    except ValueError:
        return math.nan
    except OverflowError:
        return math.copysign(math.inf, sum(values))


def _listed(names: Sequence[str]) -> str:
    """`op, success and version`."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
