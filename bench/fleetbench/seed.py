"""The fleet's layout: shoots, their two etcd members, pod IPs, volumes and speed.

Deterministic for a (shoots, seed) pair, so the API process, the /metrics processes and the
harness agree on every member without talking to each other. Pod IPs are loopback addresses
(127.20.x.y): Linux routes all of 127/8 to `lo`, so each member gets its own address and one
shared port, and the exporter scrapes them unmodified (pod IP + --scrape.port + --scrape.path).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FAST = "gardener.cloud-fast"  # pd-ssd
STANDARD = "standard"  # pd-standard, the cluster default
ROLES = ("etcd-main", "etcd-events")
SHOOTS_PER_PROJECT = 20
IP_SECOND_OCTET = 20
HOSTS_PER_SUBNET = 250

# Shares of the seed's members (rolled per member with the seed's RNG).
SHARE_ON_STANDARD = 0.25  # events members whose claim is on pd-standard, as the Etcd asks
SHARE_DRIFTED = 0.05  # main members whose claim stayed on pd-standard while the Etcd says fast


@dataclass(frozen=True, slots=True)
class Member:
    """One etcd member of the fleet."""

    index: int
    namespace: str
    etcd: str
    ip: str
    claim_class: str  # the PVC's storageClassName
    expected_class: str  # the Etcd resource's spec.storageClass

    @property
    def pod(self) -> str:
        """The pod name (the StatefulSet's only ordinal)."""
        return f"{self.etcd}-0"

    @property
    def slow(self) -> bool:
        """Members on pd-standard have a slow disk: slow fsync histograms, more warnings."""
        return self.claim_class == STANDARD

    @property
    def drifted(self) -> bool:
        """The claim's class differs from what the Etcd resource names."""
        return self.claim_class != self.expected_class


def member_ip(index: int) -> str:
    """Loopback pod IP of member `index`: 127.20.0.1, …, 127.20.0.250, 127.20.1.1, …"""
    subnet, host = divmod(index, HOSTS_PER_SUBNET)
    if subnet > 255:
        raise ValueError(f"too many members for the 127.{IP_SECOND_OCTET}/16 range: {index}")
    return f"127.{IP_SECOND_OCTET}.{subnet}.{host + 1}"


def namespace_of(shoot: int) -> str:
    """`shoot--p<k>--s<i>`: 20 shoots per project."""
    return f"shoot--p{shoot // SHOOTS_PER_PROJECT}--s{shoot}"


def fleet(shoots: int, *, seed: int = 1) -> list[Member]:
    """Every member of a seed with `shoots` shoots, two members each."""
    rng = random.Random(seed)
    members = []
    for shoot in range(shoots):
        namespace = namespace_of(shoot)
        for etcd in ROLES:
            expected = FAST if etcd == "etcd-main" else _events_class(rng)
            claim = STANDARD if etcd == "etcd-main" and rng.random() < SHARE_DRIFTED else expected
            index = len(members)
            members.append(
                Member(
                    index=index,
                    namespace=namespace,
                    etcd=etcd,
                    ip=member_ip(index),
                    claim_class=claim,
                    expected_class=expected,
                )
            )
    return members


def _events_class(rng: random.Random) -> str:
    return STANDARD if rng.random() < SHARE_ON_STANDARD else FAST
