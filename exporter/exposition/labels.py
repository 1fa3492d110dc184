"""Label text of exposed samples: each target's labels rendered once, merged with a sample's own.

prometheus_client formats every label of every sample on each request (about 13 µs for a sample
with ten labels). Here a target's labels (`LabelBase`) are escaped and joined once, and a sample's
own labels (`le`, `To`, `reason`, …) are slotted into them in the sorted order prometheus_client
writes, through the text around their values, cached per set of own label names. Pure; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter import metrics as m
from exporter.model import Target

Labels = tuple[tuple[str, str], ...]


def escape_value(value: str) -> str:
    """A label value escaped for both text formats (backslash, newline, double quote)."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


@dataclass(frozen=True, slots=True)
class Pieces:
    """Literal label text around the slots of a sample's own label values (LabelBase.pieces)."""

    texts: tuple[str, ...]
    order: tuple[int, ...]


class LabelBase:
    """A target's labels (identity, or identity + volume): a dict for prometheus_client and
    their exposition text, rendered once; `render(own)` merges a sample's own labels in the
    sorted order prometheus_client writes, through the text around their values (`pieces`),
    cached per label-name set."""

    __slots__ = ("_pieces", "mapping", "names", "text")

    def __init__(self, pairs: Labels) -> None:
        self.mapping: dict[str, str] = dict(pairs)
        self.names = tuple(self.mapping)  # the text around own labels depends on these and values
        self.text = ",".join(f'{k}="{escape_value(v)}"' for k, v in sorted(self.mapping.items()))
        self._pieces: dict[tuple[str, ...], Pieces] = {}

    def own_name(self, name: str) -> str:
        """A sample's own label that clashes with ours is kept as `exported_<name>`."""
        return "exported_" + name if name in self.mapping else name

    def merged(self, own: Labels) -> dict[str, str]:
        """All labels of a sample as a dict."""
        if not own:
            return self.mapping
        labels = self.mapping.copy()
        for k, v in own:
            labels[self.own_name(k)] = v
        return labels

    def render(self, own: Labels) -> str:
        """All labels of a sample as exposition text, without the braces."""
        if not own:
            return self.text
        pieces = self.pieces(tuple([k for k, _ in own]))
        out = [pieces.texts[0]]
        for text, slot in zip(pieces.texts[1:], pieces.order, strict=True):
            out += (escape_value(own[slot][1]), text)
        return "".join(out)

    def pieces(self, keys: tuple[str, ...]) -> Pieces:
        """The text around a sample's own label values, for own labels named `keys`: the labels
        are `texts[0] + v[order[0]] + texts[1] + … + texts[-1]` with each v escaped (cached)."""
        cached = self._pieces.get(keys)
        if cached is None:
            cached = self._pieces[keys] = self._split(keys)
        return cached

    def _split(self, keys: tuple[str, ...]) -> Pieces:
        items: list[tuple[str, str, int]] = [
            (k, f'{k}="{escape_value(v)}"', -1) for k, v in self.mapping.items()
        ]
        items += [(name, "", i) for i, name in enumerate(map(self.own_name, keys))]
        texts, order, current = [], [], ""
        for n, (name, text, slot) in enumerate(sorted(items, key=lambda item: item[0])):
            current += "," if n else ""
            if slot < 0:
                current += text
                continue
            texts.append(current + name + '="')
            order.append(slot)
            current = '"'
        texts.append(current)
        return Pieces(tuple(texts), tuple(order))


@dataclass(frozen=True, slots=True)
class TargetLabels:
    """Everything label-related about one target, computed once per Target object."""

    target: Target
    ident: LabelBase
    idvol: LabelBase
    volume_info: Labels
    mismatch: Labels
    budget: Labels  # the own labels of etcd_latency_volume_expected_write_iops

    @classmethod
    def of(cls, target: Target) -> TargetLabels:
        """Labels of `target` in the order of metrics.IDENTITY_LABELS / VOLUME_LABELS."""
        i, v = target.identity, target.volume
        ident = (i.namespace, i.project, i.shoot, i.etcd, i.pod)
        vol = (v.pvc, v.pv, v.storage_class, v.disk_class)
        info = (v.pvc, v.pv, v.storage_class, v.provisioner, v.disk_type, v.disk_class)
        return cls(
            target=target,
            ident=LabelBase(tuple(zip(m.IDENTITY_LABELS, ident, strict=True))),
            idvol=LabelBase(
                tuple(zip(m.IDENTITY_LABELS + m.VOLUME_LABELS, ident + vol, strict=True))
            ),
            volume_info=tuple(
                zip(
                    m.VOLUME_INFO.labels[len(ident) :],
                    (*info, v.expected_storage_class, v.expected_from, v.volume_handle),
                    strict=True,
                )
            ),
            mismatch=(
                ("storage_class", v.storage_class),
                ("expected_storage_class", v.expected_storage_class),
            ),
            budget=(("storage_class", v.storage_class), ("disk_type", v.disk_type)),
        )
