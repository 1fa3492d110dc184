"""The root cause behind a member's verdict, when discovery found one. Pure.

A verdict says what is wrong with a member (`hdd-storage`, `storage-class-mismatch`, …); its
`Placement` (exporter/discovery/provider.py) can say why: the seed declares another provider type
than its nodes run on, so the right provider extension never created the fast StorageClass nor
set it on the `Etcd` resources (the incident this exporter exists for), or the class the member is
expected on does not exist at all. `diagnose` prints it under the member's verdict, the status
page beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.diagnosis.verdict import RUNBOOKS
from exporter.model import Placement, Target


@dataclass(frozen=True, slots=True)
class RootCause:
    """One line naming the cause, and the fix."""

    reason: str
    remedy: str


def root_cause(target: Target) -> RootCause | None:
    """The member's root cause, None when its placement shows none (or is unknown)."""
    p = target.placement
    if p is None:
        return None
    mismatch, missing = p.provider_mismatch is True, p.expected_class_missing is True
    if mismatch:
        reason = _mismatch_text(p)
        if missing:
            reason += f": StorageClass {p.expected_storage_class} was never created"
        remedy = (
            f"set the Seed's provider type to {p.node_provider}, so that its provider "
            f"extension creates the StorageClasses and sets them on the Etcd resources, then move "
            f"the volumes ({RUNBOOKS}#etcdlatencyseedprovidermismatch)"
        )
        return RootCause(reason, remedy)
    if missing:
        etcd = target.identity.etcd or "the member"
        reason = (
            f"StorageClass {p.expected_storage_class}, which {etcd} is expected on, does not "
            "exist in the cluster"
        )
        remedy = (
            f"create {p.expected_storage_class} (in Gardener: the seed's provider extension does) "
            f"or correct the expectation, then move the volumes "
            f"({RUNBOOKS}#etcdlatencyexpectedclassmissing)"
        )
        return RootCause(reason, remedy)
    return None


def _mismatch_text(p: Placement) -> str:
    """'seed provider type `metal` but node n-1 runs on gcp (`gce://p/z/n-1`)'."""
    where = f"node {p.node} runs" if p.node else "the seed's nodes run"
    return (
        f"seed provider type `{p.namespace_provider}` but {where} on {p.node_provider} "
        f"(`{p.node_provider_id}`)"
    )


def placement_json(p: Placement | None) -> dict[str, Any] | None:
    """The member's provider and expected-class verdicts as diagnose's JSON has them."""
    if p is None:
        return None
    return {
        "namespace_provider": p.namespace_provider or None,
        "node_provider": p.node_provider or None,
        "node": p.node or None,
        "node_provider_id": p.node_provider_id or None,
        "provider_mismatch": p.provider_mismatch,
        "expected_storage_class": p.expected_storage_class or None,
        "expected_class_missing": p.expected_class_missing,
    }


def root_cause_json(cause: RootCause | None) -> dict[str, str] | None:
    """{"reason", "remedy"} or None."""
    return None if cause is None else {"reason": cause.reason, "remedy": cause.remedy}
