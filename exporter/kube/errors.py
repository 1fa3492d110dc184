"""Errors of the Kubernetes API: one exception type, counted and explained once.

`KubeApiError` carries the HTTP status (0 for transport errors) and what was asked; `ErrorLog`
counts every error by (resource, verb, code) for `etcd_latency_exporter_kubernetes_api_errors_total`
and logs a denial (401/403) once, naming the permission to grant.
"""

from __future__ import annotations

import logging
from collections import Counter

logger = logging.getLogger(__name__)

ApiErrors = Counter[tuple[str, str, str]]  # (resource, verb, code)


class KubeApiError(Exception):
    """A failed API call: HTTP status (0 for transport errors), what was asked, and why."""

    def __init__(
        self, *, status: int, resource: str, verb: str, namespace: str = "", message: str = ""
    ) -> None:
        super().__init__(f"{verb} {resource} in {namespace or '<cluster>'}: {status} {message}")
        self.status = status
        self.resource = resource
        self.verb = verb
        self.namespace = namespace
        self.message = message

    @property
    def denied(self) -> bool:
        """401 or 403: credentials or RBAC are missing; retrying alone will not help."""
        return self.status in (401, 403)

    @property
    def gone(self) -> bool:
        """410: the resourceVersion is too old; relist."""
        return self.status == 410

    @property
    def not_found(self) -> bool:
        """404: the object, or the whole API (a CRD that is not installed), does not exist."""
        return self.status == 404


class ErrorLog:
    """Counts API errors and logs each missing permission once.

    A denial of (verb, resource) is logged the first time; it is logged again only after the
    same call worked in the namespace where it was denied (so a ClusterRole without `pods/log`
    gives one line, not one per followed pod).
    """

    def __init__(self, counts: ApiErrors) -> None:
        self.counts = counts
        self._denied: dict[tuple[str, str], str] = {}  # (verb, resource) → namespace

    def record(self, err: KubeApiError, *, code: str) -> None:
        """Count one error; log a denial the first time it is seen."""
        self.counts[(err.resource, err.verb, code)] += 1
        if not err.denied or (err.verb, err.resource) in self._denied:
            return
        self._denied[(err.verb, err.resource)] = err.namespace
        logger.error(
            "Kubernetes API denied: grant it in the ClusterRole",
            extra={
                "verb": err.verb,
                "resource": err.resource,
                "namespace": err.namespace,
                "code": err.status,
                "reason": err.message,
            },
        )

    def success(self, *, resource: str, verb: str, namespace: str | None) -> None:
        """A call worked: a later denial where it had been denied is logged again."""
        if self._denied and self._denied.get((verb, resource)) == (namespace or ""):
            del self._denied[(verb, resource)]
