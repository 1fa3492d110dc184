"""etcd 3.5 zap log lines as a Gardener etcd writes them: mostly info, sometimes slow.

Shapes are those of real etcd 3.5 lines (tests/fixtures/etcd-3.5-zap, the reference catalog):
compaction, hash, snapshot, WAL and health info lines; `apply request took too long` warnings on
Kubernetes keys of every kind (range, txn, put, delete_range, lease_grant); `slow fdatasync`.
Members on a slow disk warn more. A burst is a run of slow requests in one second, as a slow disk
produces them. `marker_line` is the one line kind the generator never writes on its own (a slow
`compaction`), so the harness can time how fast an injected event reaches `/metrics`.
"""

from __future__ import annotations

import random
import time
from typing import NamedTuple

INFO = (
    '"caller":"mvcc/index.go:214","msg":"compact tree index","revision":{n}}}',
    '"caller":"mvcc/kvstore_compaction.go:66","msg":"finished scheduled compaction",'
    '"compact-revision":{n},"took":"{ms}.402113ms","current-db-size-bytes":{size},'
    '"current-db-size":"{mb} MB","current-db-size-in-use-bytes":{size},'
    '"current-db-size-in-use":"{mb} MB"}}',
    '"caller":"mvcc/hash.go:137","msg":"storing new hash","hash":{n},"revision":{n},'
    '"compact-revision":{n}}}',
    '"caller":"etcdserver/server.go:1395","msg":"triggering snapshot",'
    '"local-member-id":"8e9e05c52164694d","local-member-applied-index":{n},'
    '"local-member-snapshot-index":{n},"local-member-snapshot-count":75000}}',
    '"caller":"etcdserver/server.go:2413","msg":"saved snapshot","snapshot-index":{n}}}',
    '"caller":"etcdserver/server.go:2443","msg":"compacted Raft logs","compact-index":{n}}}',
    '"caller":"fileutil/purge.go:85","msg":"purged","path":'
    '"/var/etcd/data/new.etcd/member/snap/0000000000000004-00000000{n}.snap"}}',
    '"caller":"wal/wal.go:789","msg":"created a new WAL segment","path":'
    '"/var/etcd/data/new.etcd/member/wal/0000000000000001-00000000{n}.wal"}}',
    '"caller":"v3rpc/health.go:63","msg":"grpc service status changed","service":"",'
    '"status":"SERVING"}}',
    '"caller":"membership/cluster.go:584","msg":"updated cluster version",'
    '"cluster-id":"cdf818194e3a8c32","local-member-id":"8e9e05c52164694d","from":"3.5",'
    '"to":"3.5"}}',
)
KEYS = (
    "/registry/pods/{ns}/kube-apiserver-{n}",
    "/registry/leases/kube-system/kube-controller-manager",
    "/registry/configmaps/{ns}/cluster-autoscaler-status",
    "/registry/secrets/{ns}/token-{n}",
    "/registry/events/{ns}/kube-apiserver.{n}",
    "/registry/services/endpoints/{ns}/kube-apiserver",
    "/registry/deployments/{ns}/kube-apiserver",
    "/registry/druid.gardener.cloud/etcds/{ns}/etcd-main",
    "/registry/minions/shoot-worker-{n}",
    "/registry/resources.gardener.cloud/managedresources/{ns}/shoot-core",
)
SLOW = '"caller":"etcdserver/util.go:166","msg":"apply request took too long","took":"{took}",'
SLOW_TAIL = (
    '"expected-duration":"100ms","prefix":"{prefix}","request":"{request}","response":"{resp}"}}'
)
FDATASYNC = (
    '"caller":"wal/wal.go:802","msg":"slow fdatasync","took":"{took}","expected-duration":"1s"}}'
)

# Share of lines that warn, per member speed: (slow requests, slow fdatasyncs). A healthy member
# on pd-ssd logs a slow request about every 15 minutes at 2 lines/s; one on pd-standard about
# every 25 seconds, and a slow fdatasync every 100 seconds.
WARN_SHARE = {False: (0.0005, 0.0), True: (0.02, 0.005)}
BURST_CHANCE = 0.0005  # per member and second: about one burst a second in a 1,000-shoot seed
BURST_LINES = (5, 20)


def iso_now(now: float | None = None) -> str:
    """zap's ISO timestamp with milliseconds (`2026-11-21T06:34:15.447Z`)."""
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class Line(NamedTuple):
    """A generated line and, for a slow request, its operation as the exporter labels it: the
    writer keeps a ledger of what it sent so that the storm mode can count lost lines."""

    text: str
    operation: str | None = None


def _head(level: str, ts: str) -> str:
    return f'{{"level":"{level}","ts":"{ts}",'


class LineMaker:
    """Makes lines for one process; `rng` makes a run reproducible."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._n = 100_000

    def line(self, *, namespace: str, slow: bool, ts: str) -> Line:
        """One line of a member: info, or a warning at the member's rate."""
        self._n += 1
        roll = self._rng.random()
        requests, fsyncs = WARN_SHARE[slow]
        if roll < requests:
            return self.slow_request(namespace=namespace, ts=ts)
        if roll < requests + fsyncs:
            took = f"{1.0 + self._rng.random() * 1.5:.9f}s"
            return Line(_head("warn", ts) + FDATASYNC.format(took=took))
        template = INFO[self._n % len(INFO)]
        size = 2_000_000 + self._n
        return Line(
            _head("info", ts)
            + template.format(n=self._n, ms=self._n % 40, size=size, mb=f"{size / 1e6:.1f}")
        )

    def burst(self, *, namespace: str, ts: str) -> list[Line]:
        """A run of slow requests (a disk stall)."""
        return [
            self.slow_request(namespace=namespace, ts=ts)
            for _ in range(self._rng.randint(*BURST_LINES))
        ]

    def slow_request(self, *, namespace: str, ts: str) -> Line:
        """`apply request took too long` on a Kubernetes key."""
        rng = self._rng
        key = rng.choice(KEYS).format(ns=namespace, n=rng.randrange(50))
        took = f"{0.1 + rng.expovariate(3.0):.9f}s"
        kind = rng.random()
        if kind < 0.5:
            operation = "range"
            prefix, request, resp = (
                "read-only range ",
                f'key:\\"{key}\\" ',
                "range_response_count:1 size:9566",
            )
        elif kind < 0.7:
            operation, prefix = "txn", ""
            compare = f'compare:<target:MOD key:\\"{key}\\" mod_revision:{self._n} >'
            success = f'success:<request_put:<key:\\"{key}\\" value_size:1024 >>'
            request = f"header:<ID:{self._n} > txn:<{compare} {success} failure:<>>"
            resp = "size:20"
        elif kind < 0.85:
            operation = "put"
            prefix, request, resp = (
                "",
                f'header:<ID:{self._n} > put:<key:\\"{key}\\" value_size:2048 >',
                "size:20",
            )
        elif kind < 0.95:
            operation = "lease_grant"
            prefix, request, resp = (
                "",
                f"header:<ID:{self._n} > lease_grant:<ttl:15-second id:{self._n:x}>",
                "size:42",
            )
        else:
            operation = "delete_range"
            prefix, request, resp = (
                "",
                f'header:<ID:{self._n} > delete_range:<key:\\"{key}\\" >',
                "size:4",
            )
        text = (
            _head("warn", ts)
            + SLOW.format(took=took)
            + SLOW_TAIL.format(prefix=prefix, request=request, resp=resp)
        )
        return Line(text, operation)

    def want_burst(self) -> bool:
        """Whether a member bursts this second."""
        return self._rng.random() < BURST_CHANCE


def marker_line(ts: str | None = None) -> str:
    """A slow `compaction` request: counted as operation="compaction", never written otherwise."""
    return (
        _head("warn", ts or iso_now())
        + SLOW.format(took="1.234567890s")
        + SLOW_TAIL.format(
            prefix="", request="header:<ID:7 > compaction:<revision:4242 > ", resp="size:4"
        )
    )
