"""etcd 3.5 `/metrics` payloads that advance: the captured real payload with moving counters.

The captured payload (tests/fixtures/metrics/etcd-3.5.metrics, 1,374 samples) is split once into
sample lines. Every counter, histogram and summary `_sum`/`_count` grows with time; gauges stay.
The two disk histograms the exporter labels with the volume grow by a member profile: `fast`
(pd-ssd, p99 around 2 ms) or `slow` (pd-standard, p99 in the hundreds of milliseconds).

Values depend on the profile and the whole second only, so one rendering per profile and second
serves every member (the simulator must not be the bottleneck); two scrapes of one member at
least a second apart always see the histograms move.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.utils import floatToGoString

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "metrics" / "etcd-3.5.metrics"

GROWTH_PER_SECOND = 0.002  # generic counters: +0.2 % of the captured value per second
DISK_RATE = {
    "etcd_disk_wal_fsync_duration_seconds": 12.0,  # observations per second
    "etcd_disk_backend_commit_duration_seconds": 6.0,
}
# Share of observations at or below each bucket bound (etcd's buckets 1 ms … 8.192 s).
PROFILES: dict[str, dict[float, float]] = {
    "fast": {0.001: 0.62, 0.002: 0.93, 0.004: 0.985, 0.008: 0.996, 0.016: 0.999, 0.032: 1.0},
    "slow": {
        0.001: 0.02,
        0.002: 0.06,
        0.004: 0.15,
        0.008: 0.32,
        0.016: 0.52,
        0.032: 0.70,
        0.064: 0.84,
        0.128: 0.93,
        0.256: 0.975,
        0.512: 0.992,
        1.024: 0.998,
        2.048: 1.0,
    },
}
MEAN_SECONDS = {"fast": 0.0012, "slow": 0.045}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class _Line:
    text: str  # a comment line, or the sample's name and labels followed by a space
    base: float
    kind: str  # static | scale | disk_bucket | disk_sum | disk_count
    family: str = ""
    le: float = math.inf


def _families(lines: list[str]) -> dict[str, str]:
    types = {}
    for line in lines:
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind.strip()
    return types


def _family_of(name: str, types: dict[str, str]) -> tuple[str, str]:
    for suffix in ("", "_bucket", "_sum", "_count"):
        if suffix and not name.endswith(suffix):
            continue
        family = name[: len(name) - len(suffix)] if suffix else name
        if family in types:
            return family, types[family]
    return name, "untyped"


def _classify(line: str, types: dict[str, str]) -> _Line:
    if not line or line.startswith("#"):
        return _Line(line + "\n", 0.0, "static")
    head, _, value = line.rpartition(" ")
    name = head.split("{", 1)[0]
    family, kind = _family_of(name, types)
    if family in DISK_RATE:
        part = name[len(family) + 1 :]
        le = math.inf
        if part == "bucket":
            le = float(head.rsplit('le="', 1)[1].split('"', 1)[0])
        return _Line(head + " ", float(value), "disk_" + part, family, le)
    moving = kind in ("counter", "histogram") or (
        kind == "summary" and name.endswith(("_sum", "_count"))
    )
    if not moving:
        return _Line(line + "\n", 0.0, "static")
    return _Line(head + " ", float(value), "scale")


def _fmt(value: float) -> str:
    """Go's shortest float format, as etcd's client_golang writes it."""
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return floatToGoString(value)


class Payloads:
    """Renders the payload of a profile at a whole second, caching the current second's."""

    def __init__(self, fixture: Path = FIXTURE, *, start: float | None = None) -> None:
        raw = fixture.read_text().splitlines()
        types = _families(raw)
        self._lines = [_classify(line, types) for line in raw]
        self._start = time.time() if start is None else start
        self._cache: dict[tuple[str, int], bytes] = {}

    def body(self, profile: str, now: float | None = None) -> bytes:
        """The payload of a `fast` or `slow` member at `now` (default: the current time)."""
        second = int((time.time() if now is None else now) - self._start)
        key = (profile, second)
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) > 8:
                self._cache.clear()
            cached = self._cache[key] = self.render(profile, second)
        return cached

    def render(self, profile: str, second: int) -> bytes:
        """The payload `second` seconds after the start (no caching)."""
        growth = 1.0 + GROWTH_PER_SECOND * second
        cdf, mean = PROFILES[profile], MEAN_SECONDS[profile]
        out = []
        for line in self._lines:
            if line.kind == "static":
                out.append(line.text)
                continue
            value = self._value(line, growth=growth, second=second, cdf=cdf, mean=mean)
            out.append(f"{line.text}{_fmt(value)}\n")
        return "".join(out).encode()

    @staticmethod
    def _value(
        line: _Line, *, growth: float, second: int, cdf: dict[float, float], mean: float
    ) -> float:
        if line.kind == "scale":
            scaled = line.base * growth
            return float(math.floor(scaled)) if line.base == int(line.base) else scaled
        observed = DISK_RATE[line.family] * second
        if line.kind == "disk_sum":
            return line.base + observed * mean
        share = 1.0 if line.kind == "disk_count" else _share(cdf, line.le)
        return line.base + math.floor(observed * share)


def _share(cdf: dict[float, float], le: float) -> float:
    below = [share for bound, share in cdf.items() if bound <= le]
    return max(below) if below else 0.0
