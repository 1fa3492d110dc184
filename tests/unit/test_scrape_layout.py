"""The layout-reusing extractor gives exactly what the full extraction gives, payload after payload.

Each test feeds one Extractor a sequence of payloads (real etcd 3.4/3.5 ones with their values
changed, then edited) and compares every result, or the ScrapeError, with `extract_families` on
the same text; and checks that the cheap path is the one taken where the layout still fits.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.model import RelayedFamily
from exporter.scrape.errors import ScrapeError
from exporter.scrape.extract import extract_families
from exporter.scrape.layout import WINDOW, Extractor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "metrics"
PAYLOADS = {v: (FIXTURES / f"etcd-{v}.metrics").read_text() for v in ("3.4", "3.5")}
SAMPLE_LINE = re.compile(r"(?m)^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}\n]*\})?) (\S+)$")
WAL = "etcd_disk_wal_fsync_duration_seconds"


def bumped(text: str, rng: random.Random) -> str:
    """Every sample's value changed, often to one of another length."""

    def new_value(m: re.Match[str]) -> str:
        try:
            value = float(m[2])
        except ValueError:
            return m[0]
        step = rng.choice([0.0, 1.0, 7.5, 123456.25, 1e-9])
        return f"{m[1]} {value + step if math.isfinite(value) else value}"

    return SAMPLE_LINE.sub(new_value, text)


def outcome(fn: Callable[[str], tuple[RelayedFamily, ...]], text: str) -> object:
    try:
        return fn(text)
    except ScrapeError as err:
        return ("error", err.reason)


def same_as_full(extractor: Extractor, text: str) -> None:
    got = outcome(extractor.extract, text)
    want = outcome(extract_families, text)
    assert repr(got) == repr(want)  # repr: NaN values compare equal


@pytest.mark.parametrize("version", sorted(PAYLOADS))
def test_changed_values_take_the_cheap_path(version: str) -> None:
    rng = random.Random(1)
    extractor = Extractor()
    for _ in range(30):
        same_as_full(extractor, bumped(PAYLOADS[version], rng))
    assert extractor.full == 1
    assert extractor.reused == 29


def _edits(text: str) -> dict[str, str]:
    """Payloads whose layout differs from `text`'s in one way each."""
    wal_line = next(m for m in SAMPLE_LINE.finditer(text) if m[1].startswith(WAL + "_bucket"))
    head, tail = text[: wal_line.start()], text[wal_line.start() :]
    return {
        "new label set": text.replace(
            wal_line[0], wal_line[0] + "\n" + wal_line[0].replace('le="', 'le="9', 1), 1
        ),
        "line removed": text.replace(wal_line[0] + "\n", "", 1),
        "timestamp": text.replace(wal_line[0], wal_line[0] + " 1700000000000", 1),
        "two spaces": text.replace(wal_line[0], wal_line[0].replace(" ", "  ", 1), 1),
        "comment inside": head + "# a comment\n" + tail,
        "blank line inside": head + "\n" + tail,
        "comment line inside": head + "#\n" + tail,
        "bad value": text.replace(wal_line[0], wal_line[1] + " x", 1),
        "underscore value": text.replace(wal_line[0], wal_line[1] + " 1_0", 1),
        "family moved far": "# HELP pad x\n# TYPE pad gauge\n"
        + "".join(f'pad{{i="{i}"}} {i}\n' for i in range(WINDOW // 10))
        + text,
        "family gone": re.sub(rf"(?m)^(# (HELP|TYPE) {WAL}.*|{WAL}.*)\n", "", text),
        "crlf": text.replace("\n", "\r\n"),
        "same header again": head + f"# HELP {WAL} again\n" + tail,
        "no wanted family": "# TYPE other counter\nother 1\n",
        "empty": "",
    }


@pytest.mark.parametrize("version", sorted(PAYLOADS))
@pytest.mark.parametrize("edit", sorted(_edits(PAYLOADS["3.5"])))
def test_a_different_layout_falls_back_and_is_learned(version: str, edit: str) -> None:
    rng = random.Random(2)
    text = PAYLOADS[version]
    extractor = Extractor()
    same_as_full(extractor, text)
    edited = _edits(text)[edit]
    same_as_full(extractor, edited)
    # the old layout does not fit (a CRLF payload is the same payload once normalised)
    assert extractor.reused == (1 if edit == "crlf" else 0)
    same_as_full(extractor, bumped(edited, rng))  # the new layout, when it could be learned
    same_as_full(extractor, text)  # and back


def test_a_family_that_appears_is_not_missed() -> None:
    text = PAYLOADS["3.5"]
    without = re.sub(rf"(?m)^(# (HELP|TYPE) {WAL}.*|{WAL}.*)\n", "", text)
    extractor = Extractor()
    same_as_full(extractor, without)
    same_as_full(extractor, without)
    assert extractor.reused == 1
    same_as_full(extractor, text)
    assert WAL in {f.name for f in extractor.extract(text)}


def test_untyped_family_is_read_in_full_every_time() -> None:
    text = "etcd_disk_wal_fsync_duration_seconds_sum 1.5\n"
    extractor = Extractor()
    for _ in range(3):
        same_as_full(extractor, text)


def test_samples_share_names_and_label_tuples_between_scrapes() -> None:
    rng = random.Random(3)
    extractor = Extractor()
    first = extractor.extract(PAYLOADS["3.5"])
    second = extractor.extract(bumped(PAYLOADS["3.5"], rng))
    for a, b in zip(first, second, strict=True):
        for sa, sb in zip(a.samples, b.samples, strict=True):
            assert sa.labels is sb.labels


EDIT_TEXT = st.sampled_from(["\n", " ", "\t", "#", "_", "x", "1", "{", "}", '"', "\r\n", ""])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_edits_same_as_full(data: st.DataObject) -> None:
    text = PAYLOADS[data.draw(st.sampled_from(sorted(PAYLOADS)))]
    extractor = Extractor()
    same_as_full(extractor, text)
    wal = text.index(f"# HELP {WAL}")
    for _ in range(data.draw(st.integers(1, 3))):
        # most edits near the relayed families, some anywhere
        near = data.draw(st.booleans())
        lo, hi = (max(0, wal - 3000), min(len(text), wal + 3000)) if near else (0, len(text))
        at = data.draw(st.integers(lo, hi))
        cut = data.draw(st.integers(at, min(len(text), at + 6)))
        text = text[:at] + data.draw(EDIT_TEXT) + text[cut:]
        same_as_full(extractor, text)
