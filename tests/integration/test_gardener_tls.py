"""The daemon against Gardener-real objects and real etcd members over mTLS.

Three real etcd members serve their client API and /metrics only over TLS with
`--client-cert-auth`, with certificates made like Gardener's (tests/support/pki.py): the server
certificate names `<etcd>-local` and the services, and 127.0.0.1, never the pod IP. The members
listen on 127.0.0.2-4 as their pod IPs, on random ports that only the Etcd resources'
`spec.etcd.clientPort` tells (the daemon's --scrape.port stays 2379), so each member is reached
only if the port, the Secrets and the server name all come out right:

- shoot--tls--alpha: etcd-main (etcd 3.4, as etcd-wrapper 0.6 embeds; the incident: Etcd
  spec.storageClass absent, PVC on `standard`) and etcd-events (etcd 3.5; `""`, on the default
  class `standard`); etcd trusts the bundle of CA1 and CA2, the client Secret holds a CA1 pair.
- shoot--tls--rot: etcd-main mid CA rotation: bundle = old CA + new CA, etcd's server certificate
  signed by the OLD CA, the client certificate by the NEW one, etcd trusting the bundle.

The daemon runs twice: with its flags written out here, and with the chart's Gardener preset
exactly as `helm template` renders it (only the kubeconfig, listen address and the test's short
scrape interval replaced): the chart, unchanged, works against a Gardener-real seed.

Checked: every member up with its WAL fsync histogram relayed; a client-Secret rotation in alpha
(new Secret name, both Etcd resources updated, the old Secret deleted) keeps every member up at
every look; then alpha's etcd-main restarts trusting CA2 only (the rotation completed) and is up
again — only the new client certificate can do that; the incident's etcd-main shows
`storage_class_mismatch 1` (`expected_from="config"`), etcd-events on its default class 0
(`default-class`); and the API saw `get`s of the referenced Secrets only: never a list or watch,
never `ca-etcd-<hash>` (the CA key), the server or backup Secrets. Every process is stopped by its
PID; everything listens on 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.support import pki
from tests.support.etcd import (
    EtcdProcess,
    EtcdTLS,
    EtcdUnavailable,
    Version,
    etcd_binary,
    launch,
    start_etcd,
)
from tests.support.helm import installed_args
from tests.support.kube.client import eventually
from tests.support.kube.daemon import Daemon, Sample, run_daemon, select, value
from tests.support.kube.fixtures import kube_fixture  # noqa: F401
from tests.support.kube.objects import EtcdSecrets, etcd_secret_names, tls_secret
from tests.support.kube.scenario import (
    FAST,
    STANDARD,
    ShootPEM,
    add_classes,
    add_etcd,
    add_member,
    add_pki,
    set_client_ref,
)
from tests.support.kube.server import KubeEmulator

pytestmark = pytest.mark.timeout(240)

P = "etcd_latency_"
ALPHA, ROT = "shoot--tls--alpha", "shoot--tls--rot"
INTERVAL = 1.0


@dataclass(frozen=True)
class Member:
    """A real etcd member standing in for a pod."""

    namespace: str
    etcd: str
    version: Version
    pod_ip: str
    etcd_class: str | None  # the Etcd's spec.storageClass (None: absent)
    pvc_class: str | None


MEMBERS = (
    Member(ALPHA, "etcd-main", "3.4", "127.0.0.2", None, STANDARD),  # the incident
    Member(ALPHA, "etcd-events", "3.5", "127.0.0.3", "", None),  # "" → the default class
    Member(ROT, "etcd-main", "3.4", "127.0.0.4", FAST, FAST),
)


def local_args(kubeconfig: Path) -> list[str]:
    """Where the test's daemon runs and how fast its clock goes."""
    return [
        f"--kubernetes.kubeconfig={kubeconfig}",
        f"--scrape.interval={INTERVAL}s",
        "--scrape.timeout=2s",
    ]


def daemon_args(kubeconfig: Path, tmp_path: Path, *, flags: str) -> list[str]:
    """The daemon's flags: written out here (`explicit`), or the chart's Gardener preset exactly as
    `helm template` renders it (`chart`), with only the local flags above replaced."""
    if flags == "chart":
        return installed_args(tmp_path / "helm-home", source="etcd", local=local_args(kubeconfig))
    return [
        "--discovery=kubernetes",
        "--scrape.server-name={etcd}-local",
        '--kubernetes.expected-storage-classes={"etcd-main":"gardener.cloud-fast"}',
        "--log.level=info",
        "--log.format=json",
        *local_args(kubeconfig),
    ]


@dataclass
class ShootPKI:
    """One namespace's certificates: CAs, the etcd server pairs, the client pair."""

    dir: Path
    cas: list[pki.CA]
    server_ca: pki.CA
    client: pki.CertPair
    servers: dict[str, pki.CertPair]

    def pem(self, etcd: str) -> ShootPEM:
        return ShootPEM.of(
            client=self.client, server=self.servers[etcd], ca=self.cas[-1], bundle=self.bundle()
        )

    def bundle(self) -> str:
        return pki.bundle(*self.cas)


def make_pki(root: Path, namespace: str, etcds: list[str], *, rotating: bool) -> ShootPKI:
    """Alpha: CA1 and CA2 trusted, everything signed by CA1. Rot: old CA signs the servers,
    the new CA the client (Gardener's CA rotation, phase "preparing")."""
    d = root / namespace
    first, second = pki.make_ca(d / "ca1"), pki.make_ca(d / "ca2")
    server_ca, client_ca = (first, second) if rotating else (first, first)
    servers = {e: pki.issue_server(server_ca, d / e, etcd=e, namespace=namespace) for e in etcds}
    client = pki.issue_client(client_ca, d / "client")
    return ShootPKI(d, [first, second], server_ca, client, servers)


@contextlib.contextmanager
def etcd_members(root: Path, pkis: dict[str, ShootPKI]) -> Iterator[dict[Member, EtcdProcess]]:
    procs: dict[Member, EtcdProcess] = {}
    try:
        for m in MEMBERS:
            etcd_binary(m.version)
            shoot = pkis[m.namespace]
            server = shoot.servers[m.etcd]
            tls = EtcdTLS(
                cert_file=server.cert,
                key_file=server.key,
                trusted_ca_file=pki.write_bundle(root / m.namespace / f"{m.etcd}-trust.crt",
                                                 *shoot.cas),
                client_cert_file=shoot.client.cert,
                client_key_file=shoot.client.key,
                server_name=f"{m.etcd}-local",
            )  # fmt: skip
            name = f"{m.namespace}-{m.etcd}"
            procs[m] = start_etcd(
                version=m.version, name=name, data_dir=root / name / "data",
                log_path=root / name / "etcd.log", host=m.pod_ip, listen_metrics=False, tls=tls,
                wait=40.0,
            )  # fmt: skip
        yield procs
    except EtcdUnavailable as err:
        pytest.skip(str(err))
    finally:
        for proc in procs.values():
            proc.stop(graceful=False)


def seed(kube: KubeEmulator, procs: dict[Member, EtcdProcess], pkis: dict[str, ShootPKI]) -> None:
    add_classes(kube)
    for ns in (ALPHA, ROT):
        etcd = "etcd-main"
        add_pki(kube, namespace=ns, pem=pkis[ns].pem(etcd))
    for m, proc in procs.items():
        add_member(kube, namespace=m.namespace, etcd=m.etcd, pod_ip=m.pod_ip,
                   storage_class=m.pvc_class)  # fmt: skip
        add_etcd(kube, namespace=m.namespace, name=m.etcd, storage_class=m.etcd_class,
                 client_port=proc.config.client_port)  # fmt: skip


@contextlib.asynccontextmanager
async def daemon_for(kube: KubeEmulator, tmp_path: Path, *, flags: str) -> AsyncIterator[Daemon]:
    assert kube.kubeconfig is not None
    with run_daemon(tmp_path, *daemon_args(kube.kubeconfig, tmp_path, flags=flags)) as daemon:
        await daemon.wait_ready(seconds=30)
        yield daemon


def up(samples: list[Sample], m: Member) -> float | None:
    return value(samples, P + "target_up", namespace=m.namespace, pod=f"{m.etcd}-0")


def tls_errors(samples: list[Sample], m: Member) -> float:
    got = value(samples, P + "exporter_scrape_errors_total", namespace=m.namespace,
                pod=f"{m.etcd}-0", reason="tls")  # fmt: skip
    return got or 0.0


async def _until_all_up(daemon: Daemon, seconds: float) -> list[Sample]:
    async def check() -> bool:
        samples = await daemon.metrics()
        return all(up(samples, m) == 1.0 for m in MEMBERS)

    try:
        await eventually(check, seconds=seconds, interval=0.2)
    except TimeoutError:
        pytest.fail(f"not every member up after {seconds}s:\n{daemon.log()[-4000:]}")
    return await daemon.metrics()


def allowed_secret_gets(rotated_client: str) -> set[tuple[str, str, str]]:
    out = {("get", ALPHA, rotated_client)}
    for ns in (ALPHA, ROT):
        names = etcd_secret_names(ns)
        out |= {("get", ns, names.client), ("get", ns, names.ca_bundle)}
    return out


@pytest.mark.parametrize("flags", ["explicit", "chart"])
async def test_gardener_mtls_rotation_and_least_secrets(
    kube: KubeEmulator, tmp_path: Path, flags: str
) -> None:
    pkis = {
        ALPHA: make_pki(tmp_path, ALPHA, ["etcd-main", "etcd-events"], rotating=False),
        ROT: make_pki(tmp_path, ROT, ["etcd-main"], rotating=True),
    }
    with etcd_members(tmp_path, pkis) as procs:
        seed(kube, procs, pkis)
        for proc in procs.values():
            await asyncio.to_thread(proc.put, "/registry/pods/x/warm", "v")
        async with daemon_for(kube, tmp_path, flags=flags) as daemon:
            samples = await _until_all_up(daemon, 40)
            _check_relayed_and_intent(samples)
            rotated = await _rotate_client_secret(kube, daemon, pkis[ALPHA])
            await _complete_ca_rotation(daemon, procs, pkis[ALPHA])
            samples = await daemon.metrics()
            assert value(samples, P + "exporter_tls_secret_errors_total", reason="not_found") == 0
        assert daemon.stop() == 0
    requests = kube.secret_requests()
    assert requests, "the daemon read no Secret at all"
    assert set(requests) <= allowed_secret_gets(rotated), requests
    assert not [r for r in requests if r[0] != "get"]  # never a list or watch
    never = {n for ns in (ALPHA, ROT) for n in etcd_secret_names(ns).all()[2:]}
    assert not [r for r in requests if r[2] in never]  # ca-etcd-<hash>, server, backup


def _check_relayed_and_intent(samples: list[Sample]) -> None:
    for m in MEMBERS:
        got = select(samples, P + "disk_wal_fsync_duration_seconds_count", namespace=m.namespace,
                     pod=f"{m.etcd}-0")  # fmt: skip
        assert got, f"no WAL fsync histogram relayed for {m}"
        assert got[0][1] > 0
        assert tls_errors(samples, m) == 0
    info = {(lab["namespace"], lab["etcd"]): lab for lab, _ in select(samples, P + "volume_info")}
    incident = info[(ALPHA, "etcd-main")]
    assert (incident["storage_class"], incident["expected_storage_class"],
            incident["expected_from"]) == (STANDARD, FAST, "config")  # fmt: skip
    assert value(samples, P + "storage_class_mismatch", namespace=ALPHA, etcd="etcd-main") == 1.0
    events = info[(ALPHA, "etcd-events")]
    assert (events["storage_class"], events["expected_storage_class"],
            events["expected_from"]) == (STANDARD, STANDARD, "default-class")  # fmt: skip
    assert value(samples, P + "storage_class_mismatch", namespace=ALPHA, etcd="etcd-events") == 0.0
    assert info[(ROT, "etcd-main")]["expected_from"] == "etcd"


async def _rotate_client_secret(kube: KubeEmulator, daemon: Daemon, shoot: ShootPKI) -> str:
    """Gardener's order: a new client Secret (signed by CA2), the Etcd resources updated, the
    old Secret deleted. Every member stays up at every look meanwhile."""
    old: EtcdSecrets = etcd_secret_names(ALPHA)
    new = etcd_secret_names(ALPHA, generation=1).client
    shoot.client = pki.issue_client(shoot.cas[1], shoot.dir / "client-2")
    kube.add("secrets", tls_secret(namespace=ALPHA, name=new, cert_pem=shoot.client.cert_pem,
                                   key_pem=shoot.client.key_pem))  # fmt: skip
    looks = 0
    for step in range(int(6 * INTERVAL / 0.25)):
        if step == 2:
            for etcd in ("etcd-main", "etcd-events"):
                set_client_ref(kube, namespace=ALPHA, etcd=etcd, client=new)
        if step == 6:
            kube.store.delete("secrets", (ALPHA, old.client))
        samples = await daemon.metrics()
        downs = {m.etcd + "@" + m.namespace: up(samples, m) for m in MEMBERS if up(samples, m) != 1}
        assert not downs, f"gap during the client-Secret rotation: {downs}"
        looks += 1
        await asyncio.sleep(0.25)
    assert looks >= 20
    assert ("get", ALPHA, new) in kube.secret_requests()
    return new


async def _complete_ca_rotation(
    daemon: Daemon, procs: dict[Member, EtcdProcess], shoot: ShootPKI
) -> None:
    """alpha's etcd-main restarts as at the end of a CA rotation: its server certificate signed
    by CA2, trusting CA2 only. The old client certificate (CA1) would be refused now, the new one
    (CA2) is accepted: the member must come back up, without a single `tls` scrape error."""
    member = MEMBERS[0]
    proc = procs[member]
    tls = proc.config.tls
    assert tls is not None
    pki.write_bundle(tls.trusted_ca_file, shoot.cas[1])
    server = pki.issue_server(shoot.cas[1], shoot.dir / "etcd-main-2", etcd="etcd-main",
                              namespace=ALPHA)  # fmt: skip
    new_tls = replace(
        tls,
        cert_file=server.cert,
        key_file=server.key,
        client_cert_file=shoot.client.cert,
        client_key_file=shoot.client.key,
    )
    proc.stop(graceful=False)
    fresh = await asyncio.to_thread(launch, replace(proc.config, tls=new_tls), wait=40.0)
    procs[member] = fresh
    before = tls_errors(await daemon.metrics(), member)
    await _until_all_up(daemon, 30)
    await asyncio.sleep(3 * INTERVAL)
    samples = await daemon.metrics()
    assert up(samples, member) == 1.0
    assert tls_errors(samples, member) == before, "scrapes still used the old client certificate"
    # The daemon logged the rotation's Secret changes as JSON lines; none says "unusable".
    lines = [json.loads(line) for line in daemon.log().splitlines() if line.startswith("{")]
    assert not [x for x in lines if "unusable" in str(x.get("msg", x.get("message", "")))]
