"""What the scrapes of one process share, as one object its composition root owns.

2,000 members scraped every 30 s read the same few hundred label sets, headers and sample lines
and use a handful of TLS contexts; holding them once per member cost tens of MB (see the users'
docstrings for the figures). Instead of module-level tables, the composition root (`app.py`
for `run`, `diagnose` for its one round) builds one `ScrapeCaches` and hands it to every scrape:
tests and tools that pass none get a fresh one and the same results, only not shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from exporter.scrape.buffers import BodyBuffers
from exporter.scrape.tls import SSLContextCache

if TYPE_CHECKING:
    import re

    from yarl import URL

    from exporter.model import Shape
    from exporter.scrape.extract import Labels
    from exporter.scrape.fold import Fold, FoldKey
    from exporter.scrape.layout import Line

K = TypeVar("K")
V = TypeVar("V")

LABELS_MAX = 65536  # label sets (texts up to extract.LABEL_CACHE_TEXT_MAX characters)
LAYOUT_MAX = 8192  # headers, and sample-line sets with their patterns
OWN_LABELS_MAX = 4096  # a federation answer's label sets after stripping
# Folds (fold.Fold) by the series they fold: one per set of apply series in the fleet, which the
# members share as their counters converge; a big one (300 series) holds about 30 kB.
FOLDS_MAX = 512
# Parsed scrape URLs: aiohttp would parse a URL given as text on every request, and with a pod IP
# per member yarl's own caches (a few hundred hosts) keep none of them.
URLS_MAX = 16384


class Shared(Generic[K, V]):
    """A bounded table of values shared instead of held once per member. Full, it either stops
    adding (`reset_when_full=False`: the first-seen entries are the common ones) or starts over
    (a value already handed out stays valid either way: entries are never changed)."""

    __slots__ = ("_items", "maximum", "reset_when_full")

    def __init__(self, maximum: int, *, reset_when_full: bool = False) -> None:
        self._items: dict[K, V] = {}
        self.maximum = maximum
        self.reset_when_full = reset_when_full

    def get(self, key: K) -> V | None:
        """The shared value of `key`, None when there is none."""
        return self._items.get(key)

    def put(self, key: K, value: V) -> V:
        """Share `value` under `key` (room permitting); returns `value`."""
        if len(self._items) >= self.maximum:
            if not self.reset_when_full:
                return value
            self._items.clear()
        self._items[key] = value
        return value

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True, slots=True, eq=False)
class ScrapeCaches:
    """The scrape caches of one process: TLS contexts, body buffers, parsed label sets, the
    pieces of layouts (`layout.Extractor`) and the folds (`fold.Fold`) alike across members, and
    each member's parsed URL."""

    tls: SSLContextCache = field(default_factory=SSLContextCache)
    buffers: BodyBuffers = field(default_factory=BodyBuffers)
    labels: Shared[str, Labels] = field(default_factory=lambda: Shared(LABELS_MAX))
    headers: Shared[str, bytes] = field(
        default_factory=lambda: Shared(LAYOUT_MAX, reset_when_full=True)
    )
    lines: Shared[tuple[str, ...], tuple[tuple[Line, ...], re.Pattern[bytes], Shape]] = field(
        default_factory=lambda: Shared(LAYOUT_MAX, reset_when_full=True)
    )
    folds: Shared[FoldKey, Fold] = field(
        default_factory=lambda: Shared(FOLDS_MAX, reset_when_full=True)
    )
    urls: Shared[str, URL] = field(default_factory=lambda: Shared(URLS_MAX, reset_when_full=True))
