"""Generated etcd logs for benchmarks and tests: the `easy` and the `realistic` corpus.

Both are zap logs (etcd 3.5 shapes, every line with the kubelet's `timestamps=true` prefix),
streamed to disk line by line (any size, flat memory). The mixes are described in
bench/parse_bench.py, which times `parse` on them; tests use the same generators, and
`expected_events` says what `parse` must count for a corpus.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

SLOW_REQUEST_MSG = '"msg":"apply request took too long"'
FDATASYNC_MSG = '"msg":"slow fdatasync"'

RESOURCES = [
    "/registry/pods/shoot--dev--{n}/etcd-main-0",
    "/registry/deployments/shoot--dev--{n}/kube-apiserver",
    "/registry/leases/kube-node-lease/node-{n}",
    "/registry/configmaps/kube-system/cm-{n}",
    "/registry/events/shoot--dev--{n}/ev.{n}",
    "/registry/services/specs/default/svc-{n}",
    "/registry/services/endpoints/default/svc-{n}",
    "/registry/minions/node-{n}",
    "/registry/druid.gardener.cloud/etcds/shoot--dev--{n}/etcd-main",
    "/registry/apiextensions.k8s.io/customresourcedefinitions/crd-{n}",
    "/registry/secrets/shoot--dev--{n}/token-{n}",
]

INFO_LINES = [
    '"caller":"mvcc/index.go:214","msg":"compact tree index","revision":{n}}}',
    '"caller":"mvcc/kvstore_compaction.go:57","msg":"finished scheduled compaction",'
    '"compact-revision":{n},"took":"{ms}ms"}}',
    '"caller":"mvcc/hash.go:137","msg":"storing new hash","hash":{n},"revision":{n},'
    '"compact-revision":{n}}}',
    '"caller":"etcdserver/server.go:1395","msg":"triggering snapshot",'
    '"local-member-id":"8e9e05c52164694d","local-member-applied-index":{n},'
    '"local-member-snapshot-index":{n},"local-member-snapshot-count":100000}}',
    '"caller":"etcdserver/server.go:2413","msg":"saved snapshot","snapshot-index":{n}}}',
    '"caller":"etcdserver/server.go:2443","msg":"compacted Raft logs","compact-index":{n}}}',
    '"caller":"fileutil/purge.go:77","msg":"purged","path":"/var/etcd/data/member/snap/'
    '0000000000000002-00000000000{n}.snap"}}',
    '"caller":"v3rpc/health.go:63","msg":"grpc service status changed",'
    '"service":"","status":"SERVING"}}',
    '"caller":"embed/serve.go:98","msg":"ready to serve client requests"}}',
    '"caller":"etcdserver/server.go:2063","msg":"published local member to cluster through raft",'
    '"local-member-id":"8e9e05c52164694d","cluster-id":"cdf818194e3a8c32"}}',
    '"caller":"wal/wal.go:789","msg":"created a new WAL segment","path":'
    '"/var/etcd/data/member/wal/0000000000000001-00000000000{n}.wal"}}',
    '"caller":"membership/cluster.go:584","msg":"updated cluster version",'
    '"cluster-id":"cdf818194e3a8c32","local-member-id":"8e9e05c52164694d",'
    '"from":"3.0","to":"3.5"}}',
]


def _request(rng: random.Random, n: int) -> tuple[str, str, str]:
    """(prefix, request, response) of a slow request of a random operation and resource."""
    key = rng.choice(RESOURCES).format(n=n % 500)
    op = rng.random()
    if op < 0.5:
        end = ' range_end:\\"' + key.rsplit("/", 1)[0] + '0\\"' if op < 0.1 else ""
        return "read-only range ", f'key:\\"{key}\\"{end} ', "range_response_count:1 size:2045"
    if op < 0.85:
        return (
            "",
            f'header:<ID:{n} username:\\"kube-apiserver-etcd-client\\" auth_revision:1 > '
            f'txn:<compare:<target:MOD key:\\"{key}\\" mod_revision:{n} > success:<request_put:'
            f'<key:\\"{key}\\" value_size:363 >> failure:<>>',
            "size:18",
        )
    if op < 0.95:
        return "", f'header:<ID:{n} > put:<key:\\"{key}\\" value_size:42 >', "size:6"
    return "", f"header:<ID:{n} > lease_grant:<ttl:15-second id:694d6d1ba410{n:04x}>", "size:42"


def _lines(count: int, seed: int) -> Iterator[tuple[str, str]]:
    """(kind, line) pairs; kind is 'request', 'fdatasync' or 'info'."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    for n in range(count):
        now = start + timedelta(microseconds=n * 997)
        prefix = now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z "
        ts = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        roll = rng.random()
        if roll < 0.02:
            pre, req, resp = _request(rng, n)
            yield (
                "request",
                (
                    f'{prefix}{{"level":"warn","ts":"{ts}","caller":"etcdserver/util.go:166",'
                    f'"msg":"apply request took too long","took":"{rng.uniform(0.1, 15):.9f}s",'
                    f'"expected-duration":"100ms","prefix":"{pre}","request":"{req}",'
                    f'"response":"{resp}"}}'
                ),
            )
        elif roll < 0.03:
            yield (
                "fdatasync",
                (
                    f'{prefix}{{"level":"warn","ts":"{ts}","caller":"wal/wal.go:802",'
                    f'"msg":"slow fdatasync","took":"{rng.uniform(1, 4):.9f}s",'
                    f'"expected-duration":"1s"}}'
                ),
            )
        else:
            body = rng.choice(INFO_LINES).format(n=n, ms=rng.randint(1, 90))
            yield "info", f'{prefix}{{"level":"info","ts":"{ts}",{body}'


def generate(path: Path, count: int, seed: int = 7) -> dict[str, int]:
    """Write the corpus; returns how many lines of each kind it holds."""
    counts = {"request": 0, "fdatasync": 0, "info": 0}
    with path.open("w", encoding="utf-8") as out:
        for kind, line in _lines(count, seed):
            counts[kind] += 1
            out.write(line + "\n")
    return counts


# --- the realistic corpus: a slowed etcd 3.5 (see the module docstring) ---------------------

MEMBER = "8e9e05c52164694d"
PEERS = ("7c63cf39486f57b0", "9a3a40060ff443c4")
DATA_DIR = "/var/etcd/data/new.etcd"
WARN_HEAD = '{{"level":"warn","ts":"{ts}","caller":"{caller}","msg":"{msg}"'

# What each line kind counts as in `parse --output json` (`events_by_kind`); others count nothing.
EVENT_OF = {
    "trace": "slow_trace",
    "slow_request": "slow_request",
    "request_stats": "slow_grpc_request",
    "read_index_retry": "read_index_retry",
    "fdatasync": "slow_fdatasync",
    "heartbeat": "heartbeat_late",
    "leader_elected": "leader_change",
}
# Share of the draws per kind (one draw, one line; a leader change is six lines); the rest is
# "periodic".
MIX = (
    ("trace", 0.100),
    ("slow_request", 0.020),
    ("request_stats", 0.020),
    ("read_index_retry", 0.015),
    ("failed_apply", 0.015),
    ("fdatasync", 0.010),
    ("heartbeat", 0.010),
    ("leader_change", 0.0002),
    ("grpc_text", 0.0005),
)

# Kubernetes keys, `{n}` a number; a leading `!` marks a prefix that also gets listed.
K8S_KEYS = [
    "/registry/pods/shoot--dev--s{n}/etcd-main-0",
    "/registry/pods/kube-system/kube-proxy-{n}",
    "/registry/deployments/shoot--dev--s{n}/kube-apiserver",
    "/registry/replicasets/shoot--dev--s{n}/kube-apiserver-7d9c{n}",
    "/registry/controllerrevisions/shoot--dev--s{n}/etcd-main-{n}",
    "/registry/statefulsets/shoot--dev--s{n}/etcd-main",
    "/registry/leases/kube-node-lease/node-{n}",
    "/registry/leases/shoot--dev--s{n}/gardener-resource-manager",
    "/registry/configmaps/shoot--dev--s{n}/etcd-bootstrap-{n}",
    "/registry/secrets/shoot--dev--s{n}/etcd-client-tls-{n}",
    "/registry/events/shoot--dev--s{n}/etcd-main-0.17a3c{n}",
    "/registry/services/specs/shoot--dev--s{n}/etcd-main-client",
    "/registry/services/endpoints/shoot--dev--s{n}/etcd-main-client",
    "/registry/endpointslices/shoot--dev--s{n}/etcd-main-client-{n}",
    "/registry/minions/node-{n}",
    "/registry/namespaces/shoot--dev--s{n}",
    "/registry/serviceaccounts/shoot--dev--s{n}/default",
    "/registry/jobs/shoot--dev--s{n}/backup-{n}",
    "/registry/horizontalpodautoscalers/shoot--dev--s{n}/kube-apiserver",
    "/registry/poddisruptionbudgets/shoot--dev--s{n}/etcd-main",
    "/registry/druid.gardener.cloud/etcds/shoot--dev--s{n}/etcd-main",
    "/registry/extensions.gardener.cloud/infrastructures/shoot--dev--s{n}/s{n}",
    "/registry/machine.sapcloud.io/machines/shoot--dev--s{n}/worker-{n}",
    "/registry/apiextensions.k8s.io/customresourcedefinitions/crd-{n}.gardener.cloud",
]
TRACE_OPS = (("put", 0.55), ("linearizableReadLoop", 0.73), ("range", 0.89), ("transaction", 0.98))
FAILED_APPLY = (
    ("lease_revoke:<id:{lease}>", "lease not found"),
    ("compaction:<revision:{rev} > ", "mvcc: required revision has been compacted"),
)
GRPC_TEXT = (
    "WARNING: {date} [core] grpc: Server.Serve failed to create ServerTransport:  EOF",
    "WARNING: {date} [core] grpc: Server.processUnaryRPC failed to write status: connection "
    'error: desc = "transport is closing"',
)
# (weight, caller, msg and fields): the periodic lines, in the proportions etcd 3.5.1 wrote them
# with periodic compaction, corruption checks and a small snapshot count.
PERIODIC = (
    (14, "v3compactor/periodic.go:134",
     '"starting auto periodic compaction","revision":{rev},"compact-period":"30m0s"'),
    (14, "v3compactor/periodic.go:142",
     '"completed auto periodic compaction","revision":{rev},"compact-period":"30m0s",'
     '"took":"{took}"'),
    (14, "mvcc/index.go:214", '"compact tree index","revision":{rev}'),
    (14, "mvcc/kvstore_compaction.go:57",
     '"finished scheduled compaction","compact-revision":{rev},"took":"{took}"'),
    (6, "mvcc/hash.go:137",
     '"storing new hash","hash":{hash},"revision":{rev},"compact-revision":{rev0}'),
    (12, "etcdserver/corrupt.go:244",
     '"finished peer corruption check","number-of-peers-checked":2'),
    (8, "etcdserver/server.go:1368",
     f'"triggering snapshot","local-member-id":"{MEMBER}","local-member-applied-index":{{idx}},'
     '"local-member-snapshot-index":{idx0},"local-member-snapshot-count":10000'),
    (8, "etcdserver/server.go:2363", '"saved snapshot","snapshot-index":{idx}'),
    (8, "etcdserver/server.go:2393", '"compacted Raft logs","compact-index":{idx0}'),
    (6, "fileutil/purge.go:77",
     f'"purged","path":"{DATA_DIR}/member/snap/0000000000000002-{{idx16}}.snap"'),
    (2, "wal/wal.go:782",
     f'"created a new WAL segment","path":"{DATA_DIR}/member/wal/00000000000000a1-{{idx16}}.wal"'),
)  # fmt: skip


def go_duration(seconds: float) -> str:
    """A Go `time.Duration` as etcd logs it: `1.452844414s`, `941.622501ms`, `21.751µs`."""
    if seconds >= 1:
        text, unit = f"{seconds:.9f}", "s"
    elif seconds >= 1e-3:
        text, unit = f"{seconds * 1e3:.6f}", "ms"
    else:
        text, unit = f"{seconds * 1e6:.3f}", "µs"
    return text.rstrip("0").rstrip(".") + unit


def _key(rng: random.Random) -> str:
    return rng.choice(K8S_KEYS).format(n=rng.randrange(400))


def _listing(key: str) -> tuple[str, str]:
    """(start, end) of a listing of a key's collection: `/registry/pods/ns/`, `…/pods/ns0`."""
    parent = key.rsplit("/", 1)[0]
    return parent + "/", parent + "0"


def _quoted(text: str) -> str:
    """A request as zap writes it in a JSON string (its quotes escaped)."""
    return text.replace('"', '\\"')


def _slow_request(rng: random.Random, n: int) -> tuple[str, str, str]:
    """(prefix, request, response) of a slow request: every operation, varied resources."""
    key, op, header = _key(rng), rng.random(), f"header:<ID:{7587869474165500000 + n} > "
    if op < 0.20:
        return "read-only range ", f'key:"{key}" ', "range_response_count:1 size:2045"
    if op < 0.35:
        begin, end = _listing(key)
        extra = rng.choice(("", "", "count_only:true ", "keys_only:true ", "limit:500 "))
        count = 0 if extra.startswith("count") else rng.randrange(1, 3000)
        return (
            "read-only range ",
            f'key:"{begin}" range_end:"{end}" {extra}',
            f"range_response_count:{count} size:{count * 1400 + 7}",
        )
    if op < 0.40:
        return (
            "read-only txn ",
            f'compare:<target:MOD key:"{key}" mod_revision:{n} > success:<request_range:'
            f'<key:"{key}" > > failure:<>',
            "responses:<range_response_count:1> size:1874",
        )
    if op < 0.65:
        header = f'header:<ID:{7587869474165500000 + n} username:"etcd-client" auth_revision:1 > '
        return (
            "",
            f'{header}txn:<compare:<target:MOD key:"{key}" mod_revision:{n} > success:'
            f'<request_put:<key:"{key}" value_size:{rng.randrange(200, 9000)} >> failure:'
            f'<request_range:<key:"{key}" > >>',
            "size:18",
        )
    if op < 0.80:
        return "", f'{header}put:<key:"{key}" value_size:{rng.randrange(4, 9000)} >', "size:6"
    if op < 0.88:
        if rng.random() < 0.5:
            return "", f'{header}delete_range:<key:"{key}" > ', "size:7"
        begin, end = _listing(key)
        return "", f'{header}delete_range:<key:"{begin}" range_end:"{end}" > ', "size:7"
    if op < 0.93:
        ttl = rng.choice((15, 60, 3600))
        return "", f"{header}lease_grant:<ttl:{ttl}-second id:694d8b1c{n:08x}>", "size:41"
    if op < 0.98:
        return "", f"{header}lease_revoke:<id:694d8b1c{n:08x}>", "size:29"
    return "", f"{header}compaction:<revision:{n} > ", "size:6"


def _trace(rng: random.Random, n: int, ts: str, now: datetime) -> str:
    """A `trace[…] <op>` info line as etcd 3.5's traceutil writes it (shapes of the fixtures)."""
    seconds = rng.uniform(0.1, 3.0)
    start = (now - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"
    tid, roll, key = rng.randrange(10**8, 4 * 10**9), rng.random(), _key(rng)
    op = next((name for name, upto in TRACE_OPS if roll < upto), "compact")
    first = rng.uniform(0.5, 1.0) * seconds
    steps: list[tuple[str, float]]
    if op == "put":
        detail = f"{{key:{key}; req_size:{rng.randrange(50, 9000)}; response_revision:{n}; }}"
        steps = [("process raft request", first)]
        if rng.random() < 0.2:
            steps.append(("get key's previous created_revision and leaseID", seconds - first))
    elif op == "linearizableReadLoop":
        detail = f"{{readStateIndex:{n + 40}; appliedIndex:{n + 37}; }}"
        steps = [
            ("read index received", first),
            ("applied index is now lower than readState.Index", seconds - first),
        ]
    elif op == "range":
        begin, end = _listing(key) if rng.random() < 0.5 else (key, "")
        detail = (
            f"{{range_begin:{begin}; range_end:{end}; response_count:{rng.randrange(1, 500)}; "
            f"response_revision:{n}; }}"
        )
        steps = [("agreement among raft nodes before linearized reading", first)]
        if rng.random() < 0.2:
            steps.append(("range keys from in-memory index tree", seconds - first))
    elif op == "transaction":
        if rng.random() < 0.5:
            detail = f"{{read_only:false; response_revision:{n}; number_of_response:1; }}"
            steps = [("process raft request", first)]
        else:
            detail = f"{{read_only:true; number_of_response:1; response_revision:{n}; }}"
            steps = [("agreement among raft nodes before linearized reading", first)]
        if rng.random() < 0.2:
            steps.append(("compare", seconds - first))
    else:
        detail = f"{{revision:{n}; response_revision:{n}; }}"
        steps = [("check and update compact revision", first)]
    listed = ",".join(
        f"\"trace[{tid}] '{step}'  (duration: {go_duration(took)})\"" for step, took in steps
    )
    return (
        f'{{"level":"info","ts":"{ts}","caller":"traceutil/trace.go:171","msg":"trace[{tid}] {op}",'
        f'"detail":"{detail}","duration":"{go_duration(seconds)}","start":"{start}","end":"{ts}",'
        f'"steps":[{listed}],"step_count":{len(steps)}}}'
    )


def _request_stats(rng: random.Random, n: int, ts: str, now: datetime) -> str:
    """A `request stats` warning of the gRPC interceptor (a request slower than 300 ms)."""
    seconds = rng.uniform(0.3, 3.0)
    start = (now - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"
    key = _key(rng)
    kind = rng.random()
    if kind < 0.45:
        call, counts, content = "KV/Range", (0, 52, 1, 2045), f'key:"{key}" '
    elif kind < 0.6:
        begin, end = _listing(key)
        listed = rng.randrange(1, 3000)
        call, counts = "KV/Range", (0, 64, listed, listed * 1400)
        content = f'key:"{begin}" range_end:"{end}" limit:500 '
    elif kind < 0.85:
        call, counts = "KV/Txn", (1, 2106, 0, 42)
        content = (
            f'compare:<target:MOD key:"{key}" mod_revision:{n} > success:<request_put:'
            f'<key:"{key}" value_size:2045 >> failure:<request_range:<key:"{key}" > >'
        )
    elif kind < 0.93:
        call, counts = "Lease/LeaseGrant", (-1, -1, -1, -1)
        content = ""
    else:
        call, counts = "KV/Put", (1, 2100, 0, 28)
        content = f'key:"{key}" value_size:2045 '
    return (
        WARN_HEAD.format(ts=ts, caller="v3rpc/interceptor.go:197", msg="request stats")
        + f',"start time":"{start}","time spent":"{go_duration(seconds)}",'
        f'"remote":"10.242.{n % 250}.{n % 200 + 2}:{32768 + n % 28000}",'
        f'"response type":"/etcdserverpb.{call}","request count":{counts[0]},'
        f'"request size":{counts[1]},"response count":{counts[2]},"response size":{counts[3]},'
        f'"request content":"{_quoted(content)}"}}'
    )


def _leader_change(term: int, ts: str) -> list[tuple[str, str]]:
    """The six raft lines of a follower seeing a new leader elected; the last is the event."""
    old, new = PEERS if term % 2 else PEERS[::-1]
    head = f'{{"level":"info","ts":"{ts}","logger":"raft","caller":"etcdserver/zap_raft.go:77",'
    index = term * 1000 + 263
    messages = [
        ("raft", f"{MEMBER} [logterm: {term}, index: {index}, vote: {old}] cast MsgPreVote for "
                 f"{new} [logterm: {term}, index: {index}] at term {term}"),
        ("raft", f"{MEMBER} [term: {term}] received a MsgVote message with higher term from "
                 f"{new} [term: {term + 1}]"),
        ("raft", f"{MEMBER} became follower at term {term + 1}"),
        ("raft", f"{MEMBER} [logterm: {term}, index: {index}, vote: 0] cast MsgVote for {new} "
                 f"[logterm: {term}, index: {index}] at term {term + 1}"),
        ("raft", f"raft.node: {MEMBER} lost leader {old} at term {term + 1}"),
        ("leader_elected", f"raft.node: {MEMBER} elected leader {new} at term {term + 1}"),
    ]  # fmt: skip
    return [(kind, f'{head}"msg":"{msg}"}}') for kind, msg in messages]


def _periodic(rng: random.Random, n: int, ts: str) -> str:
    """One of the periodic info lines (compaction, hash, corruption check, snapshot, purge)."""
    _, caller, body = rng.choices(PERIODIC, weights=PERIODIC_WEIGHTS)[0]
    took = go_duration(rng.uniform(2e-5, 0.2))
    fields = body.format(
        rev=n, rev0=max(n - 5000, 1), hash=rng.randrange(2**32), idx=n + 9000, idx0=n,
        idx16=f"{n:016x}", took=took,
    )  # fmt: skip
    return f'{{"level":"info","ts":"{ts}","caller":"{caller}","msg":{fields}}}'


PERIODIC_WEIGHTS = [weight for weight, _, _ in PERIODIC]


def realistic_lines(count: int, seed: int) -> Iterator[tuple[str, str]]:
    """(kind, line) pairs of the realistic mix, `count` lines; kind is a key of `EVENT_OF`,
    `failed_apply`, `raft`, `grpc_text` or `periodic`."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    bounds, upto = [], 0.0
    for kind, share in MIX:
        upto += share
        bounds.append((upto, kind))
    n, term = 0, 2
    while n < count:
        now = start + timedelta(microseconds=n * 997)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%f")
        prefix, ts = stamp + "123Z ", stamp[:23] + "Z"
        roll = rng.random()
        kind = next((k for bound, k in bounds if roll < bound), "periodic")
        if kind == "periodic":
            yield kind, prefix + _periodic(rng, n, ts)
        elif kind == "trace":
            yield kind, prefix + _trace(rng, n, ts, now)
        elif kind == "slow_request":
            pre, req, resp = _slow_request(rng, n)
            yield (
                kind,
                prefix
                + WARN_HEAD.format(ts=ts, caller="etcdserver/util.go:166", msg=SLOW_REQUEST)
                + f',"took":"{go_duration(rng.uniform(0.1, 15))}","expected-duration":"100ms",'
                f'"prefix":"{pre}","request":"{_quoted(req)}","response":"{resp}"}}',
            )
        elif kind == "request_stats":
            yield kind, prefix + _request_stats(rng, n, ts, now)
        elif kind == "read_index_retry":
            yield (
                kind,
                prefix
                + WARN_HEAD.format(ts=ts, caller="etcdserver/v3_server.go:815", msg=READ_INDEX)
                + f',"sent-request-id":{rng.randrange(2**62, 2**63)},"retry-timeout":"500ms"}}',
            )
        elif kind == "failed_apply":
            request, error = rng.choice(FAILED_APPLY)
            request = request.format(lease=f"694d8b1c{n:08x}", rev=max(n - 9000, 1))
            yield (
                kind,
                prefix
                + WARN_HEAD.format(ts=ts, caller="etcdserver/util.go:123", msg=FAILED)
                + f',"took":"{go_duration(rng.uniform(0.05, 3))}","request":"header:<ID:'
                f'{7587869474165500000 + n} > {request}","response":"","error":"{error}"}}',
            )
        elif kind == "fdatasync":
            yield (
                kind,
                prefix
                + WARN_HEAD.format(ts=ts, caller="wal/wal.go:802", msg="slow fdatasync")
                + f',"took":"{go_duration(rng.uniform(1, 4))}","expected-duration":"1s"}}',
            )
        elif kind == "heartbeat":
            yield (
                kind,
                prefix
                + WARN_HEAD.format(ts=ts, caller="etcdserver/raft.go:369", msg=HEARTBEAT)
                + f',"to":"{rng.choice(PEERS)}","heartbeat-interval":"100ms",'
                f'"expected-duration":"200ms",'
                f'"exceeded-duration":"{go_duration(rng.uniform(0.01, 2))}"}}',
            )
        elif kind == "leader_change":
            for line_kind, line in _leader_change(term, ts)[: count - n]:
                yield line_kind, prefix + line
            n += 5
            term += 1
        else:  # grpc_text
            date = now.strftime("%Y/%m/%d %H:%M:%S")
            yield kind, prefix + rng.choice(GRPC_TEXT).format(date=date)
        n += 1


SLOW_REQUEST = "apply request took too long"
READ_INDEX = "waiting for ReadIndex response took too long, retrying"
FAILED = "failed to apply request"
HEARTBEAT = (
    "leader failed to send out heartbeat on time; took too long, leader is overloaded likely "
    "from slow disk"
)


def write_corpus(path: Path, lines: Iterator[tuple[str, str]]) -> dict[str, int]:
    """Stream (kind, line) pairs to `path`; returns how many lines of each kind it holds."""
    counts: dict[str, int] = {}
    with path.open("w", encoding="utf-8") as out:
        for kind, line in lines:
            counts[kind] = counts.get(kind, 0) + 1
            out.write(line + "\n")
    return counts


def expected_events(corpus: str, counts: dict[str, int]) -> dict[str, int]:
    """`events_by_kind` as `parse` must report it for a corpus of these line counts."""
    if corpus == "easy":
        found = {"slow_request": counts.get("request", 0), "slow_fdatasync": counts["fdatasync"]}
    else:
        found = {EVENT_OF[kind]: n for kind, n in counts.items() if kind in EVENT_OF}
    return {kind: n for kind, n in found.items() if n}


def make_corpus(path: Path, corpus: str, lines: int, seed: int) -> dict[str, int]:
    """Write one corpus, streamed; returns its line counts by kind."""
    if corpus == "easy":
        return generate(path, lines, seed)
    return write_corpus(path, realistic_lines(lines, seed))
