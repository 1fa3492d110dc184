"""The relayed families read from the Prometheus that already scrapes etcd (`shoot-prometheus`).

In a Gardener seed every shoot namespace runs its own Prometheus (Service `prometheus-shoot`,
port 80 → 9090), which scrapes each etcd member over mTLS as job `kube-etcd3-main` or
`kube-etcd3-events`, with the target labels `namespace`, `pod`, `role`, `service`, `container`
and `endpoint` (and no `instance`). Its `/federate` endpoint answers, for `match[]` selectors,
the latest sample of every matching series. Reading the relayed families there needs no Secret
and no route to etcd: only HTTP to that Prometheus (docs/kubernetes.md, "Scrape sources").

What a federation answer looks like (Prometheus 2.42, checked against the real binary): every
sample name is its own family with `# TYPE <sample name> untyped` and no `# HELP`; each series
carries the target labels, the Prometheus's external labels and `instance=""`, and a timestamp;
the series of several members interleave, in an order not to rely on (where they are sorted,
`le` sorts as text: `+Inf` first). The pure functions below turn such an answer back into, per
member, the families a direct scrape of etcd gives: the same names, etcd's own types and HELP
(`ETCD_FAMILIES`), etcd's own labels only (`OWN_LABELS`), histogram buckets in `le` order and
then `_sum` and `_count`, families in the order of `extract.WANTED`, and the families of
`metrics.FOLDED` folded as the extraction folds them (fold.py).

`Federation` is the small shared fetcher: one request per Prometheus URL (by default one per
namespace) per scrape interval, whatever the number of members it answers for. Concurrent callers
wait for the same request, and an answer (or a failure) is reused for `max_age` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlencode

import aiohttp

from exporter.model import RelayedFamily, Sample, ScrapeSpec
from exporter.scrape.buffers import BodyBuffers
from exporter.scrape.caches import OWN_LABELS_MAX, Shared
from exporter.scrape.client import fetch_into
from exporter.scrape.errors import ScrapeError
from exporter.scrape.extract import SUFFIXES, WANTED, Labels, parse_sample_line, sample_value
from exporter.scrape.fold import Fold, FoldKey, fold_family, sample_order

logger = logging.getLogger(__name__)

# etcd's own TYPE and HELP of every relayed family, as etcd 3.4 and 3.5 register them
# (tests/unit/test_federate.py compares this table with captured payloads of both). A federation
# answer carries neither, and the exported families must look exactly as when etcd is scraped.
ETCD_FAMILIES: Mapping[str, tuple[str, str]] = {
    "etcd_disk_wal_fsync_duration_seconds": (
        "histogram",
        "The latency distributions of fsync called by WAL.",
    ),
    "etcd_disk_backend_commit_duration_seconds": (
        "histogram",
        "The latency distributions of commit called by backend.",
    ),
    "etcd_server_slow_apply_total": (
        "counter",
        "The total number of slow apply requests (likely overloaded from slow disk).",
    ),
    "etcd_server_slow_read_indexes_total": (
        "counter",
        "The total number of pending read indexes not in sync with leader's or timed out read "
        "index requests.",
    ),
    "etcd_server_read_indexes_failed_total": (
        "counter",
        "The total number of failed read indexes seen.",
    ),
    "etcd_server_heartbeat_send_failures_total": (
        "counter",
        "The total number of leader heartbeat send failures (likely overloaded from slow disk).",
    ),
    "etcd_server_leader_changes_seen_total": ("counter", "The number of leader changes seen."),
    "etcd_server_has_leader": (
        "gauge",
        "Whether or not a leader exists. 1 is existence, 0 is not.",
    ),
    "etcd_server_is_leader": (
        "gauge",
        "Whether or not this member is a leader. 1 if is, 0 otherwise.",
    ),
    "etcd_server_proposals_failed_total": (
        "counter",
        "The total number of failed proposals seen.",
    ),
    "etcd_server_proposals_pending": (
        "gauge",
        "The current number of pending proposals to commit.",
    ),
    "etcd_server_proposals_committed_total": (
        "gauge",
        "The total number of consensus proposals committed.",
    ),
    "etcd_server_proposals_applied_total": (
        "gauge",
        "The total number of consensus proposals applied.",
    ),
    "etcd_mvcc_db_total_size_in_bytes": (
        "gauge",
        "Total size of the underlying database physically allocated in bytes.",
    ),
    "etcd_mvcc_db_total_size_in_use_in_bytes": (
        "gauge",
        "Total size of the underlying database logically in use in bytes.",
    ),
    "etcd_server_quota_backend_bytes": (
        "gauge",
        "Current backend storage quota size in bytes.",
    ),
    "etcd_network_peer_round_trip_time_seconds": (
        "histogram",
        "Round-Trip-Time histogram between peers",
    ),
    "etcd_disk_wal_write_bytes_total": ("gauge", "Total number of bytes written in WAL."),
    "etcd_disk_defrag_inflight": (
        "gauge",
        "Whether or not defrag is active on the member. 1 means active, 0 means not.",
    ),
    "etcd_disk_backend_defrag_duration_seconds": (
        "histogram",
        "The latency distribution of backend defragmentation.",
    ),
    # etcd 3.5+ and 3.6+: not in the captured payloads, HELP as etcd's source registers it
    "etcd_disk_wal_write_duration_seconds": (
        "histogram",
        "The latency distributions of write called by WAL.",
    ),
    "etcd_server_range_duration_seconds": (
        "histogram",
        "The latency distributions of txn.Range",
    ),
    "etcd_server_apply_duration_seconds": (
        "histogram",
        "The latency distributions of v2 apply called by backend.",
    ),
}

# The labels etcd itself puts on the relayed families (`To`: the peer of a round-trip time; `op`,
# `success`, `version`: the apply and range histograms). Every other label of a federated series
# was added by the Prometheus (target labels such as job, instance, namespace, pod, role,
# service, container, endpoint; its external labels).
OWN_LABELS = frozenset({"le", "quantile", "To", "op", "success", "version"})


Member = tuple[str, str]  # (namespace, pod); namespace "" when the series has no namespace label


def family_type(name: str) -> str:
    """The type a relayed family has in etcd ("untyped" for a family not in ETCD_FAMILIES)."""
    known = ETCD_FAMILIES.get(name)
    return known[0] if known is not None else "untyped"


# Sample name → (family name, suffix) for the relayed families: `x_bucket` → (`x`, `_bucket`) for
# a histogram `x`, `y` → (`y`, "") for a counter or gauge `y`.
_SAMPLE_FAMILIES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        name + suffix: (name, suffix)
        for name in WANTED
        for suffix in SUFFIXES.get(family_type(name), ("",))
    }
)


def match_selector(jobs: str) -> str:
    """The one `match[]` selector of the relayed families (with their histogram suffixes) of the
    etcd jobs, e.g. `{__name__=~"(etcd_a|etcd_b)(_bucket|_sum|_count)?",job=~"kube-etcd3-…"}`."""
    names = "|".join(WANTED)
    return f'{{__name__=~"({names})(_bucket|_sum|_count)?",job=~"{_quoted(jobs)}"}}'


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def federate_query(jobs: str) -> str:
    """The query string of a /federate request for the relayed families of the `jobs`."""
    return urlencode({"match[]": match_selector(jobs)})


def federate_url(base: str, jobs: str) -> str:
    """The /federate URL of the Prometheus at `base` that asks for the relayed families."""
    return with_query(base, federate_query(jobs))


def with_query(base: str, query: str) -> str:
    """`<base>/federate?<query>`."""
    return f"{base.rstrip('/')}/federate?{query}"


@dataclass(frozen=True, slots=True)
class Answer:
    """A federation answer, by member; `malformed` counts the lines that could not be read
    (`first_malformed` quotes the first of them), `series` the series kept (before folding)."""

    members: Mapping[Member, tuple[RelayedFamily, ...]]
    series: int = 0
    malformed: int = 0
    first_malformed: str = ""

    def families(self, namespace: str, pod: str) -> tuple[RelayedFamily, ...]:
        """The member's families: its series labelled with its namespace and pod, else (for a
        Prometheus without a `namespace` label) those labelled with its pod; () when none."""
        return self.members.get((namespace, pod)) or self.members.get(("", pod)) or ()


@dataclass(slots=True)
class _Collected:
    """One member's samples while an answer is read: (family, suffix) → {own labels: value}."""

    samples: dict[tuple[str, str], dict[Labels, float]] = field(default_factory=dict)


def parse_federation(
    text: str,
    *,
    own: Shared[Labels, Labels] | None = None,
    folds: Shared[FoldKey, Fold] | None = None,
) -> Answer:
    """The relayed families of every member in a /federate answer (text format 0.0.4). Pure but
    for `own` and `folds`, where the label sets left after stripping and the folds are shared
    when given.

    Comment lines are skipped; a malformed line is counted and skipped, never raised; series of
    other names, and series without a `pod` label, are ignored. The first series of a member,
    name and own labels wins over later duplicates (one pod scraped by two jobs).
    """
    names = _SAMPLE_FAMILIES
    collected: dict[Member, _Collected] = {}
    malformed, first_bad, kept = 0, "", 0
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            sample = _read_sample(line, names)
        except ScrapeError:
            malformed += 1
            first_bad = first_bad or line[:200]
            continue
        if sample is None:
            continue
        where = names[sample.name]
        member, labels = _split_labels(sample.labels, own)
        if member is None:
            continue
        if where[1] == "_bucket" and not _le_ok(labels):
            malformed += 1
            first_bad = first_bad or line[:200]
            continue
        series = collected.setdefault(member, _Collected()).samples.setdefault(where, {})
        if labels not in series:
            series[labels] = sample.value
            kept += 1
    members = {m: _families(c, folds) for m, c in collected.items()}
    return Answer(members=members, series=kept, malformed=malformed, first_malformed=first_bad)


_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# A label set in which no value holds a backslash, hence no quote either.
_PLAIN_LABELS = re.compile(
    r'(?:[ \t]*[a-zA-Z_][a-zA-Z0-9_]*[ \t]*=[ \t]*"[^"\\\n]*"[ \t]*,)*'
    r'(?:[ \t]*[a-zA-Z_][a-zA-Z0-9_]*[ \t]*=[ \t]*"[^"\\\n]*"[ \t]*)?'
)
_KEPT = frozenset({"pod", "namespace"}) | OWN_LABELS


def _read_sample(line: str, names: Mapping[str, object]) -> Sample | None:
    """The sample of a line whose name is in `names`, None for a well-formed line of another
    name; raises ScrapeError("parse") for a malformed line.

    A federation line carries some twenty labels (the target's and the external ones), which
    extract's general parser reads in about 100 µs; the usual line, without a backslash in its
    labels, is checked by one simpler pattern and split at its quotes instead (about a fifth of
    that); any other line goes through the general parser.
    """
    brace = line.find("{")
    name = line[:brace] if brace > 0 else line.split(None, 1)[0]
    if name not in names:
        if _NAME.fullmatch(name) is None:
            raise ScrapeError("parse", f"malformed sample line {line[:200]!r}")
        return None
    close = line.rfind("}")
    labels = _quoted_labels(line[brace + 1 : close]) if 0 < brace < close else None
    if labels is None:
        return parse_sample_line(line)
    tail = line[close + 1 :].split()
    if not 1 <= len(tail) <= 2:
        raise ScrapeError("parse", f"malformed sample line {line[:200]!r}")
    return Sample(name, labels, sample_value(tail[0], tail[1] if len(tail) > 1 else None, line))


def _quoted_labels(text: str) -> Labels | None:
    """The labels `_split_labels` looks at (pod, namespace, etcd's own) of a label set without
    backslashes, read by splitting it at its quotes, which then alternate opening and closing;
    None for any other label set (the general parser decides)."""
    if "\\" in text or _PLAIN_LABELS.fullmatch(text) is None:
        return None
    parts = text.split('"')
    out = []
    for i in range(0, len(parts) - 1, 2):
        key = parts[i].strip(" \t,=")
        if key in _KEPT:
            out.append((key, parts[i + 1]))
    return tuple(out)


def _split_labels(
    labels: Labels, shared: Shared[Labels, Labels] | None
) -> tuple[Member | None, Labels]:
    """(member, etcd's own labels) of a federated series; member None without a `pod` label.
    Own labels keep etcd's order: by name, `le` last (as client_golang writes them)."""
    namespace, pod = "", ""
    own: list[tuple[str, str]] = []
    le: tuple[str, str] | None = None
    for key, value in labels:
        if key == "pod":
            pod = value
        elif key == "namespace":
            namespace = value
        elif key == "le":
            le = (key, value)
        elif key in OWN_LABELS:
            own.append((key, value))
    if not pod:
        return None, ()
    own.sort()
    if le is not None:
        own.append(le)
    kept = tuple(own)
    return (namespace, pod), kept if shared is None else _interned(kept, shared)


def _interned(labels: Labels, shared: Shared[Labels, Labels]) -> Labels:
    """Label sets after stripping are the few of a direct scrape (`le="0.001"`, `To="<peer>"`,
    …): shared by every member instead of held once per member."""
    found = shared.get(labels)
    if found is not None:
        return found
    return shared.put(labels, tuple((sys.intern(k), sys.intern(v)) for k, v in labels))


def _le_ok(labels: Labels) -> bool:
    le = labels[-1][1] if labels and labels[-1][0] == "le" else None
    return le is not None and _bound(le) is not None


def _bound(le: str) -> float | None:
    try:
        value = float(le)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def _families(member: _Collected, folds: Shared[FoldKey, Fold] | None) -> tuple[RelayedFamily, ...]:
    out = []
    for name in WANTED:
        type_, help_ = ETCD_FAMILIES.get(name, ("untyped", ""))
        parts = [
            (suffix, series)
            for suffix in SUFFIXES.get(type_, ("",))
            if (series := member.samples.get((name, suffix)))
        ]
        if parts:
            family = RelayedFamily(name, type_, help_, _ordered(name, parts))
            out.append(fold_family(family, folds=folds))
    return tuple(out)


def _ordered(name: str, parts: list[tuple[str, dict[Labels, float]]]) -> tuple[Sample, ...]:
    """A family's samples as etcd writes them: per label set (sorted, without `le`), the buckets
    by bound, then `_sum`, then `_count`."""
    keyed = [
        (sample_order(name, (name + suffix, labels)), name + suffix, labels, value)
        for suffix, series in parts
        for labels, value in series.items()
    ]
    keyed.sort(key=lambda item: item[0])
    return tuple(Sample(sys.intern(sample), labels, value) for _, sample, labels, value in keyed)


# -- the shared fetcher --------------------------------------------------------------------


@dataclass(slots=True)
class _Cached:
    at: float
    answer: Answer | None
    error: ScrapeError | None


class Federation:
    """One /federate request per Prometheus URL per `max_age`, shared by its members.

    A member's ScrapeSpec names the Prometheus's base URL (`spec.url`, e.g.
    `http://prometheus-shoot.<namespace>.svc:80`); `jobs` is the regular expression of the etcd
    jobs' `job` label there (--scrape.shoot-prometheus-jobs).
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        jobs: str,
        timeout: float,
        max_bytes: int,
        max_age: float,
        buffers: BodyBuffers | None = None,
        folds: Shared[FoldKey, Fold] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session, self._timeout = session, timeout
        self._query = federate_query(jobs)  # the same for every member and scrape
        self._max_bytes, self._max_age, self._clock = max_bytes, max_age, clock
        self._buffers = buffers if buffers is not None else BodyBuffers()
        self._own: Shared[Labels, Labels] = Shared(OWN_LABELS_MAX)
        self._folds = folds
        self._cache: dict[str, _Cached] = {}
        self._inflight: dict[str, asyncio.Task[_Cached]] = {}
        self._malformed: set[str] = set()  # URLs whose last answer had malformed lines
        self._pruned = 0.0

    async def families(self, spec: ScrapeSpec) -> tuple[RelayedFamily, ...]:
        """The relayed families of the member `spec` names (`spec.url` is its /federate URL).

        Raises the request's ScrapeError (timeout, connect, http_status, too_large; parse when
        no line of the answer could be read), or ScrapeError("no_data") when the answer has no
        series of the member.
        """
        answer = await self.answer(with_query(spec.url, self._query))
        families = answer.families(spec.namespace, spec.pod)
        if not families:
            raise ScrapeError(
                "no_data", f"no series of pod {spec.namespace}/{spec.pod} in the answer"
            )
        return families

    async def answer(self, url: str) -> Answer:
        """The answer of the /federate `url`: the cached one when younger than `max_age`, else
        the one of the request in flight, else a new request's."""
        cached = self._cache.get(url)
        if cached is None or self._clock() - cached.at >= self._max_age:
            task = self._inflight.get(url)
            if task is None:
                task = asyncio.create_task(self._request(url), name=f"federate {url}")
                self._inflight[url] = task
                task.add_done_callback(lambda _: self._inflight.pop(url, None))
            # shielded: a caller that is cancelled (its member removed) leaves the request to
            # the others waiting for it
            cached = await asyncio.shield(task)
        if cached.error is not None:
            raise ScrapeError(cached.error.reason, cached.error.detail)
        assert cached.answer is not None
        return cached.answer

    async def _request(self, url: str) -> _Cached:
        try:
            with self._buffers.borrowed() as body:
                await fetch_into(
                    body,
                    session=self._session,
                    url=url,
                    timeout=self._timeout,
                    max_bytes=self._max_bytes,
                )
                text = body.decode("utf-8", errors="replace")
                answer = parse_federation(text, own=self._own, folds=self._folds)
            self._note_malformed(url, answer)
            if answer.malformed and not answer.series:
                error = ScrapeError(
                    "parse", f"no line of the answer was readable: {answer.first_malformed!r}"
                )
                result = _Cached(self._clock(), None, error)
            else:
                result = _Cached(self._clock(), answer, None)
        except ScrapeError as err:
            result = _Cached(self._clock(), None, err)
        self._cache[url] = result
        self._prune()
        return result

    def _note_malformed(self, url: str, answer: Answer) -> None:
        """One warning when a Prometheus's answers start having malformed lines, then debug."""
        if not answer.malformed:
            self._malformed.discard(url)
            return
        level = logging.DEBUG if url in self._malformed else logging.WARNING
        self._malformed.add(url)
        logger.log(
            level,
            "Federation answer has malformed lines, skipped",
            extra={"url": url, "lines": answer.malformed, "first": answer.first_malformed},
        )

    def _prune(self) -> None:
        """Forget answers of URLs nobody asked for in a while (namespaces that went away)."""
        now = self._clock()
        if now - self._pruned < self._max_age:
            return
        self._pruned = now
        for url in [u for u, c in self._cache.items() if now - c.at > 4 * self._max_age]:
            del self._cache[url]
            self._malformed.discard(url)

    async def close(self) -> None:
        """Cancel the requests in flight."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
