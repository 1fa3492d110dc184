"""Why a member's pod left the pod caches: a deleted namespace, a pod that no longer matches the
selectors, or (most often) a deleted pod that may come back under the same name.

The watch alone cannot tell: when a pod stops matching a label selector, the API server sends
`DELETED` with the pod as it was before the change. Two `get`s can: the namespace (not found or
terminating: the shoot is being deleted) and the pod (the same uid still there: it no longer
matches; another uid: it was re-created; not found: deleted). A lookup that fails (RBAC without
`get namespaces`, the API unreachable) decides nothing: the grace period applies.
"""

from __future__ import annotations

import logging

import aiohttp

from exporter.kube.client import NAMESPACES, PODS, KubeApi, KubeApiError

logger = logging.getLogger(__name__)

NAMESPACE_DELETED = "namespace deleted"
NOT_MATCHING = "the pod no longer matches the selectors"


async def why_gone(api: KubeApi, *, namespace: str, pod: str, uid: str) -> str:
    """A reason to remove the member at once, or "" to keep it for the grace period."""
    try:
        ns = await api.get(NAMESPACES, namespace)
    except KubeApiError as err:
        if err.not_found:
            return NAMESPACE_DELETED
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as err:
        logger.debug("Namespace lookup failed", extra={"namespace": namespace, "err": repr(err)})
    else:
        if (ns.get("metadata") or {}).get("deletionTimestamp") or (ns.get("status") or {}).get(
            "phase"
        ) == "Terminating":
            return NAMESPACE_DELETED
    try:
        found = await api.get(PODS, pod, namespace=namespace)
    except (KubeApiError, aiohttp.ClientError, TimeoutError, OSError, ValueError):
        return ""  # gone (404), or unknown: the grace period decides
    if uid and str((found.get("metadata") or {}).get("uid", "")) == uid:
        return NOT_MATCHING
    return ""
