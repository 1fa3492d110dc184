"""Members outlive their pods: which gone pods are still members, and until when. Pure.

A target is an etcd member: its pod's namespace and name. When the pod is no longer in the pod
caches, the member stays, in state `gone`, with the target it last had, and goes:

- at once when its namespace is deleted (terminating, or not found), or when the same pod still
  exists but no selector matches it any more (a lookup, `departure.why_gone`, tells which);
- at once when the data PVC it had is gone too (a namespace deletion where namespaces cannot be
  read: the PVC outlives its pod only until the pod is gone, `kubernetes.io/pvc-protection`);
- after `grace` seconds otherwise (a StatefulSet pod deleted and re-created under the same name
  comes back within seconds; a node that is gone can take longer).

`MemberBook.update` is called with the targets of the pods present now and returns the complete
member set; `departed` lists the members whose departure should be looked up, `settle` records
what the lookup found, `next_deadline` says when a grace period ends.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

from exporter.model import Member, MemberState, Target

GONE_REASON = "pod gone"


@dataclass(slots=True)
class Known:
    """A member as last seen: its target and, once its pod is gone, since when."""

    target: Target
    claim_seen: bool = False  # its data PVC was in the cache while the pod was there
    gone_since: float | None = None
    removal: str = ""  # why it must go at once ("" until a lookup says so)
    checked: bool = False  # a departure lookup was started


def gone_target(target: Target) -> Target:
    """The member's last target in state `gone` (no container runs, nothing to scrape)."""
    member = target.member or Member()
    return replace(target, member=replace(member, state=MemberState.GONE, reason=GONE_REASON))


def claim_key(target: Target) -> str:
    """`namespace/pvc` of the member's data volume, "" without one."""
    pvc = target.volume.pvc
    return f"{target.identity.namespace}/{pvc}" if pvc else ""


class MemberBook:
    """Known members by key: present ones and those whose pod is gone, within the grace."""

    def __init__(self, *, grace: float) -> None:
        self.grace = grace
        self._known: dict[str, Known] = {}

    def update(
        self, present: Mapping[str, Target], *, now: float, claims: Collection[str]
    ) -> tuple[dict[str, Target], dict[str, str]]:
        """The complete member set, and the members removed in this update with the reason.

        `present` are the targets of the pods in the caches now; `claims` the `namespace/name`
        keys of the PVCs in the cache.
        """
        members = dict(present)
        for key, target in present.items():
            claim = claim_key(target)
            self._known[key] = Known(target, claim_seen=bool(claim) and claim in claims)
        removed: dict[str, str] = {}
        for key, known in list(self._known.items()):
            if key in present:
                continue
            if known.gone_since is None:
                known.gone_since = now
            why = self._why_remove(known, now=now, claims=claims)
            if why:
                del self._known[key]
                removed[key] = why
                continue
            members[key] = gone_target(known.target)
        return members, removed

    def _why_remove(self, known: Known, *, now: float, claims: Collection[str]) -> str:
        if known.removal:
            return known.removal
        if known.claim_seen and claim_key(known.target) not in claims:
            return "its PVC is gone too"
        assert known.gone_since is not None
        if now - known.gone_since >= self.grace:
            return "grace period over"
        return ""

    def departed(self) -> list[Target]:
        """Members whose pod is gone and whose departure was not looked up yet (marked now)."""
        out = []
        for known in self._known.values():
            if known.gone_since is not None and not known.checked:
                known.checked = True
                out.append(known.target)
        return out

    def settle(self, key: str, *, uid: str, removal: str) -> bool:
        """Record a lookup's finding for the member `key` whose pod had `uid`; True when it
        changes the member set (a removal reason for a member still gone)."""
        known = self._known.get(key)
        if known is None or known.gone_since is None or not removal:
            return False
        member = known.target.member
        if member is not None and member.uid != uid:
            return False  # the lookup was about an earlier pod
        known.removal = removal
        return True

    def next_deadline(self) -> float | None:
        """When the earliest grace period ends (the set must be rebuilt then); None if none."""
        ends = [k.gone_since + self.grace for k in self._known.values() if k.gone_since is not None]
        return min(ends) if ends else None

    def last(self, key: str) -> Target | None:
        """The member's target as last published, None for an unknown key."""
        known = self._known.get(key)
        return known.target if known is not None else None
