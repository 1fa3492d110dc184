"""The parser's fast paths give exactly what its general paths give, on any input.

- `zap.fast_event` (whole lines of `apply request took too long` and `slow fdatasync`, tried
  first by `parse_line`) against `parse_line` without it: on the bench corpus's event lines, the
  fixtures, every one-character edit of a few real lines, and generated lines whose every field
  is drawn from valid, odd and invalid values, then mutated;
- `durations.single_unit` against the general path of `parse_duration`;
- `request.describe` against `_operation` and `_resource` of the body after the header;
- `events.new_event` against calling `Event`;
- `zap._loads` against `json.loads`;
- `Summary.add_event` against the fold it replaces (`LogHistogram.add`, then `_saw`).

Results are compared by type, equality and repr (a float's sign, a datetime's zone).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter import durations
from exporter.commands.parse._shapes import event_groups
from exporter.commands.parse.summary import LogHistogram, Summary
from exporter.model import Event, EventKind, Operation
from exporter.parser import parse_line, request, zap
from exporter.parser.events import _event_maker, new_event
from exporter.parser.prefix import EMBEDDED_MIN_LENGTH
from tests.unit.test_parser_scanner import FIXTURES, bench_module

KUBELET = "2026-01-05T10:00:00.098703123Z "
TIME = "2026-01-05T10:00:00.098703Z"
RANGE = 'key:\\"/registry/secrets/shoot--dev--99/token-99\\" '
TXN = (
    'header:<ID:7076 username:\\"kube-apiserver-etcd-client\\" auth_revision:1 > '
    'txn:<compare:<target:MOD key:\\"/registry/configmaps/kube-system/cm-76\\" mod_revision:7 >'
    ' success:<request_put:<key:\\"/registry/configmaps/kube-system/cm-76\\" value_size:363 >>'
    " failure:<>>"
)
REQUEST_LINE = (
    '{"level":"warn","ts":"' + TIME + '","caller":"etcdserver/util.go:166",'
    '"msg":"apply request took too long","took":"11.267493805s","expected-duration":"100ms",'
    '"prefix":"read-only range ","request":"' + RANGE + '",'
    '"response":"range_response_count:1 size:2045"}'
)
TXN_LINE = REQUEST_LINE.replace('"read-only range "', '""').replace(RANGE, TXN)
FDATASYNC_LINE = (
    '{"level":"warn","ts":"' + TIME + '","caller":"wal/wal.go:802","msg":"slow fdatasync",'
    '"took":"2.772436907s","expected-duration":"1s"}'
)


def _never(line: str) -> zap.Groups | None:
    return None


@contextmanager
def general_path() -> Iterator[None]:
    """`parse_line` without its fast path for whole lines: no line has `_FAST`'s groups."""
    saved = zap.fast_groups
    zap.fast_groups = _never
    try:
        yield
    finally:
        zap.fast_groups = saved


def general(line: str) -> object:
    with general_path():
        return parse_line(line)


def same(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b and repr(a) == repr(b)


@contextmanager
def regex_groups() -> Iterator[None]:
    """The fast path without the C extension: `_FAST` itself reads the line."""
    saved = zap.fast_groups
    zap.fast_groups = zap._regex_groups
    try:
        yield
    finally:
        zap.fast_groups = saved


def assert_line(line: str) -> Event | None:
    """parse_line gives the same with and without the fast path; the fast path's event, if any,
    is that too, with and without the C extension, which reads the same groups as `_FAST`.
    Returns the fast path's event."""
    want = general(line)
    got = parse_line(line)
    assert same(got, want), (line, got, want)
    groups = zap._regex_groups(line)
    assert event_groups(line) == groups, line
    # the fast path holds for any line that cannot have a prefix stripped from its middle
    short = len(line) < EMBEDDED_MIN_LENGTH or line.startswith("{")
    fast = zap.fast_event(line) if short else None
    if fast is not None:
        assert same(fast, want), (line, fast, want)
    with regex_groups():
        assert same(zap.fast_event(line) if short else None, fast), line
    return fast


def test_the_extension_reads_the_lines() -> None:
    assert zap.fast_groups is event_groups
    assert zap._accelerator() is event_groups
    with pytest.raises(TypeError):
        event_groups(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        event_groups()  # type: ignore[call-arg]


def test_without_the_extension_the_regex_reads_the_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """An install without a compiler: the import fails and `_FAST` does the work."""
    monkeypatch.setitem(sys.modules, "exporter.commands.parse._shapes", None)
    assert zap._accelerator() is None
    monkeypatch.setattr(zap, "fast_groups", zap._regex_groups)
    assert same(parse_line(KUBELET + REQUEST_LINE), general(KUBELET + REQUEST_LINE))


def test_the_fast_path_is_taken_and_replaced_by_the_general_one_in_tests() -> None:
    for line in (REQUEST_LINE, TXN_LINE, FDATASYNC_LINE):
        for candidate in (line, KUBELET + line):
            assert isinstance(assert_line(candidate), Event)
    with general_path():
        assert zap.fast_event(KUBELET + REQUEST_LINE) is None
    assert isinstance(zap.fast_event(KUBELET + REQUEST_LINE), Event)


def test_bench_corpus_event_lines(tmp_path: Path) -> None:
    path = tmp_path / "corpus.log"
    counts = bench_module().generate(path, 20_000, seed=3)
    lines = [
        line for line in path.read_text(encoding="utf-8").splitlines() if '"level":"warn"' in line
    ]
    assert len(lines) == counts["request"] + counts["fdatasync"] > 400
    fast = [assert_line(line) for line in lines]
    assert all(isinstance(event, Event) for event in fast)  # every one takes the fast path
    bare = [assert_line(line[len(KUBELET) :]) for line in lines[:200]]
    assert all(isinstance(event, Event) for event in bare)


def test_fixture_lines() -> None:
    taken = 0
    for log in FIXTURES:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            for candidate in (line, KUBELET + line, "2026-01-05T10:00:00Z " + line):
                if assert_line(candidate) is not None:
                    taken += 1
    assert taken > 300  # the 3.4 and 3.5 zap slow requests and fdatasyncs, prefixed or not


EDITS = ['"', "\\", '\\"', "\x00", "\x1f", "\x7f", "x", "0", "9", ".", "}", " ", "é", "", "\u2028"]
EDITS += ["μ", "\U0001f600", "\ud800"]  # two- and four-byte strings, a lone surrogate


def test_every_one_character_edit_of_real_lines() -> None:
    """Each character of a slow request, a txn and an fdatasync line, deleted or replaced, or
    something inserted before it: prefix, head, every value, the closing brace."""
    edited = taken = 0
    for line in (KUBELET + REQUEST_LINE, TXN_LINE, KUBELET + FDATASYNC_LINE):
        for at in range(len(line) + 1):
            for edit in EDITS:
                for candidate in (line[:at] + edit + line[at + 1 :], line[:at] + edit + line[at:]):
                    edited += 1
                    if assert_line(candidate) is not None:
                        taken += 1
    assert edited > 20_000
    assert 0.2 * edited < taken < 0.9 * edited


CHARS = st.sampled_from(["a", "0", "9", ".", " ", "s", "m", "-", ":", "/", "é", "μ", *EDITS])
ODD = st.lists(CHARS, max_size=6).map("".join)
KUBELET_PREFIXES = (
    ["", KUBELET, "2026-01-05T10:00:00Z ", "2026-01-05T10:00:00.5+01:00 "],
    [
        "2026-01-05T10:00:00.0987031234Z ",  # ten digits: not a prefix
        KUBELET + " ",
        "2026-01-05 10:00:00.098703123Z ",
        "x",
    ],
)
TIMES = (
    [TIME, "2026-01-05T10:00:00.098703123Z", "2026-01-05T10:00:00+08:00", "2026-01-05 10:00:00"],
    [
        "2024-04-22T17:18:03.213763+0800",
        "2026-02-30T10:00:00Z",
        "2026-01-05T25:00:00Z",
        "2026-01-05T10:00:00Zjunk",
        "2026-01-05T10:00:00\x01",
        "٢٠٢٦-01-05T10:00:00Z",
        "1568166948.8119395",
    ],
)
DURATIONS = (
    # the last five take the general duration parser, on the fast path of the line
    ["11.267493805s", "100ms", "1s", "416.079µs", "416.079μs", "12us", "7ns", "0s", ".5s", "5.s"]
    * 2
    + ["1m2s", "2m", "1h", "0.25", "1"],
    [
        "1e3s",
        "-1s",
        "+1s",
        " 1s",
        "1.2.3s",
        "s",
        "ms",
        "",
        "9" * 400 + "s",
        "9" * 400 + "ms",
        "1_0s",
        "١s",
        "inf",
        "1e400",
        "\\u0031s",
        "1\x01s",
    ],
)
REQUEST_PREFIXES = ["", "read-only range ", "read-only txn ", "read-only", "x "]
REQUESTS = [
    RANGE,
    'key:\\"/registry/pods/ns/x\\" range_end:\\"/registry/pods/ns0\\" ',
    TXN,
    'header:<ID:2 > put:<key:\\"/registry/configmaps/a/b\\" value_size:42 >',
    "header:<ID:3 > lease_grant:<ttl:15-second id:694d>",
    'header:<ID:4 > cluster_version_set:<ver:\\"3.5.0\\" >',
    'ID:39228 Method:\\"PUT\\" Path:\\"/0/members/e7af/attributes\\" ',
    'compare:<key:\\"/registry/x/y\\" > success:<request_range:<key:\\"/registry/x/y\\" >> ',
    'key:\\"health\\" ',
    "",
]
ODD_REQUESTS = [
    'ID:1 Val:\\"{\\\\\\"n\\\\\\":1}\\" ',  # an escaped backslash
    'key:\\"/registry/a\\\\\\"b/c\\" ',
    "key:\\u0022x",
]


def _value(draw: st.DrawFn, good: list[str], odd: list[str] | None = None) -> str:
    """Mostly a valid value; one time in eight an odd or invalid one."""
    if draw(st.integers(0, 7)):
        return draw(st.sampled_from(good))
    return draw(st.one_of(st.sampled_from(odd), ODD) if odd else ODD)


@st.composite
def zap_lines(draw: st.DrawFn) -> str:
    """A zap line of either message, or a near miss, every field valid or not; then edited."""
    msg = _value(
        draw,
        ["apply request took too long", "slow fdatasync"],
        ["slow fdatasync ", "request stats", "apply request took too long!"],
    )
    fields = [("took", _value(draw, *DURATIONS)), ("expected-duration", _value(draw, *DURATIONS))]
    if draw(st.integers(0, 7)) and msg == "apply request took too long":
        fields += [
            ("prefix", _value(draw, REQUEST_PREFIXES)),
            ("request", _value(draw, REQUESTS, ODD_REQUESTS)),
            ("response", _value(draw, ["range_response_count:1 size:2045", "size:6", ""])),
        ]
        if draw(st.integers(0, 3)) == 0:
            fields.append(("error", _value(draw, ["context canceled", ""])))
    elif draw(st.integers(0, 7)) == 0:  # the fields of the other message
        fields += [("prefix", ""), ("request", RANGE), ("response", "")]
    if draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(fields)))
        fields.insert(at, (draw(st.sampled_from(["x", "took", "error"])), "1s"))
    if draw(st.integers(0, 9)) == 0:
        fields.reverse()
    body = "".join(f',"{key}":"{value}"' for key, value in fields)
    level = _value(draw, ["warn"], ["info", "error", "WARN"])
    ts = _value(draw, *TIMES)
    caller = _value(draw, ["etcdserver/util.go:166", "wal/wal.go:802"])
    line = (
        _value(draw, *KUBELET_PREFIXES)
        + f'{{"level":"{level}","ts":"{ts}","caller":"{caller}","msg":"{msg}"{body}}}'
    )
    if draw(st.booleans()):
        for _ in range(draw(st.integers(1, 2))):
            at = draw(st.integers(0, len(line)))
            line = line[:at] + draw(CHARS) + line[at + draw(st.integers(0, 2)) :]
    return line


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zap_lines())
def test_generated_lines(line: str) -> None:
    assert_line(line)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from([REQUEST_LINE, TXN_LINE, FDATASYNC_LINE]),
    st.sampled_from(["", KUBELET]),
    st.integers(0, 500),
    st.integers(0, 3),
    st.text(max_size=4),
)
def test_splices_of_arbitrary_text(line: str, prefix: str, at: int, cut: int, text: str) -> None:
    line = prefix + line
    at = min(at, len(line))
    assert_line(line[:at] + text + line[at + cut :])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.sampled_from(["", KUBELET, KUBELET + '{"level":"warn","ts":"']))
def test_groups_of_arbitrary_text(text: str, start: str) -> None:
    assert event_groups(start + text) == zap._regex_groups(start + text)


def test_long_lines_are_left_to_the_general_path() -> None:
    """A prefixed line of EMBEDDED_MIN_LENGTH characters or more may have a prefix stripped from
    its middle: parse_line does not try the fast path on it. Without a prefix it may."""
    pad = "p" * EMBEDDED_MIN_LENGTH
    line = KUBELET + REQUEST_LINE.replace("size:2045", "size:2045" + pad)
    assert isinstance(zap.fast_event(line), Event)
    assert same(parse_line(line), general(line))
    split = KUBELET + REQUEST_LINE.replace("shoot--dev--99", "shoot--" + KUBELET + "dev" + pad)
    want = general(split)
    assert isinstance(want, Event)
    assert want.resource == "secrets"
    assert same(parse_line(split), want)
    assert isinstance(assert_line(split[len(KUBELET) :]), Event)  # unprefixed: taken


# --- durations -----------------------------------------------------------------------------

DURATION_CHARS = st.sampled_from([*"0123456789.smunµμhdwy +-eE_", "١", "\x00"])


def _general_duration(text: str) -> object:
    try:
        return durations._parse(text)
    except ValueError as err:
        return ("ValueError", str(err))


def assert_duration(text: str) -> None:
    fast = durations.single_unit(text)
    if fast is not None:
        assert same(fast, _general_duration(text)), text
    try:
        got: object = durations.parse_duration(text)
    except ValueError as err:
        got = ("ValueError", str(err))
    assert same(got, _general_duration(text)), text


@settings(max_examples=1500, deadline=None)
@given(st.lists(DURATION_CHARS, max_size=12).map("".join))
def test_single_unit_durations(text: str) -> None:
    assert_duration(text)


def test_single_unit_durations_on_listed_values() -> None:
    for text in [
        *DURATIONS[0],
        *DURATIONS[1],
        "0.0s",
        "00s",
        "1.ms",
        ".0ns",
        "5",
        "5.",
        "m",
        "µs",
        "μs",
        "ns",
    ]:
        assert_duration(text)
    assert durations.single_unit("10.198201ms") == 0.010198201
    assert durations.single_unit("1m2s") is None
    assert durations.single_unit("9" * 400 + "s") == math.inf  # `duration` rejects it


# --- describe -------------------------------------------------------------------------------

FIELDS = [*request._FIELD_OPS, *request._CLUSTER_FIELDS, "v2", "other", "Put", ""]
KEYS = [
    "/registry/pods/ns/x",
    "/registry/services/specs/default/s",
    "/registry/apps/deployments/a/b",
    "/registry/druid.gardener.cloud/etcds/a",
    "health",
    "/registry/",
    '/registry/a\\"b/c',
    "/registry/UPPER/x",
]


@st.composite
def requests(draw: st.DrawFn) -> str:
    header = draw(
        st.sampled_from(
            [
                "",
                "header:<ID:1 > ",
                'header:<ID:1 username:"a>b" auth_revision:1 > ',
                "header:<ID:1 >",
                "header:<ID:1 >  ",
                "header:<",
                'header:<username:"\\"" > ',
            ]
        )
    )
    field = draw(st.sampled_from(FIELDS))
    key = draw(st.sampled_from(KEYS))
    tail = draw(st.sampled_from(["", " >", ' range_end:"x" ', ' Path:"/0/members/1" ', "<"]))
    text = f'{header}{field}:<key:"{key}"{tail}'
    if draw(st.booleans()):
        text = f"{header}{draw(st.sampled_from(['compare:', 'success:', 'Method:']))}{text}"
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(['"', "\\", "<", ">", " ", ":", "a", "_", ""]))
        text = text[:at] + edit + text[at + draw(st.integers(0, 2)) :]
    return text


def _describe_generally(prefix: str, text: str) -> tuple[Operation, str]:
    body = request._after_header(text)
    return request._operation(prefix, text, body), request._resource(body)


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from([*REQUEST_PREFIXES, "read-only txnx"]), requests())
def test_describe(prefix: str, text: str) -> None:
    got = request.describe(prefix, text)
    assert same(got, _describe_generally(prefix, text)), (prefix, text)
    assert same(request.resource_of_key(text), request.resource_of_key.__wrapped__(text))


def test_resource_memo_is_bounded() -> None:
    info = request.resource_of_key.cache_info()
    assert info.maxsize is not None
    assert info.maxsize <= 4096
    for n in range(info.maxsize + 10):
        request.resource_of_key(f"/registry/pods/ns/{n}")
    assert request.resource_of_key.cache_info().currsize == info.maxsize


# --- new_event ------------------------------------------------------------------------------

EVENT_VALUES = st.tuples(
    st.sampled_from(list(EventKind)),
    st.sampled_from([None, datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 5)]),
    st.sampled_from([None, 0.0, -0.0, 1.5, math.inf]),
    st.sampled_from([None, *Operation]),
    st.sampled_from([None, True, False]),
    st.sampled_from([None, "", "pods"]),
    st.sampled_from([None, "", "context canceled"]),
    st.sampled_from([None, 0.1, 1.0]),
)


@settings(max_examples=300, deadline=None)
@given(EVENT_VALUES)
def test_new_event_is_event(values: Any) -> None:
    names = [field.name for field in dataclasses.fields(Event)]
    want = Event(**dict(zip(names, values, strict=True)))
    got = new_event(*values)
    assert same(got, want)
    assert hash(got) == hash(want)
    assert dataclasses.astuple(got) == dataclasses.astuple(want)
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.kind = EventKind.SLOW_FDATASYNC  # type: ignore[misc]


def test_new_event_fills_the_slots_and_falls_back_to_the_class() -> None:
    assert getattr(new_event, "__name__", "") == "new_event"  # not the fallback

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked(Event):
        def __post_init__(self) -> None:
            if self.duration_seconds is not None and self.duration_seconds < 0:
                raise ValueError("negative")

    make = _event_maker(Checked)
    assert getattr(make, "__name__", "") == "<lambda>"
    event = make(EventKind.SLOW_FDATASYNC, None, 2.0, None, None, None, None, 1.0)
    assert type(event) is Checked
    assert event == Checked(EventKind.SLOW_FDATASYNC, duration_seconds=2.0, expected_seconds=1.0)
    with pytest.raises(ValueError, match="negative"):
        make(EventKind.SLOW_FDATASYNC, None, -1.0, None, None, None, None, None)


# --- _loads ---------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)


def _outcome(load: Callable[[str], object], text: str) -> object:
    try:
        return ("ok", repr(load(text)))
    except (ValueError, RecursionError) as err:
        return (type(err).__name__, str(err))


@settings(max_examples=500, deadline=None)
@given(
    JSON,
    st.sampled_from(["", " ", "\n", "\ufeff", "x", "}"]),
    st.sampled_from(["", " ", "\r", "x", "}", ",", "{}"]),
    st.integers(0, 40),
)
def test_loads_is_json_loads(value: object, before: str, after: str, cut: int) -> None:
    text = before + json.dumps(value, ensure_ascii=False) + after
    for candidate in (text, text[:cut], "{" + text[1:]):
        assert _outcome(zap._loads, candidate) == _outcome(json.loads, candidate), candidate


def test_loads_on_zap_lines() -> None:
    deep = ['{"a":' * 5000 + "1" + "}" * 5000, "[" * 5000 + "]" * 5000, "{}", "{", "{} "]
    for line in (REQUEST_LINE, TXN_LINE, FDATASYNC_LINE, *deep):
        assert _outcome(zap._loads, line) == _outcome(json.loads, line)


# --- Summary.add_event ----------------------------------------------------------------------


def _reference_add(summary: Summary, event: Event) -> None:
    """`Summary.add_event` as it was written before it was inlined."""
    kind = event.kind
    summary.kinds[kind] += 1
    if kind is EventKind.SLOW_REQUEST:
        op = str(event.operation or "other")
        summary.operations[op] += 1
        if event.read_only:
            summary.read_only[op] += 1
        summary.resources[event.resource or "other"] += 1
    seconds = event.duration_seconds
    if seconds is not None:
        hist = summary.durations.get(kind)
        if hist is None:
            hist = summary.durations[kind] = LogHistogram()
        hist.add(seconds)
    if event.time is not None:
        summary._saw(event.time)


def _fold(add: Callable[[Summary, Event], None], events: list[Event]) -> object:
    summary = Summary()
    try:
        for event in events:
            add(summary, event)
    except (ValueError, OverflowError) as err:  # int(log(nan)), int(log(inf))
        return (repr(summary), type(err).__name__)
    return (repr(summary), json.dumps(summary.as_json(), sort_keys=True))


BASE = datetime(2026, 1, 5, tzinfo=UTC)
EVENTS = st.builds(
    Event,
    kind=st.sampled_from([EventKind.SLOW_REQUEST, EventKind.SLOW_FDATASYNC, EventKind.CLOCK_DRIFT]),
    time=st.one_of(
        st.none(),
        st.integers(-(10**6), 10**6).map(lambda us: BASE + timedelta(microseconds=us)),
        st.just(datetime(2026, 1, 5, 1, tzinfo=timezone(timedelta(hours=1)))),
    ),
    duration_seconds=st.one_of(
        st.none(),
        st.sampled_from([0.0, -0.0, 1e-9, 0.999e-9, -1.0, 0.1, 11.267493805, math.inf, math.nan]),
        st.floats(0, 1e6),
    ),
    operation=st.sampled_from([None, *Operation]),
    read_only=st.sampled_from([None, True, False]),
    resource=st.sampled_from([None, "", "pods", "other"]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(EVENTS, max_size=12))
def test_add_event_is_the_fold_it_replaces(events: list[Event]) -> None:
    assert _fold(Summary.add_event, events) == _fold(_reference_add, events)
