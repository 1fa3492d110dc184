"""`LineSink`: a line split by its source (text and the prefix's time) counts as the whole line."""

from __future__ import annotations

from datetime import UTC, datetime

from exporter.model import Target
from exporter.parser.prefix import prefix_ns, split_kubelet_prefix
from exporter.sources.sink import LineSink
from exporter.state import TargetState

PREFIX = "2026-01-05T10:00:00.098703123Z"
FDATASYNC = (
    '{"level":"warn","ts":"2026-01-05T09:59:59.5Z","caller":"wal/wal.go:802",'
    '"msg":"slow fdatasync","took":"2.772436907s","expected-duration":"1s"}'
)
# capnslog's journald form has no time of its own: the event takes the prefix's
BARE = "sync duration of 1.5s, expected less than 1s"
LINES = [FDATASYNC, BARE, "garbage", "", '{"level":"info","msg":"x"}', "x" * 5000]


def _fed(split: bool) -> TargetState:
    state = TargetState(target=Target(key="ns/etcd-0"))
    sink = LineSink(state, max_line_bytes=4096)
    for text in LINES:
        line = f"{PREFIX} {text}"
        if split:
            prefix, rest = split_kubelet_prefix(line)
            assert prefix is not None
            ns = prefix_ns(prefix)
            assert ns is not None
            sink.feed(rest, received_ns=ns)
        else:
            sink.feed(line)
    return state


def test_split_lines_count_as_whole_ones() -> None:
    whole, split = _fed(split=False), _fed(split=True)
    assert (split.lines_read, split.lines_unparsed) == (whole.lines_read, whole.lines_unparsed)
    assert (split.lines_read, split.lines_unparsed) == (6, 3)  # garbage, empty, too long
    assert split.events == whole.events
    assert split.events == {"slow_fdatasync": 2}  # the zap line and the bare one


def test_an_event_without_a_time_takes_the_prefix_s() -> None:
    state = TargetState(target=Target(key="ns/etcd-0"))
    sink = LineSink(state, max_line_bytes=4096)
    ns = prefix_ns(PREFIX)
    assert ns is not None
    sink.feed(BARE, received_ns=ns)
    event = state.last_slow_event
    assert event is not None
    assert event.time == datetime(2026, 1, 5, 10, 0, 0, 98703, tzinfo=UTC)
