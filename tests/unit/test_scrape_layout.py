"""The layout-reusing extractor gives exactly what the full extraction gives, payload after payload.

Each test feeds one Extractor a sequence of payloads (real etcd 3.4/3.5 ones with their values
changed, then edited, as bytes) and compares every result, or the ScrapeError, with
`extract_payload` on the same body (UTF-8, invalid bytes replaced); and checks that the
cheap path is the one taken where the layout still fits.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.model import RelayedFamily, Shape
from exporter.scrape.caches import ScrapeCaches
from exporter.scrape.errors import ScrapeError
from exporter.scrape.extract import WANTED, extract_payload, has_family
from exporter.scrape.layout import NEAR, WINDOW, Extractor, _ends_family, _ends_family_at

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "metrics"
# 3.5-trace-disk: a busy member, whose apply histogram (folded, metrics.FOLDED) has 14 op/success
# pairs
PAYLOADS = {
    v: (FIXTURES / f"etcd-{v}.metrics").read_text() for v in ("3.4", "3.5", "3.5-trace-disk")
}
SAMPLE_LINE = re.compile(r"(?m)^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}\n]*\})?) (\S+)$")
WAL = "etcd_disk_wal_fsync_duration_seconds"
APPLY = "etcd_server_apply_duration_seconds"


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


def outcome(fn: Callable[[bytes], tuple[RelayedFamily, ...]], body: bytes) -> object:
    try:
        return fn(body)
    except ScrapeError as err:
        return ("error", err.reason)


def same_as_full(extractor: Extractor, text: str | bytes, *, buffer: bool = False) -> None:
    """`buffer`: pass the body as a bytearray, as scrapes do."""
    body = text.encode() if isinstance(text, str) else text
    got = outcome(lambda b: extractor.extract(bytearray(b) if buffer else b), body)
    assert repr(got) == repr(outcome(extract_payload, body))  # repr: NaN values compare equal


@pytest.mark.parametrize("version", sorted(PAYLOADS))
def test_changed_values_take_the_cheap_path(version: str) -> None:
    rng = random.Random(1)
    extractor = Extractor()
    for i in range(30):
        same_as_full(extractor, bumped(PAYLOADS[version], rng), buffer=i % 2 == 1)
    assert extractor.full == 1
    assert extractor.reused == 29


@pytest.mark.parametrize("moved", [1, NEAR - 20, NEAR + 1, 4 * NEAR, WINDOW - 64])
def test_families_moved_within_the_window_take_the_cheap_path(moved: int) -> None:
    """Every family `moved` bytes further on, by an unrelayed family before them all; whether
    found near where they were or only in the wider window."""
    text = PAYLOADS["3.5"]
    pad = "# HELP pad x\n# TYPE pad gauge\n"
    extractor = Extractor()
    same_as_full(extractor, pad + "pad 1\n" + text)
    same_as_full(extractor, pad + "pad " + "1" * moved + "\n" + text)
    assert extractor.reused == 1


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
    assert WAL in {f.name for f in extractor.extract(text.encode())}


# The wanted families the etcd 3.5 payload lacks (3.5.x later, 3.6), checked on every scrape.
ABSENT = ("etcd_disk_wal_write_duration_seconds", "etcd_server_range_duration_seconds")
ABSENT_FORMS = {  # each starts a block of the family for the full extraction
    "type": "# TYPE {n} histogram\n",
    "help": "# HELP {n} WAL write latency.\n# TYPE {n} histogram\n",
    "samples": '# TYPE {n} histogram\n{n}_bucket{{le="+Inf"}} 2\n{n}_sum 0.5\n{n}_count 2\n',
    "untyped": "{n} 1\n",
    "labels": '{n}{{success="true"}} 1\n',
    "tab": "{n}\t1\n",
}
NEAR_MISSES = {  # the name, but no line of its family
    "longer name": "{n}x 1\n",
    "in help text": "# HELP etcd_x see {n} 1\n",
    "a sample of a family named longer": "{n}_sum 0.5\n",
    "mid-line": "x{n} 1\n",
    "help without text": "# HELP {n}\n",
    "type of a longer name": "# TYPE {n}x counter\n",
}


def between_unwanted(text: str) -> int:
    """The start of a family's `# HELP` line where neither it nor the family before is relayed
    (a line added there leaves every relayed block as it was)."""
    heads = [(m.start(), m[1]) for m in re.finditer(r"(?m)^# HELP (\S+)", text)]
    for (_, before), (at, name) in itertools.pairwise(heads):
        if before not in WANTED and name not in WANTED:
            return at
    raise AssertionError("no two unrelayed families in a row")


@pytest.mark.parametrize("name", ABSENT)
@pytest.mark.parametrize("form", sorted(ABSENT_FORMS))
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_lacking_family_is_found_wherever_it_appears(name: str, form: str, where: str) -> None:
    text = PAYLOADS["3.5"]
    assert not has_family(text.encode(), name)
    added = ABSENT_FORMS[form].format(n=name)
    middle = between_unwanted(text)
    edited = {
        "first": added + text,
        "middle": text[:middle] + added + text[middle:],
        "last": text + added.rstrip("\n"),
    }[where]
    extractor = Extractor()
    same_as_full(extractor, text)
    same_as_full(extractor, edited)
    assert extractor.reused == 0  # the layout did not hide the new family


@pytest.mark.parametrize("miss", sorted(NEAR_MISSES))
def test_the_name_alone_keeps_the_cheap_path(miss: str) -> None:
    text = PAYLOADS["3.5"]
    middle = between_unwanted(text)
    added = "".join(NEAR_MISSES[miss].format(n=name) for name in ABSENT)
    extractor = Extractor()
    same_as_full(extractor, text)
    same_as_full(extractor, text[:middle] + added + text[middle:])
    assert extractor.reused == 1


NAME = "etcd_a_b"
FAMILY_LINE = re.compile(rb"(?m)^(?:# TYPE etcd_a_b(?=[ \n]|\Z)|# HELP etcd_a_b |etcd_a_b[ {\t])")
PIECES = ["etcd_a_b", "etcd_a_bx", "etcd_a", "# TYPE ", "# HELP ", "#", " ", "\n", "\t", "{", "x"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=12))
def test_has_family_is_a_line_of_the_family(pieces: list[str]) -> None:
    body = "".join(pieces).encode()
    expected = FAMILY_LINE.search(body) is not None
    assert has_family(body, NAME) is expected
    assert has_family(bytearray(body), NAME) is expected


def test_untyped_family_is_read_in_full_every_time() -> None:
    text = "etcd_disk_wal_fsync_duration_seconds_sum 1.5\n"
    extractor = Extractor()
    for _ in range(3):
        same_as_full(extractor, text)


def test_samples_share_names_and_label_tuples_between_scrapes() -> None:
    rng = random.Random(3)
    extractor = Extractor()
    first = extractor.extract(PAYLOADS["3.5"].encode())
    second = extractor.extract(bumped(PAYLOADS["3.5"], rng).encode())
    for a, b in zip(first, second, strict=True):
        for sa, sb in zip(a.samples, b.samples, strict=True):
            assert sa.labels is sb.labels


# Edits as bytes: text, non-ASCII UTF-8 (é, ∞), and bytes that are not UTF-8 (a stray
# continuation byte, a truncated sequence, 0xff).
TEXT_EDITS = [b"\n", b" ", b"\t", b"#", b"_", b"x", b"1", b"{", b"}", b'"', b"\r\n", b""]
EDIT_BYTES = st.sampled_from(
    [*TEXT_EDITS, "é".encode(), "∞".encode(), b"\x80", b"\xe2\x82", b"\xff"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_edits_same_as_full(data: st.DataObject) -> None:
    body = PAYLOADS[data.draw(st.sampled_from(sorted(PAYLOADS)))].encode()
    extractor = Extractor()
    same_as_full(extractor, body)
    anchors = [body.find(f"# HELP {name}".encode()) for name in (WAL, APPLY)]
    for _ in range(data.draw(st.integers(1, 3))):
        # most edits near the relayed families (the fsync one, the folded one), some anywhere
        near = data.draw(st.booleans())
        anchor = data.draw(st.sampled_from([a for a in anchors if a >= 0]))
        lo, hi = (max(0, anchor - 3000), min(len(body), anchor + 3000)) if near else (0, len(body))
        at = data.draw(st.integers(lo, hi))
        cut = data.draw(st.integers(at, min(len(body), at + 6)))
        body = body[:at] + data.draw(EDIT_BYTES) + body[cut:]
        same_as_full(extractor, body, buffer=data.draw(st.booleans()))


def test_non_ascii_before_the_families_keeps_the_cheap_path() -> None:
    # Byte offsets differ from character offsets after the first non-ASCII character.
    rng = random.Random(4)
    text = "# HELP padding Größe ∞ " + "é" * 3000 + "\n# TYPE padding gauge\npadding 1\n"
    text += PAYLOADS["3.5"]
    extractor = Extractor()
    for _ in range(5):
        same_as_full(extractor, bumped(text, rng), buffer=True)
    assert (extractor.full, extractor.reused) == (1, 4)


@pytest.mark.parametrize(
    ("where", "reused"),
    [
        ("in a value", 0),
        ("in a relayed label value", 0),
        ("in a header", 0),
        ("in another family", 3),  # the relayed families are intact: the layout fits
    ],
)
def test_bytes_that_are_not_utf8(where: str, reused: int) -> None:
    rng = random.Random(5)
    body = PAYLOADS["3.5"].encode()
    line = re.search(rb"(?m)^" + WAL.encode() + rb'_bucket\{le="0.001"\} (\S+)$', body)
    assert line is not None
    broken = {
        "in a value": body[: line.start(1)] + b"1\xff" + body[line.end(1) :],
        "in a relayed label value": body[: line.start()]
        + line[0].replace(b"0.001", b"0.0\xff01")
        + body[line.end() :],
        "in a header": body.replace(f"# HELP {WAL} ".encode(), f"# HELP {WAL} ".encode() + b"\x80"),
        "in another family": body.replace(b"# HELP go_gc", b"# HELP go\xe2\x82_gc", 1),
    }[where]
    assert broken != body
    extractor = Extractor()
    same_as_full(extractor, body)
    for _ in range(3):
        same_as_full(extractor, broken, buffer=True)
    assert extractor.reused == reused  # and no layout is learned from a body that is not UTF-8
    for _ in range(2):
        same_as_full(extractor, bumped(PAYLOADS["3.5"], rng))
    assert extractor.reused == reused + (1 if reused == 0 else 2)


def test_families_of_one_shape_have_the_same_sample_names_and_labels() -> None:
    # Two members' extractors with the caches shared, as the daemon runs them, over every
    # captured payload: the shape stands for exactly one list of sample names and labels.
    caches = ScrapeCaches()
    rng = random.Random(5)
    series: dict[Shape, list[tuple[str, tuple[tuple[str, str], ...]]]] = {}
    shaped = 0
    for text in PAYLOADS.values():
        extractors = [Extractor(caches=caches), Extractor(caches=caches)]
        for _ in range(3):
            for extractor in extractors:
                for family in extractor.extract(bumped(text, rng).encode()):
                    if family.shape is None:
                        continue
                    shaped += 1
                    found = [(s.name, s.labels) for s in family.samples]
                    assert series.setdefault(family.shape, found) == found
    assert shaped > 0
    folded = [s for s, found in series.items() if found[0][0].startswith(APPLY)]
    assert len(folded) == 2  # 3.5's apply histogram, and the trace payload's (14 op/success)


NEXT = [
    "# HELP ",
    "# TYPE ",
    "#",
    " ",
    "\t",
    "\n",
    "\x1c",
    "\x85",
    "\xa0",
    "é",
    NAME,
    NAME + "x",
    "x",
]


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(["# HELP ", "# TYPE ", "#", ""]),
    st.lists(st.sampled_from(NEXT), max_size=5),
    st.binary(max_size=2),
)
def test_a_family_ends_where_the_text_rule_says(start: str, pieces: list[str], tail: bytes) -> None:
    # `_ends_family_at` reads the bytes where it can; the rule is `_ends_family`'s on the text
    # (which calls \x1c and U+0085 whitespace, as the full parser's str methods do).
    body = (start + "".join(pieces)).encode() + tail
    expected = _ends_family(body.decode("utf-8", errors="replace"), 0, NAME)
    assert _ends_family_at(body, 0, NAME) is expected
    assert _ends_family_at(bytearray(b"x" + body), 1, NAME) is expected
