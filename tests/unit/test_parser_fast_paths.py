"""The parser's one fast path gives exactly what its general path gives, on any input.

`zap.fast_event` (whole lines of `apply request took too long`, `slow fdatasync`, request traces,
`request stats`, late heartbeats and ReadIndex retries, tried first by `parse_line`) against
`parse_line` without it: on the event lines of both bench corpora, the fixtures, every
one-character edit of a few real lines, and generated lines whose every field is drawn from
valid, odd and invalid values, then mutated; and the trace steps read from the list's text at
once against the steps read item by item. And the JSON decoder (msgspec) against
`json.loads`: the same objects for any JSON zap can write, and the documented differences.

Results are compared by type, equality and repr (a float's sign, a datetime's zone).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exporter.parser
from exporter.commands.parse import scanner
from exporter.commands.parse.scanner import MAX_LINE_BYTES
from exporter.commands.parse.summary import Summary
from exporter.model import Event
from exporter.parser import UNPARSED, parse_line, request, trace, zap
from exporter.parser.prefix import EMBEDDED_MIN_LENGTH, split_kubelet_prefix
from tests.support import logcorpus
from tests.support.parse_corpus import FIXTURES, assert_same

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

TRACE_LINE = (
    '{"level":"info","ts":"' + TIME + '","caller":"traceutil/trace.go:171",'
    '"msg":"trace[2879397249] linearizableReadLoop",'
    '"detail":"{readStateIndex:55; appliedIndex:52; }","duration":"2.134326862s",'
    '"start":"2026-01-05T09:59:57.880Z","end":"2026-01-05T10:00:00.014Z",'
    '"steps":["trace[2879397249] \'read index received\'  (duration: 1.370873375s)",'
    "\"trace[2879397249] 'applied index is now lower than readState.Index'  "
    '(duration: 763.453486ms)"],"step_count":2}'
)
STATS_LINE = (
    '{"level":"warn","ts":"' + TIME + '","caller":"v3rpc/interceptor.go:197",'
    '"msg":"request stats","start time":"2026-01-05T09:59:57.333Z","time spent":"2.846304415s",'
    '"remote":"10.242.180.182:32948","response type":"/etcdserverpb.KV/Range",'
    '"request count":0,"request size":52,"response count":1,"response size":2045,'
    '"request content":"' + RANGE + '"}'
)
HEARTBEAT_LINE = (
    '{"level":"warn","ts":"' + TIME + '","caller":"etcdserver/raft.go:369",'
    '"msg":"' + zap.HEARTBEAT + '","to":"9a3a40060ff443c4","heartbeat-interval":"100ms",'
    '"expected-duration":"200ms","exceeded-duration":"1.221284381s"}'
)
RETRY_LINE = (
    '{"level":"warn","ts":"' + TIME + '","caller":"etcdserver/v3_server.go:815",'
    '"msg":"' + zap.READ_INDEX_RETRY + '","sent-request-id":8903818017128080137,'
    '"retry-timeout":"500ms"}'
)
ALL_LINES = [REQUEST_LINE, TXN_LINE, FDATASYNC_LINE, TRACE_LINE, STATS_LINE]
ALL_LINES += [HEARTBEAT_LINE, RETRY_LINE]


def _never(text: str) -> Event | None:
    return None


@contextmanager
def general_path() -> Iterator[None]:
    """`parse_line` without its fast path for whole lines."""
    saved = exporter.parser.fast_event
    exporter.parser.fast_event = _never
    try:
        yield
    finally:
        exporter.parser.fast_event = saved


def general(line: str) -> object:
    with general_path():
        return parse_line(line)


def same(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b and repr(a) == repr(b)


def assert_line(line: str) -> Event | None:
    """parse_line gives the same with and without the fast path, and the fast path's event, if
    any, is that too (it is tried on the line's text, after the kubelet prefix and any copies of
    it inside a long line). Returns the fast path's event."""
    want = general(line)
    got = parse_line(line)
    assert same(got, want), (line, got, want)
    prefix, text = split_kubelet_prefix(line)
    fast = zap.fast_event(text) if prefix is None or len(text) < EMBEDDED_MIN_LENGTH else None
    if fast is not None:
        assert same(fast, want), (line, fast, want)
    return fast


def test_the_fast_path_is_taken_and_replaced_by_the_general_one_in_tests() -> None:
    for line in ALL_LINES:
        for candidate in (line, KUBELET + line):
            assert isinstance(assert_line(candidate), Event)
    with general_path():
        assert exporter.parser.fast_event(REQUEST_LINE) is None
    assert isinstance(zap.fast_event(REQUEST_LINE), Event)


def test_bench_corpus_event_lines(tmp_path: Path) -> None:
    path = tmp_path / "corpus.log"
    counts = logcorpus.generate(path, 20_000, seed=3)
    lines = [
        line for line in path.read_text(encoding="utf-8").splitlines() if '"level":"warn"' in line
    ]
    assert len(lines) == counts["request"] + counts["fdatasync"] > 400
    fast = [assert_line(line) for line in lines]
    assert all(isinstance(event, Event) for event in fast)  # every one takes the fast path
    bare = [assert_line(line[len(KUBELET) :]) for line in lines[:200]]
    assert all(isinstance(event, Event) for event in bare)


def test_realistic_corpus_event_lines() -> None:
    """Every event line of the realistic corpus takes the fast path, with the general result."""
    taken: dict[str, int] = {}
    for kind, line in logcorpus.realistic_lines(20_000, seed=5):
        if kind in ("periodic", "raft", "grpc_text", "leader_elected"):
            continue
        event = assert_line(line)
        if kind != "failed_apply":  # no event: the general path says so
            assert isinstance(event, Event), line
            taken[kind] = taken.get(kind, 0) + 1
    assert len(taken) == 6
    assert min(taken.values()) > 100


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
    """Each character of a line of every shape, deleted or replaced, or something inserted
    before it: prefix, head, every value, the closing brace."""
    edited = taken = 0
    lines = [KUBELET + REQUEST_LINE, TXN_LINE, KUBELET + FDATASYNC_LINE, TRACE_LINE]
    lines += [KUBELET + STATS_LINE, HEARTBEAT_LINE, KUBELET + RETRY_LINE]
    for line in lines:
        for at in range(len(line) + 1):
            for edit in EDITS:
                for candidate in (line[:at] + edit + line[at + 1 :], line[:at] + edit + line[at:]):
                    edited += 1
                    if assert_line(candidate) is not None:
                        taken += 1
    assert edited > 70_000
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


STEP_TEXTS = ["read index received", "compare", "get key's previous created_revision", "x"]
STEP_TEXTS += ["", "a' (duration: 1s)", "process raft request", "'", "(duration: 2s)"]


# Pieces of trace step strings, joined at random: mostly near the real shape.
STEP_PIECES = ["trace[", "1", "]", " ", "  ", "'", "read index received", "compare", "(duration: "]
STEP_PIECES += ["1s", "763.4ms", "-1s", ")", "x", "(", "{a:1}", "é", "\n"]
STEP_ITEMS = st.one_of(
    st.lists(st.sampled_from(STEP_PIECES), max_size=12).map("".join),
    st.builds(
        "trace[{}] '{}'{}(duration: {})".format,
        st.sampled_from(["1", "", "x"]),
        st.lists(st.sampled_from(STEP_PIECES), max_size=4).map("".join),
        st.sampled_from([" ", "  ", " {a:1} ", "", " x ", " (duration: 1s) "]),
        st.lists(st.sampled_from(STEP_PIECES), max_size=3).map("".join),
    ),
)


@st.composite
def trace_lines(draw: st.DrawFn) -> str:
    """A trace line, its steps and every field valid or not; then edited."""
    steps = []
    for _ in range(draw(st.integers(0, 3))):
        text = _value(draw, STEP_TEXTS, ["é", "\\", '\\"', "\\u0027"])
        middle = draw(st.sampled_from([" ", "  ", " {a:1} ", "", " x"]))
        took = _value(draw, *DURATIONS)
        steps.append(
            f"trace[{draw(st.sampled_from(['1', '', 'x']))}] '{text}'{middle}(duration: {took})"
        )
    steps_json = ",".join(f'"{step}"' for step in steps)
    if draw(st.integers(0, 9)) == 0:
        steps_json = draw(st.sampled_from(["1", '"a"', "[1]", "null"]))
    else:
        steps_json = f"[{steps_json}]"
    op = _value(draw, ["range", "put", "transaction", "linearizableReadLoop"], ["", " range"])
    msg = _value(draw, [f"trace[{draw(st.integers(0, 10**10))}] {op}"], ["trace[1]", "trace[] x"])
    tail = _value(draw, [',"step_count":2', ""], [',"step_count":-0', ',"step_count":1.5'])
    line = (
        _value(draw, *KUBELET_PREFIXES)
        + f'{{"level":"{_value(draw, ["info"], ["warn", "INFO"])}","ts":"{_value(draw, *TIMES)}",'
        f'"caller":"traceutil/trace.go:171","msg":"{msg}","detail":"{{key:/a; }}",'
        f'"duration":"{_value(draw, *DURATIONS)}","start":"x","end":"y","steps":{steps_json}'
        f"{tail}}}"
    )
    if draw(st.booleans()):
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(CHARS) + line[at + draw(st.integers(0, 2)) :]
    return line


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace_lines())
def test_generated_trace_lines(line: str) -> None:
    assert_line(line)


TRICKY_STEPS = [
    "trace[1] 'get key's previous created_revision and leaseID'  (duration: 1s)",
    "trace[1] 'a' b' (duration: 1s)",
    "trace[1] '' x' (duration: 1s)",
    "trace[1] 'a'  (duration: 1s) (duration: 2s)",
    "trace[1] 'a' {x:1} (duration: 1s)",
    "trace[1] 'a'(duration: 1s)",
    "trace[12] 'a'  (duration: 1s)x",
]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.one_of(STEP_ITEMS, st.sampled_from(TRICKY_STEPS))))
def test_steps_read_from_the_list_text_are_those_read_item_by_item(items: list[str]) -> None:
    """`trace.STEPS_IN_LIST.findall` on a list's text (items without quotes or escapes) gives
    what `_STEP.fullmatch` gives item by item, also for items of other shapes."""
    items += ["trace[1] 'read index received'  (duration: 1s)"] * (len(items) % 2)
    text = ",".join(f'"{item}"' for item in items)
    by_item = [m.groups() for m in map(trace._STEP.fullmatch, items) if m is not None]
    assert trace.STEPS_IN_LIST.findall(text) == by_item


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(ALL_LINES),
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
def test_arbitrary_text(text: str, start: str) -> None:
    assert_line(start + text)


def test_long_lines() -> None:
    """A prefixed line of EMBEDDED_MIN_LENGTH characters or more may have a prefix stripped from
    its middle: the fast path reads it after that."""
    pad = "p" * EMBEDDED_MIN_LENGTH
    line = KUBELET + REQUEST_LINE.replace("size:2045", "size:2045" + pad)
    assert isinstance(zap.fast_event(line[len(KUBELET) :]), Event)
    assert same(parse_line(line), general(line))
    split = KUBELET + REQUEST_LINE.replace("shoot--dev--99", "shoot--" + KUBELET + "dev" + pad)
    want = general(split)
    assert isinstance(want, Event)
    assert want.resource == "secrets"
    assert same(parse_line(split), want)
    assert isinstance(assert_line(split[len(KUBELET) :]), Event)  # unprefixed: taken


def test_string_characters_are_those_of_a_json_string_without_escapes() -> None:
    """`zap._CHARS` (runs of printable ASCII between the other characters) takes exactly the
    strings of characters other than a quote, a backslash, a control character and a lone
    surrogate: every code point alone, and strings of the characters at the borders."""
    plain = re.compile(r'[^"\\\x00-\x1f\ud800-\udfff]*')
    chars = re.compile(zap._CHARS)
    for code in range(0x110000):
        assert (plain.fullmatch(chr(code)) is None) == (chars.fullmatch(chr(code)) is None), code
    borders = [" ", "!", '"', "#", "[", "\\", "]", "~", "\x7f", "\x00", "\x1f", "é"]
    borders += ["\ud7ff", "\ud800", "\udfff", "\ue000", "\U0010ffff"]
    for text in map("".join, itertools.product(borders, repeat=3)):
        assert (plain.fullmatch(text) is None) == (chars.fullmatch(text) is None), repr(text)


# --- the same lines read in bulk by the `parse` command's block reader -------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(zap_lines(), trace_lines(), st.sampled_from(ALL_LINES)),
        min_size=1,
        max_size=12,
    ),
    st.sampled_from(["", KUBELET]),
    st.sampled_from(["", "\r", "\r\r"]),
)
def test_generated_lines_read_in_bulk(lines: list[str], prefix: str, end: str) -> None:
    """`scanner.fold_text` finds these shapes in a whole block at once: the summary is the one
    the lines give one by one."""
    data = "\n".join(prefix + line + end for line in lines).encode("utf-8", "surrogatepass")
    assert_same(data, chunk_sizes=(1 << 20, 97))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace_lines())
def test_a_trace_counted_without_its_steps_is_an_event_exactly_when_it_is_with_them(
    line: str,
) -> None:
    """`fast_match(m, counted=True)` (the summary, which never reads a trace's steps or
    operation) leaves them out only where reading the steps could not fail: the event is the
    same but for those two, and None exactly when it is None with them."""
    m = zap.FAST_LINES.match("\n" + line)
    if m is None or m.end() != len(line) + 1:
        return
    full, counted = zap.fast_match(m), zap.fast_match(m, counted=True)
    assert (full is None) == (counted is None)
    if full is not None and counted is not None:
        assert (counted.steps, counted.operation) in (((), None), (full.steps, full.operation))
        assert msgspec.structs.replace(counted, steps=full.steps, operation=full.operation) == full


@pytest.mark.parametrize(
    ("took", "counted"),
    [
        ("763.453486ms", "without steps"),
        ("1m2s", "with steps"),  # read by the general duration parser
        ("9" * 400 + "s", "not an event"),  # overflows a double
        ("1e3s", "not an event"),
    ],
)
def test_trace_steps_are_read_unless_sure(took: str, counted: str) -> None:
    m = zap.FAST_LINES.fullmatch("\n" + TRACE_LINE.replace("763.453486ms", took))
    assert m is not None
    full, event = zap.fast_match(m), zap.fast_match(m, counted=True)
    if counted == "not an event":
        assert full is None
        assert event is None
        return
    assert full is not None
    assert event is not None
    assert full.steps  # both steps are `raft`: one total
    assert event.steps == (() if counted == "without steps" else full.steps)
    assert event.operation == (None if counted == "without steps" else full.operation)


def test_long_lines_read_in_bulk() -> None:
    """A line long enough to hold a copy of the prefix is left to `parse_line`, which strips it."""
    pad = "p" * EMBEDDED_MIN_LENGTH
    split = KUBELET + REQUEST_LINE.replace("/secrets/", "/secr" + KUBELET + "ets/" + pad)
    long = KUBELET + REQUEST_LINE.replace("size:2045", "size:2045" + pad)
    for line in (split, long, split[len(KUBELET) :]):
        want = assert_same("\n".join([KUBELET + TRACE_LINE, line, FDATASYNC_LINE]).encode())
        resource = "other" if line.startswith("{") else "secrets"
        assert want["slow_requests"]["by_resource"] == {resource: 1}


def test_a_block_over_the_line_limit_is_read_line_by_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text is read in bulk only from a block too short to hold a line over the limit (whose
    line-by-line result depends on its length in bytes); a longer block is read as before."""
    texts: list[int] = []
    real = scanner.fold_text

    def spy(summary: Summary, text: str) -> None:
        texts.append(len(text))
        real(summary, text)

    monkeypatch.setattr(scanner, "fold_text", spy)
    lines = [KUBELET + TRACE_LINE] * (MAX_LINE_BYTES // len(TRACE_LINE) + 1)
    data = "\n".join(lines).encode()
    summary = Summary()
    scanner.summarize_block(b"\n" + data, summary)
    assert not texts
    assert summary.kinds["slow_trace"] == len(lines)
    assert_same(data, chunk_sizes=(1 << 20, 4096))
    assert texts


# --- the JSON decoder ------------------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=5)  # no lone surrogates
# JSON that zap writes: no NaN or infinities (it writes them as strings), numbers within a
# double's range, valid Unicode.
ZAP_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers()
    | _TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_TEXT, children, max_size=3),
    max_leaves=8,
)


def _outcome(text: str, load: Callable[[str], object]) -> object:
    try:
        return ("ok", repr(load(text)))
    except (ValueError, RecursionError):
        return "error"


@settings(max_examples=500, deadline=None)
@given(ZAP_JSON, st.sampled_from(["", " ", "x", "}"]), st.integers(0, 40))
def test_the_decoder_is_json_loads_on_what_zap_writes(value: object, after: str, cut: int) -> None:
    text = json.dumps(value, ensure_ascii=False) + after
    for candidate in (text, text[:cut], "{" + text[1:]):
        assert _outcome(candidate, zap._decode) == _outcome(candidate, json.loads), candidate


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", '"\\ud800"'])
def test_what_json_loads_takes_and_the_decoder_does_not(value: str) -> None:
    """Not JSON (NaN, infinities), out of a double's range, or not text (a lone surrogate): zap
    writes none of them, and a line with one is UNPARSED."""
    json.loads(value)
    with pytest.raises(msgspec.DecodeError):  # a ValueError, which parse_line catches
        zap._decode(value)
    line = FDATASYNC_LINE.replace('"took":"2.772436907s"', '"took":"1s","x":' + value)
    assert parse_line(line) is UNPARSED


def test_a_raw_lone_surrogate_is_unparsed_on_both_paths() -> None:
    """Text decoded from bytes never holds one (invalid UTF-8 becomes U+FFFD); a str may."""
    line = FDATASYNC_LINE.replace("2.772436907s", "2.77\ud800s")
    assert assert_line(line) is None
    assert parse_line(line) is UNPARSED


def test_duplicate_keys_keep_the_last_value() -> None:
    line = FDATASYNC_LINE.replace('"took":"2.772436907s"', '"took":"1s","took":"3s"')
    event = parse_line(line)
    assert isinstance(event, Event)
    assert event.duration_seconds == 3.0


def test_deep_nesting_is_unparsed() -> None:
    deep = '{"level":"warn","ts":1,"msg":"slow fdatasync","x":' + "[" * 5000 + "]" * 5000 + "}"
    assert parse_line(deep) is UNPARSED


# --- request -------------------------------------------------------------------------------


def test_resource_memo_is_bounded() -> None:
    info = request.resource_of_key.cache_info()
    assert info.maxsize is not None
    assert info.maxsize <= 4096
    for n in range(info.maxsize + 10):
        request.resource_of_key(f"/registry/pods/ns/{n}")
    assert request.resource_of_key.cache_info().currsize == info.maxsize
