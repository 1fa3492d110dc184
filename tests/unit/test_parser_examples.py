"""The parser on hand-written lines: the reference's examples of every format and event kind.

Lines marked "reference" are copied from reference/etcd-logs-and-metrics.md (real lines from the
issues it cites); the others follow etcd's exact format strings for shapes the fixtures cannot
produce here (etcd 3.3, 3.6, clock drift, dropped messages, journald).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from exporter.model import Event, EventKind, Operation
from exporter.parser import UNPARSED, parse_line, split_kubelet_prefix

INCIDENT = (
    '2020-09-03 06:00:07.556157 W | etcdserver: read-only range request "key:\\"/registry/'
    'deployments/shoot--pwhhcd--devcluster2/kube-apiserver\\" " with result '
    '"range_response_count:1 size:9566" took too long (13.95374909s) to execute'
)
KUBELET = "2019-03-06T19:00:59.117515322Z "


def event(line: str) -> Event:
    result = parse_line(line)
    assert isinstance(result, Event), f"{result!r} for {line!r}"
    return result


def test_design_incident_line() -> None:
    e = event(INCIDENT)
    assert e.kind is EventKind.SLOW_REQUEST
    assert e.operation is Operation.RANGE
    assert e.read_only is True
    assert e.resource == "deployments"
    assert e.duration_seconds == 13.95374909
    assert e.expected_seconds is None
    assert e.error is None
    assert e.time == datetime(2020, 9, 3, 6, 0, 7, 556157, tzinfo=UTC)


def test_incident_line_without_timestamp() -> None:
    e = event(INCIDENT.split(" W | ", 1)[1])  # as quoted in the design: "etcdserver: read-only …"
    assert (e.kind, e.operation, e.resource, e.time) == (
        EventKind.SLOW_REQUEST,
        Operation.RANGE,
        "deployments",
        None,
    )


def test_capnslog_write_txn_with_header_username() -> None:  # reference, etcd#12405
    line = (
        '2020-10-20 12:15:22.088482 W | etcdserver: request "header:<ID:12374331823256642018 '
        'username:\\"kube-apiserver-etcd-client\\" auth_revision:1 > txn:<compare:<target:MOD '
        'key:\\"/registry/services/endpoints/kube-system/kube-controller-manager\\" '
        'mod_revision:837310 > success:<request_put:<key:\\"/registry/services/endpoints/'
        'kube-system/kube-controller-manager\\" value_size:363 >> failure:<>>" with result '
        '"size:18" took too long (388.133988ms) to execute'
    )
    e = event(line)
    assert (e.operation, e.read_only, e.resource) == (Operation.TXN, False, "endpoints")
    assert e.duration_seconds == pytest.approx(0.388133988)


def test_capnslog_33_read_and_debug_caller() -> None:  # reference, etcd#13587 (+ --debug part)
    line = (
        "2022-01-12 08:35:31.392984 [pkg_logger.go:114] W | etcdserver: read-only range request "
        '"key:\\"/registry/pods/apc-infra-id-uat/apc-delay-queue-server-c9fbfd7bd-h8q9w\\" " '
        'with result "range_response_count:1 size:2045" took too long (604.076876ms) to execute'
    )
    e = event(line)
    assert (e.operation, e.read_only, e.resource) == (Operation.RANGE, True, "pods")


def test_capnslog_read_only_txn_under_range_prefix() -> None:
    line = (
        '2021-01-01 00:00:00.000001 W | etcdserver: read-only range request "compare:<target:'
        'VALUE key:\\"/registry/pods/ns/a\\" value:\\"x\\" > success:<request_range:<key:\\"'
        '/registry/pods/ns/a\\" > > failure:<> " with result "responses:<range_response_count:1 > '
        'size:50" took too long (120ms) to execute'
    )
    e = event(line)
    assert (e.operation, e.read_only, e.resource) == (Operation.TXN, True, "pods")


def test_capnslog_error_result() -> None:
    line = (
        '2021-01-01 00:00:00.000001 W | etcdserver: read-only range request "key:\\"health\\" " '
        'with result "error:context deadline exceeded" took too long (72.427996ms) to execute'
    )
    e = event(line)
    assert (e.error, e.resource, e.operation) == ("context deadline exceeded", "other", "range")


@pytest.mark.parametrize(
    ("request_text", "operation"),
    [
        ('ID:1 Method:\\"PUT\\" Path:\\"/0/members/d045a76dbb9c027/attributes\\" ', "cluster"),
        ('ID:2 Method:\\"PUT\\" Path:\\"/0/version\\" Val:\\"3.4.0\\" ', "cluster"),
        ('ID:3 Method:\\"PUT\\" Path:\\"/1/keys/a\\" ', "other"),
        ("header:<ID:4 > lease_checkpoint:<checkpoints:<ID:1 > > ", "lease_checkpoint"),
        ("header:<ID:5 > compaction:<revision:493 > ", "compaction"),
        ("header:<ID:6 > authenticate:<name:root simple_token:pyESdbuSCIxORIjb>", "authenticate"),
        ("header:<ID:7 > alarm:<action:GET > ", "other"),
    ],
)
def test_capnslog_write_operations(request_text: str, operation: str) -> None:
    line = (
        f'2021-01-01 00:00:00.000001 W | etcdserver: request "{request_text}" with result "" '
        "took too long (1s) to execute"
    )
    e = event(line)
    assert (e.operation, e.read_only, e.resource) == (operation, False, "other")


def test_zap_34_ms_timestamp() -> None:  # reference, etcd#14027
    line = (
        '{"level":"warn","ts":"2022-05-10T04:41:55.246Z","caller":"etcdserver/util.go:163",'
        '"msg":"apply request took too long","took":"6.75466347s","expected-duration":"100ms",'
        '"prefix":"read-only range ","request":"key:\\"/registry/namespaces/kube-system\\" ",'
        '"response":"range_response_count:1 size:264"}'
    )
    e = event(line)
    assert (e.operation, e.read_only, e.resource) == (Operation.RANGE, True, "namespaces")
    assert (e.duration_seconds, e.expected_seconds) == (6.75466347, 0.1)
    assert e.time == datetime(2022, 5, 10, 4, 41, 55, 246000, tzinfo=UTC)


def test_zap_35_error_field_and_offset_timestamp() -> None:  # reference, etcd#17855
    line = (
        '{"level":"warn","ts":"2024-04-22T17:18:03.213763+0800","caller":"etcdserver/util.go:170",'
        '"msg":"apply request took too long","took":"3.000607371s","expected-duration":"100ms",'
        '"prefix":"read-only range ","request":"key:\\"/cs/leader\\" range_end:\\"/cs/leades\\" '
        'sort_order:ASCEND sort_target:MOD ","response":"","error":"context deadline exceeded"}'
    )
    e = event(line)
    assert (e.resource, e.error) == ("other", "context deadline exceeded")
    assert e.time == datetime(2024, 4, 22, 17, 18, 3, 213763, tzinfo=timezone(timedelta(hours=8)))


def test_zap_read_only_txn_prefix() -> None:
    line = (
        '{"level":"warn","ts":"2024-01-31T16:54:41.675186+0800","caller":"txn/util.go:93",'
        '"msg":"apply request took too long","took":"4.99863799s","expected-duration":"100ms",'
        '"prefix":"read-only txn ","request":"compare:<> success:<request_range:<key:\\"'
        '/registry/druid.gardener.cloud/etcds/shoot--a--b/etcd-main\\" > > failure:<> ",'
        '"response":""}'
    )
    e = event(line)
    assert (e.operation, e.read_only, e.resource) == (Operation.TXN, True, "etcds")


def test_epoch_ts_and_numeric_durations() -> None:  # reference, agola-io/agola#107
    line = (
        '{"level":"warn","ts":1568166948.8119395,"caller":"etcdserver/util.go:144","msg":"apply '
        'request took too long","took":0.101501094,"expected-duration":0.1,"prefix":"","request":'
        '"header:<ID:7587840912673251462 > lease_grant:<ttl:5-second id:694d6d1ba410a085>",'
        '"response":"size:42"}'
    )
    e = event(line)
    assert (e.operation, e.read_only, e.resource) == (Operation.LEASE_GRANT, False, "other")
    assert (e.duration_seconds, e.expected_seconds) == (0.101501094, 0.1)
    assert e.time is not None
    assert e.time.timestamp() == pytest.approx(1568166948.8119395)


SIMPLE: list[tuple[str, EventKind, float | None, float | None]] = [
    (  # reference, etcd#10215 (3.3)
        "2018-10-25 16:20:35.185438 W | wal: sync duration of 1.134771573s, expected less than 1s",
        EventKind.SLOW_FDATASYNC,
        1.134771573,
        1.0,
    ),
    (  # reference (3.5)
        '{"level":"warn","ts":"2023-03-03T01:45:11.871Z","caller":"wal/wal.go:805","msg":"slow '
        'fdatasync","took":"1.044022245s","expected-duration":"1s"}',
        EventKind.SLOW_FDATASYNC,
        1.044022245,
        1.0,
    ),
    (  # reference, cilium#7282: ≤ 3.3.12 shape without ", to", with the kubelet prefix
        KUBELET + "2019-03-06 19:00:59.117256 W | etcdserver: failed to send out heartbeat on time "
        "(exceeded the 100ms timeout for 10.198201ms)",
        EventKind.HEARTBEAT_LATE,
        0.010198201,
        0.2,  # twice the interval, as zap reports it
    ),
    (
        "2021-01-01 00:00:00.000001 W | etcdserver: failed to send out heartbeat on time "
        "(exceeded the 100ms timeout for 104.392067ms, to 92ead5a9687d4550)",
        EventKind.HEARTBEAT_LATE,
        0.104392067,
        0.2,
    ),
    (  # reference, etcd#20418 (3.6)
        '{"level":"warn","ts":"2025-11-16T00:15:22.266350Z","caller":"etcdserver/raft.go:388","msg"'
        ':"leader failed to send out heartbeat on time; took too long, leader is overloaded likely '
        'from slow disk","to":"dcb68c82481661be","heartbeat-interval":"100ms","expected-duration":'
        '"200ms","exceeded-duration":"2.406773972s"}',
        EventKind.HEARTBEAT_LATE,
        2.406773972,
        0.2,
    ),
    (  # reference, etcd#17855
        '{"level":"warn","ts":"2024-04-22T17:18:24.929573+0800","caller":"etcdserver/v3_server.go:'
        '908","msg":"waiting for ReadIndex response took too long, retrying","sent-request-id":'
        '1859580948208150369,"retry-timeout":"500ms"}',
        EventKind.READ_INDEX_RETRY,
        None,
        0.5,
    ),
    (
        "2021-01-01 00:00:00.000001 W | etcdserver: waiting for ReadIndex response took too long, "
        "retrying (sent-request-id: 13846213686333896142, retry-timeout: 500ms)",
        EventKind.READ_INDEX_RETRY,
        None,
        0.5,
    ),
    (  # reference (3.3 shape)
        "2021-05-14 16:48:54.620244 W | etcdserver: timed out waiting for read index response "
        "(local node might have slow network)",
        EventKind.READ_INDEX_TIMEOUT,
        None,
        None,
    ),
    (
        '{"level":"warn","ts":"2021-05-14T16:48:54.620Z","caller":"etcdserver/v3_server.go:1005",'
        '"msg":"timed out waiting for read index response (local node might have slow network)",'
        '"timeout":"7s"}',
        EventKind.READ_INDEX_TIMEOUT,
        None,
        7.0,
    ),
    (
        "2021-01-01 00:00:00.000001 W | etcdserver: ignored out-of-date read index response; local "
        "node read indexes queueing up and waiting to be in sync with leader (request ID want 5, "
        "got 4)",
        EventKind.READ_INDEX_OUT_OF_DATE,
        None,
        None,
    ),
    (  # reference, etcd#12094 (3.4 trace)
        '{"level":"info","ts":"2020-06-30T01:17:40.463Z","caller":"traceutil/trace.go:145","msg":'
        '"trace[361369344] range","detail":"{range_begin:/registry/services/specs; range_end:'
        '/registry/services/spect; response_count:0; response_revision:17787174; }","duration":'
        '"2.885487753s","start":"2020-06-30T01:17:37.578Z","end":"2020-06-30T01:17:40.463Z",'
        '"steps":["trace[361369344] \'agreement among raft nodes before linearized reading\'  '
        '(duration: 2.885370245s)"]}',
        EventKind.SLOW_TRACE,
        2.885487753,
        None,
    ),
    (  # reference, etcd#17855: request stats at warn
        '{"level":"warn","ts":"2024-04-22T17:18:03.21385+0800","caller":"v3rpc/interceptor.go:197",'
        '"msg":"request stats","start time":"2024-04-22T17:18:00.213095+0800","time spent":'
        '"3.000743014s","remote":"127.0.0.1:39294","response type":"/etcdserverpb.KV/Range",'
        '"request count":0,"request size":28,"response count":0,"response size":0,"request '
        'content":"key:\\"/cs/leader\\" range_end:\\"/cs/leades\\" sort_order:ASCEND '
        'sort_target:MOD "}',
        EventKind.SLOW_GRPC_REQUEST,
        3.000743014,
        None,
    ),
    (  # reference (3.5 raft logger)
        '{"level":"info","ts":"2024-05-14T20:25:47.051139Z","logger":"raft","caller":"etcdserver/'
        'zap_raft.go:77","msg":"raft.node: 91bc3c398fb3c146 elected leader 91bc3c398fb3c146 at '
        'term 3"}',
        EventKind.LEADER_CHANGE,
        None,
        None,
    ),
    (  # reference (3.4 capnslog mode: raft's Go log)
        "raft2022/09/06 07:21:50 INFO: raft.node: 8e9e05c52164694d elected leader 8e9e05c52164694d "
        "at term 3",
        EventKind.LEADER_CHANGE,
        None,
        None,
    ),
    (
        "2017-04-27 14:13:31.491815 I | raft: raft.node: c89feb932daef420 changed leader from "
        "6d4f535bae3ab960 to c89feb932daef420 at term 5",
        EventKind.LEADER_CHANGE,
        None,
        None,
    ),
    (  # reference (3.5)
        '{"level":"warn","ts":"2024-05-14T20:27:13.557385Z","caller":"rafthttp/probing_status.go:'
        '68","msg":"prober detected unhealthy status","round-tripper-name":"ROUND_TRIPPER_SNAPSHOT"'
        ',"remote-peer-id":"8211f1d0f64f3269","rtt":"416.079µs","error":"dial tcp 127.0.0.1:12380:'
        ' connect: connection refused"}',
        EventKind.PEER_UNHEALTHY,
        None,
        None,
    ),
    (
        "2021-01-01 00:00:00.000001 W | rafthttp: health check for peer fc4903fb2b15393d could not "
        "connect: dial tcp 127.0.0.1:2380: connect: connection refused",
        EventKind.PEER_UNHEALTHY,
        None,
        None,
    ),
    (  # reference (OpenShift must-gather, with the kubelet prefix)
        '2022-07-04T06:35:26.512448489Z {"level":"warn","ts":"2022-07-04T06:35:26.512Z","caller":'
        '"rafthttp/probing_status.go:86","msg":"prober found high clock drift","round-tripper-name"'
        ':"ROUND_TRIPPER_SNAPSHOT","remote-peer-id":"d66e878e1cd03cfc","clock-drift":'
        '"8m0.640985013s","rtt":"502.906µs"}',
        EventKind.CLOCK_DRIFT,
        480.640985013,
        None,
    ),
    (  # reference (capnslog shape, pre-3.3 without the prober suffix)
        "2018-05-23 17:00:29.475936 W | rafthttp: the clock difference against peer "
        "5bd0394181f135dd is too high [10.449391606s > 1s]",
        EventKind.CLOCK_DRIFT,
        10.449391606,
        1.0,
    ),
    (
        "2018-05-23 17:00:29.475936 W | rafthttp: the clock difference against peer "
        '5bd0394181f135dd is too high [1.2s > 1s] (prober "ROUND_TRIPPER_RAFT_MESSAGE")',
        EventKind.CLOCK_DRIFT,
        1.2,
        1.0,
    ),
    (
        '{"level":"warn","ts":"2024-05-14T20:27:13.557385Z","caller":"rafthttp/peer.go:267","msg":'
        '"dropped internal Raft message since sending buffer is full (overloaded network)",'
        '"message-type":"MsgHeartbeat","local-member-id":"a","from":"a","remote-peer-id":"b",'
        '"remote-peer-name":"pipeline","remote-peer-active":false}',
        EventKind.RAFT_MESSAGE_DROPPED,
        None,
        None,
    ),
    (
        "2021-01-01 00:00:00.000001 W | rafthttp: dropped MsgProp to 247ae21ff9436b2d since "
        "streamMsg's sending buffer is full",
        EventKind.RAFT_MESSAGE_DROPPED,
        None,
        None,
    ),
    (
        "2021-01-01 00:00:00.000001 W | rafthttp: dropped internal raft message to "
        "247ae21ff9436b2d since pipeline's sending buffer is full (bad/overloaded network) "
        "[merged 12 repeated lines in 1.2s]",
        EventKind.RAFT_MESSAGE_DROPPED,
        None,
        None,
    ),
    (
        '{"level":"warn","ts":"2021-01-01T00:00:00.000Z","caller":"backend/backend.go:373","msg":'
        '"snapshotting taking too long to transfer","taking":"30.000125s","bytes":1234,'
        '"size":"1.2 kB"}',
        EventKind.SNAPSHOT_TRANSFER_SLOW,
        30.000125,
        None,
    ),
    (
        "2021-01-01 00:00:00.000001 W | etcdserver: snapshotting is taking more than 30.000116 "
        "seconds to finish transferring 40 MB [started at 2021-01-01 00:00:00 +0000 UTC]",
        EventKind.SNAPSHOT_TRANSFER_SLOW,
        30.000116,
        None,
    ),
    (  # reference, kubernetes#43363 (3.0–3.2)
        "2017-03-20 02:35:04.780158 W | etcdserver: apply entries took too long "
        "[12.318867ms for 1 entries]",
        EventKind.APPLY_ENTRIES_SLOW,
        0.012318867,
        None,
    ),
    (  # reference, etcd#6978 (journald)
        "Dec 09 23:19:56 ip-172-30-0-123 etcd[16048]: apply entries took too long "
        "[11.438076ms for 1 entries]",
        EventKind.APPLY_ENTRIES_SLOW,
        0.011438076,
        None,
    ),
]


@pytest.mark.parametrize(("line", "kind", "took", "expected"), SIMPLE)
def test_event_kinds(
    line: str, kind: EventKind, took: float | None, expected: float | None
) -> None:
    e = event(line)
    assert e.kind is kind
    assert e.duration_seconds == (pytest.approx(took) if took is not None else None)
    assert e.expected_seconds == (pytest.approx(expected) if expected is not None else None)
    # a trace names its operation (exporter/parser/trace.py); no other kind but slow_request does
    operation = Operation.RANGE if kind is EventKind.SLOW_TRACE else None
    assert (e.operation, e.read_only, e.resource) == (operation, None, None)


NOT_EVENTS = [
    # request stats below the warn threshold are debug lines
    '{"level":"debug","ts":"2024-04-22T17:18:03.21385+0800","caller":"v3rpc/interceptor.go:182",'
    '"msg":"request stats","start time":"x","time spent":"3ms"}',
    # "lost leader" is followed by "elected leader": not counted twice
    "2017-04-27 14:13:31.491815 I | raft: raft.node: c89feb932daef420 lost leader "
    "6d4f535bae3ab960 at term 4",
    "raft2022/09/06 07:21:50 INFO: 8e9e05c52164694d became leader at term 3",
    '{"level":"info","ts":"2024-05-14T20:25:47.051139Z","logger":"raft","caller":"etcdserver/'
    'zap_raft.go:77","msg":"91bc3c398fb3c146 became leader at term 3"}',
    # "took too long" inside an unrelated error text is not a slow request
    '{"level":"warn","ts":"2024-01-01T00:00:00.000Z","caller":"v3rpc/interceptor.go:1","msg":'
    '"failed to apply request","took":"2s","request":"x","error":"etcdserver: request timed out, '
    'waiting for the applied index took too long"}',
    '2021-01-01 00:00:00.000001 W | etcdserver: failed to apply request "header:<ID:1 > put:<key:'
    '\\"a\\" value_size:1 >" with response "" took (1.9µs) to execute, err is etcdserver: request '
    "timed out, leader transfer took too long",
    "2021-01-01 00:00:00.000001 W | etcdserver: server is likely overloaded",
    "2021-01-01 00:00:00.000001 I | etcdserver: published {Name:a ClientURLs:[x]} to cluster y",
    "2021-01-01 00:00:00.000001 W | etcdserver: apply entries took too long but not in shape",
    '{"level":"info","ts":"2022-05-10T04:41:55.246Z","caller":"x","msg":"hello"}',
    "Dec  9 23:19:56 host systemd[1]: Started etcd.",
    "2021-12-09T23:19:56+0000 host etcd[16048]: starting member 8e9e05c52164694d in cluster x",
    # other things etcd writes to stderr
    "WARNING: 2026/11/21 06:33:25 [core] grpc: Server.Serve failed to create ServerTransport: EOF",
    "INFO: 2026/11/21 06:32:12 [core] Subchannel Connectivity change to READY",
    "[WARNING] Deprecated '--logger=capnslog' flag is set; use '--logger=zap' flag instead",
]


@pytest.mark.parametrize("line", NOT_EVENTS)
def test_etcd_lines_of_no_interest(line: str) -> None:
    assert parse_line(line) is None


def test_36_console_format() -> None:
    warn = (
        "2025-11-16T00:15:22.266350Z\twarn\tetcdserver/raft.go:388\tleader failed to send out "
        "heartbeat on time; took too long, leader is overloaded likely from slow disk\t"
        '{"to": "dcb68c82481661be", "heartbeat-interval": "100ms", "expected-duration": "200ms", '
        '"exceeded-duration": "2.406773972s"}'
    )
    e = event(warn)
    assert (e.kind, e.duration_seconds, e.expected_seconds) == (
        EventKind.HEARTBEAT_LATE,
        2.406773972,
        0.2,
    )
    assert e.time == datetime(2025, 11, 16, 0, 15, 22, 266350, tzinfo=UTC)
    slow = (
        "2025-11-16T00:15:22.266350Z\twarn\ttxn/util.go:93\tapply request took too long\t"
        '{"took": "4.99863799s", "expected-duration": "100ms", "prefix": "read-only range ", '
        '"request": "key:\\"/registry/pods/a/b\\" ", "response": ""}'
    )
    e = event(slow)
    assert (e.operation, e.read_only, e.resource) == (Operation.RANGE, True, "pods")
    raft = (
        "2025-11-16T00:15:22.266350Z\tinfo\traft\tv3@v3.6.0/node.go:370\traft.node: "
        "dcb68c82481661be elected leader dcb68c82481661be at term 2"
    )
    assert event(raft).kind is EventKind.LEADER_CHANGE
    info = "2025-11-16T00:15:22.266350Z\tinfo\tembed/etcd.go:1\tstarting an etcd server"
    assert parse_line(info) is None
    assert parse_line("2025-11-16T00:15:22.266350Z\tnotalevel\tx\ty") is UNPARSED


def test_journald_short_iso_with_zap_inside() -> None:
    line = (
        '2023-03-03T01:45:11+0000 node-1 etcd[812]: {"level":"warn",'
        '"ts":"2023-03-03T01:45:11.871Z","caller":"wal/wal.go:805","msg":"slow fdatasync",'
        '"took":"1.044022245s","expected-duration":"1s"}'
    )
    e = event(line)
    assert e.kind is EventKind.SLOW_FDATASYNC
    assert e.time == datetime(2023, 3, 3, 1, 45, 11, 871000, tzinfo=UTC)
    bare = (
        "2023-03-03T01:45:11+0100 node-1 etcd[812]: apply entries took too long [2s for 1 entries]"
    )
    assert event(bare).time == datetime(2023, 3, 3, 0, 45, 11, tzinfo=UTC)


def test_kubelet_prefix_time_is_a_fallback() -> None:
    e = event(KUBELET + INCIDENT)  # etcd's own time wins
    assert e.time == datetime(2020, 9, 3, 6, 0, 7, 556157, tzinfo=UTC)
    bare = KUBELET + "apply entries took too long [12.318867ms for 1 entries]"
    assert event(bare).time == datetime(2019, 3, 6, 19, 0, 59, 117515, tzinfo=UTC)


def test_split_kubelet_prefix() -> None:
    assert split_kubelet_prefix(KUBELET + "rest") == (KUBELET[:-1], "rest")
    assert split_kubelet_prefix("2019-03-06T19:00:59+02:00 x") == ("2019-03-06T19:00:59+02:00", "x")
    assert split_kubelet_prefix("rest") == (None, "rest")
    assert split_kubelet_prefix(INCIDENT) == (None, INCIDENT)  # a space, not a T
    assert split_kubelet_prefix("2019-03-06T19:00:59.117515322Zx") == (
        None,
        "2019-03-06T19:00:59.117515322Zx",
    )


def test_kubelet_prefix_embedded_in_a_split_long_line() -> None:
    """A line over 16 KiB comes back from the kubelet as two prefixed fragments glued together."""
    keys = " ".join(f'key:\\"/registry/pods/ns/p{i}\\"' for i in range(600))
    line = (
        '{"level":"warn","ts":"2024-01-01T00:00:00.000Z","caller":"etcdserver/util.go:166","msg":'
        '"apply request took too long","took":"1.5s","expected-duration":"100ms","prefix":"",'
        f'"request":"header:<ID:1 > txn:<compare:<{keys}> >","response":"size:18"}}'
    )
    cut = 16384
    glued = KUBELET + line[:cut] + "2019-03-06T19:00:59.217515322Z " + line[cut:]
    assert len(line) > cut
    e = event(glued)
    assert (e.kind, e.operation, e.resource, e.duration_seconds) == (
        EventKind.SLOW_REQUEST,
        Operation.TXN,
        "pods",
        1.5,
    )
