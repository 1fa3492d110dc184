"""The Secrets with etcd members' client TLS material: read by name, cached, followed, reported.

Gardener names a member's Secrets in its `Etcd` resource (`etcd-client-<hash>`,
`ca-etcd-bundle-<hash>`) and renames them on every rotation; tlsrefs.py says which Secrets a
member needs. This cache reads exactly those with `get` — never list or watch, never any other
Secret (in a seed, `ca-etcd-<hash>` next to them holds the CA's private key) — keyed by
(namespace, name) with their resourceVersion:

- `ensure(refs)`, called by discovery on every rebuild, reads names not read yet (a rotation's
  new name: one `get`), forgets names no member references any more (the rotation's old name),
  and assembles each member's TLSConfig once per distinct set of references and versions, so that
  2,000 members share a few hundred TLSConfig objects (and scrape contexts).
- `run()` re-reads every known Secret each `refresh` seconds (Gardener's Secrets are immutable,
  other clusters rotate in place) and a Secret never read successfully each `retry` seconds;
  a new resourceVersion or outcome calls `on_change`, which rebuilds the targets.
- A Secret read once keeps its last good content when a later re-read fails: the member's etcd
  still trusts that material, and a rotation's order (new Secret, Etcd updated, old Secret
  deleted) must not look like an outage when a re-read comes between the steps.
- A problem (Secret not found, forbidden, unreadable, or a key missing or malformed) is logged
  once when it appears (or its reason changes), with namespace, Secret, key and why, counted in
  `errors` (etcd_latency_exporter_tls_secret_errors_total); one line says when it is gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import aiohttp

from exporter.discovery.tlsrefs import (
    ERROR,
    FORBIDDEN,
    NOT_FOUND,
    PemKind,
    SecretData,
    SecretProblem,
    TLSRefs,
    assemble,
    decode_values,
    files_tls,
    pem_problem,
)
from exporter.kube.client import SECRETS, KubeApi, KubeApiError
from exporter.model import TLSConfig
from exporter.settings import ScrapeSettings

logger = logging.getLogger(__name__)

FETCH_CONCURRENCY = 64

SecretKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True, slots=True)
class _Material:
    versions: tuple[str, ...]  # resourceVersions (or failures) of the Secrets it was made from
    tls: TLSConfig
    problems: tuple[SecretProblem, ...]


class SecretCache:
    """Secrets by (namespace, name), fetched on demand and refreshed; TLSConfig per member."""

    def __init__(
        self,
        api: KubeApi,
        *,
        scrape: ScrapeSettings,
        on_change: Callable[[], None],
        errors: Counter[str] | None = None,
        refresh: float = 300.0,
        retry: float = 30.0,
    ) -> None:
        self._api, self._scrape, self._on_change = api, scrape, on_change
        self._refresh, self._retry = refresh, min(retry, refresh)
        self.errors: Counter[str] = errors if errors is not None else Counter()
        self._secrets: dict[SecretKey, SecretData] = {}
        self._checked: dict[tuple[str, str, str, str, PemKind], str | None] = {}
        self._materials: dict[TLSRefs, _Material] = {}
        self._reported: dict[tuple[str, str, str], SecretProblem] = {}
        self._stale: set[SecretKey] = set()  # re-reads failed, last content kept (logged once)
        self._sem = asyncio.Semaphore(FETCH_CONCURRENCY)

    @property
    def enabled(self) -> bool:
        """True when TLS may come from Secrets (https, and Secret references or a fixed name)."""
        sc = self._scrape
        return sc.scheme == "https" and (sc.secret_refs or bool(sc.client_secret))

    def tls(self, refs: TLSRefs | None) -> TLSConfig:
        """A member's TLSConfig (server name still the flag's template); the file flags when no
        Secret is referenced."""
        if refs is None:
            return files_tls(self._scrape)
        material = self._materials.get(refs)
        return material.tls if material is not None else self._assemble(refs).tls

    async def ensure(self, refs: Iterable[TLSRefs]) -> None:
        """Read the Secrets `refs` name that are not held yet, forget the others, assemble every
        member's material and report problems that appeared, changed or went away."""
        wanted = set(refs)
        names = {(r.namespace, n) for r in wanted for n in r.names()}
        for key in [k for k in self._secrets if k not in names]:
            del self._secrets[key]
            self._stale.discard(key)
        missing = [k for k in names if k not in self._secrets]
        if missing:
            await asyncio.gather(*(self._fetch(k) for k in missing))
        self._checked = {k: v for k, v in self._checked.items() if k[:2] in names}
        self._materials = {r: self._material(r) for r in wanted}
        self._report((p for m in self._materials.values() for p in m.problems), names)

    async def run(self) -> None:
        """Re-read known Secrets (every `refresh` s; failed ones every `retry` s) until
        cancelled; call `on_change` when one changed."""
        since_refresh = 0.0
        while True:
            await asyncio.sleep(self._retry)
            since_refresh += self._retry
            everything = since_refresh >= self._refresh
            if everything:
                since_refresh = 0.0
            keys = [k for k, d in self._secrets.items() if everything or d.failure]
            before = {k: self._secrets[k] for k in keys}
            await asyncio.gather(*(self._fetch(k, refresh=True) for k in keys))
            if any(self._secrets.get(k) != old for k, old in before.items()):
                logger.info("Secret with etcd client TLS changed, updating targets")
                self._on_change()

    # -- internals --------------------------------------------------------------------------
    def _lookup(self, namespace: str, name: str) -> SecretData | None:
        return self._secrets.get((namespace, name))

    def _check(self, data: SecretData, key: str, kind: PemKind) -> str | None:
        memo = (data.namespace, data.name, data.resource_version, key, kind)
        if memo not in self._checked:
            value = data.values.get(key)
            self._checked[memo] = pem_problem(value, kind) if value is not None else None
        return self._checked[memo]

    def _versions(self, refs: TLSRefs) -> tuple[str, ...]:
        out = []
        for name in (refs.client, refs.ca):
            data = self._secrets.get((refs.namespace, name)) if name else None
            out.append("" if data is None else data.resource_version or data.failure)
        return tuple(out)

    def _material(self, refs: TLSRefs) -> _Material:
        old = self._materials.get(refs)
        if old is not None and old.versions == self._versions(refs):
            return old  # the same TLSConfig object: targets compare equal at once
        return self._assemble(refs)

    def _assemble(self, refs: TLSRefs) -> _Material:
        tls, problems = assemble(refs, lookup=self._lookup, check=self._check, scrape=self._scrape)
        return _Material(self._versions(refs), tls, problems)

    def _report(self, problems: Iterable[SecretProblem], names: set[SecretKey]) -> None:
        current = {(p.namespace, p.secret, p.key): p for p in problems}
        for where, problem in current.items():
            old = self._reported.get(where)
            if old is not None and old.reason == problem.reason:
                continue  # the same problem (its detail may vary, e.g. a transport error's)
            self.errors[problem.reason] += 1
            logger.warning(
                "Secret with etcd client TLS unusable, scrapes of its members fail",
                extra={
                    "namespace": problem.namespace,
                    "secret": problem.secret,
                    "key": problem.key,
                    "reason": problem.reason,
                    "why": problem.why,
                },
            )
        for where in [w for w in self._reported if w not in current]:
            ns, secret, key = where
            if (ns, secret) not in names:
                continue  # no longer referenced (renamed by a rotation, member gone)
            logger.info(
                "Secret with etcd client TLS usable again",
                extra={"namespace": ns, "secret": secret, "key": key},
            )
        self._reported = current

    async def _fetch(self, key: SecretKey, *, refresh: bool = False) -> None:
        """Read one Secret; a `refresh` of a name forgotten meanwhile stores nothing."""
        namespace, name = key
        async with self._sem:
            try:
                doc = await self._api.get(SECRETS, name, namespace=namespace)
            except KubeApiError as err:
                reason = NOT_FOUND if err.not_found else FORBIDDEN if err.denied else ERROR
                failure: tuple[str, str] = (reason, f"{err.status} {err.message}".strip())
            except (aiohttp.ClientError, TimeoutError, ValueError) as err:
                failure = (ERROR, repr(err))
            else:
                failure = ("", "")
        if refresh and key not in self._secrets:
            return
        if failure[0]:
            self._failed(key, *failure)
            return
        self._stale.discard(key)
        meta = doc.get("metadata")
        rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
        self._secrets[key] = SecretData(
            namespace=namespace,
            name=name,
            resource_version=str(rv or ""),
            values=decode_values(doc.get("data")),
        )

    def _failed(self, key: SecretKey, reason: str, detail: str) -> None:
        old = self._secrets.get(key)
        if old is not None and not old.failure:
            if key not in self._stale:
                self._stale.add(key)
                logger.info(
                    "Secret with etcd client TLS not re-read, keeping its last content",
                    extra={"namespace": key[0], "secret": key[1], "reason": reason, "why": detail},
                )
            return
        self._secrets[key] = SecretData(key[0], key[1], failure=reason, detail=detail)
