"""Client TLS from the Secrets each member's Etcd resource names, against the API emulator:
the names followed through a rotation, only referenced Secrets ever requested (by `get`), and a
missing or malformed Secret failing its members with reason `tls`, logged once and counted."""

from __future__ import annotations

import asyncio
import logging

import pytest

from exporter.model import Target, TLSConfig
from exporter.scrape.errors import ScrapeError
from exporter.scrape.tls import SSLContextCache
from tests.support.kube import objects
from tests.support.kube.client import eventually, kube_api, running_discovery
from tests.support.kube.fixtures import kube_fixture  # noqa: F401
from tests.support.kube.objects import etcd_secret_names
from tests.support.kube.scenario import (
    FAST,
    THREE_SHOOTS,
    add_classes,
    add_client_secret,
    add_etcd,
    add_member,
    add_pki,
    add_three_shoots,
    default_pem,
    set_client_ref,
)
from tests.support.kube.server import KubeEmulator
from tests.support.pki import b64

pytestmark = pytest.mark.timeout(60)

BAD_DER = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
HTTPS = {"scheme": "https", "server_name": "{etcd}-local"}
SIX = {f"{ns}/{etcd}-0" for ns, etcd in THREE_SHOOTS}
NS = "shoot--p1--a"


def tls_of(targets: dict[str, Target], key: str) -> TLSConfig:
    spec = targets[key].scrape
    assert spec is not None
    assert spec.tls is not None
    return spec.tls


def referenced(namespaces: set[str]) -> set[tuple[str, str, str]]:
    """The `get`s that may happen: each namespace's client Secret and CA bundle."""
    out = set()
    for ns in namespaces:
        names = etcd_secret_names(ns)
        out |= {("get", ns, names.client), ("get", ns, names.ca_bundle)}
    return out


async def test_material_from_the_etcd_resource_and_only_its_secrets(kube: KubeEmulator) -> None:
    add_three_shoots(kube)
    pem = default_pem()
    async with kube_api(kube) as api, running_discovery(api, scrape=HTTPS) as (_, pub):
        targets = await pub.until(lambda t: set(t) == SIX)
    for key in SIX:
        tls = tls_of(targets, key)
        etcd = key.split("/")[1].rsplit("-", 1)[0]
        assert (tls.cert_data, tls.key_data, tls.ca_data) == (
            pem.client_cert, pem.client_key, pem.bundle,
        )  # fmt: skip
        assert (tls.ca_file, tls.cert_file, tls.error) == (None, None, None)
        assert tls.server_name == f"{etcd}-local"
        assert targets[key].scrape.url.endswith(":2379/metrics")  # type: ignore[union-attr]
    # Both members of a namespace share one material (one SSLContext between them).
    main, events = (tls_of(targets, f"{NS}/{e}-0") for e in ("etcd-main", "etcd-events"))
    assert main.cert_data is events.cert_data
    # Exactly the referenced Secrets, each read once, never listed or watched; never the CA key.
    requests = kube.secret_requests()
    namespaces = {k.split("/")[0] for k in SIX}
    assert set(requests) == referenced(namespaces)
    assert len(requests) == len(set(requests))
    assert not any(name.startswith("ca-etcd-") and "bundle" not in name for _, _, name in requests)


async def test_client_port_from_the_etcd_resource(kube: KubeEmulator) -> None:
    add_classes(kube)
    add_pki(kube, namespace=NS)
    add_member(kube, namespace=NS, etcd="etcd-events", pod_ip="10.0.0.2")
    add_etcd(kube, namespace=NS, name="etcd-events", storage_class="", client_port=2382)
    async with kube_api(kube) as api, running_discovery(api, scrape=HTTPS) as (_, pub):
        targets = await pub.until(lambda t: bool(t))
    spec = targets[f"{NS}/etcd-events-0"].scrape
    assert spec is not None
    assert spec.url == "https://10.0.0.2:2382/metrics"


async def test_pod_volumes_when_no_etcd_resource_names_them(kube: KubeEmulator) -> None:
    """Without Etcd resources, the pod's etcd-client-tls / etcd-ca volumes name the Secrets; the
    CA key is not stated there, so bundle.crt is found after ca.crt is not."""
    add_classes(kube)
    add_pki(kube, namespace=NS)
    add_member(kube, namespace=NS, etcd="etcd-main", pod_ip="10.0.0.1")
    pem = default_pem()
    async with (
        kube_api(kube) as api,
        running_discovery(api, scrape=HTTPS, kubernetes={"etcd_resources": False}) as (_, pub),
    ):
        targets = await pub.until(lambda t: bool(t))
    tls = tls_of(targets, f"{NS}/etcd-main-0")
    assert (tls.cert_data, tls.ca_data, tls.error) == (pem.client_cert, pem.bundle, None)
    assert set(kube.secret_requests()) == referenced({NS})


async def test_client_secret_rotation_follows_the_new_name(kube: KubeEmulator) -> None:
    add_classes(kube)
    names = add_pki(kube, namespace=NS)
    for i, etcd in enumerate(("etcd-main", "etcd-events")):
        add_member(kube, namespace=NS, etcd=etcd, pod_ip=f"10.0.0.{i + 1}")
        add_etcd(kube, namespace=NS, name=etcd, storage_class=FAST)
    pem = default_pem()
    async with kube_api(kube) as api, running_discovery(api, scrape=HTTPS) as (_, pub):
        await pub.until(lambda t: len(t) == 2)
        before = len(kube.secret_requests())
        # Gardener's order: the new Secret, the Etcd resources updated, the old Secret deleted.
        new = etcd_secret_names(NS, generation=1).client
        # The new Secret holds another certificate (here: the server's pair, a valid PEM pair).
        kube.add(
            "secrets",
            objects.tls_secret(
                namespace=NS, name=new, cert_pem=pem.server_cert, key_pem=pem.server_key
            ),
        )
        for etcd in ("etcd-main", "etcd-events"):
            set_client_ref(kube, namespace=NS, etcd=etcd, client=new)
        targets = await pub.until(
            lambda t: all(tls_of(t, k).cert_data == pem.server_cert for k in t)
        )
        kube.store.delete("secrets", (NS, names.client))
        await asyncio.sleep(0.3)  # a few debounce periods: nothing more happens
        targets = pub.last
    assert all(tls_of(targets, k).error is None for k in targets)
    # One `get` of the new name, nothing else (the old one is not read again).
    assert kube.secret_requests()[before:] == [("get", NS, new)]


async def test_missing_and_malformed_secrets_fail_with_tls_once_and_recover(
    kube: KubeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    add_classes(kube)
    names = etcd_secret_names(NS)
    add_member(kube, namespace=NS, etcd="etcd-main", pod_ip="10.0.0.1")
    add_etcd(kube, namespace=NS, name="etcd-main", storage_class=FAST)
    # Only a malformed bundle: its bundle.crt is not base64; the client Secret is missing.
    bad = objects.bundle_secret(namespace=NS, name=names.ca_bundle, bundle_pem="x")
    bad["data"]["bundle.crt"] = "%%% not base64 %%%"
    kube.add("secrets", bad)
    caplog.set_level(logging.INFO, logger="exporter.discovery.secrets")
    key = f"{NS}/etcd-main-0"
    async with (
        kube_api(kube) as api,
        running_discovery(api, scrape=HTTPS, secret_retry=0.2, secret_refresh=0.6) as (disc, pub),
    ):
        targets = await pub.until(lambda t: key in t)
        tls = tls_of(targets, key)
        assert tls.error is not None
        assert f"Secret {NS}/{names.client}: 404" in tls.error
        assert f"Secret {NS}/{names.ca_bundle} key bundle.crt: not base64" in tls.error
        assert (tls.cert_data, tls.ca_data) == (None, None)
        # The scrape fails with reason tls without connecting.
        with pytest.raises(ScrapeError) as err:
            await SSLContextCache().get(tls)
        assert err.value.reason == "tls"
        # Retries (every 0.2 s) and re-publishes do not repeat the log line or the count.
        await eventually(lambda: kube.secret_requests().count(("get", NS, names.client)) >= 3,
                         seconds=10)  # fmt: skip
        assert dict(disc.secrets.errors) == {"not_found": 1, "malformed": 1}
        lines = [r for r in caplog.records if "unusable" in r.getMessage()]
        assert len(lines) == 2
        assert {(r.secret, r.key, r.reason) for r in lines} == {  # type: ignore[attr-defined]
            (names.client, "", "not_found"),
            (names.ca_bundle, "bundle.crt", "malformed"),
        }
        # Fixed: the client Secret appears, the bundle is corrected in place.
        add_client_secret(kube, namespace=NS, name=names.client)
        bundle = default_pem().bundle
        kube.add(
            "secrets", objects.bundle_secret(namespace=NS, name=names.ca_bundle, bundle_pem=bundle)
        )
        targets = await pub.until(lambda t: tls_of(t, key).error is None, seconds=10)
    assert tls_of(targets, key).cert_data == default_pem().client_cert
    assert sum("usable again" in r.getMessage() for r in caplog.records) == 2
    assert dict(disc.secrets.errors) == {"not_found": 1, "malformed": 1}


@pytest.mark.parametrize(
    ("mutate", "reason", "why"),
    [
        (lambda d: d.pop("tls.key"), "malformed", "key tls.key: key missing"),
        (lambda d: d.update({"tls.crt": "bm8gcGVt"}), "malformed", "key tls.crt: no PEM block"),
        (
            lambda d: d.update({"tls.crt": b64(BAD_DER)}),
            "malformed",
            "key tls.crt: PEM block CERTIFICATE is not DER",
        ),
    ],
    ids=["missing-key", "not-pem", "bad-der"],
)  # fmt: skip
async def test_malformed_client_secret(
    kube: KubeEmulator, mutate: object, reason: str, why: str
) -> None:
    add_classes(kube)
    names = add_pki(kube, namespace=NS)
    add_member(kube, namespace=NS, etcd="etcd-main", pod_ip="10.0.0.1")
    add_etcd(kube, namespace=NS, name="etcd-main", storage_class=FAST)
    kube.store.modify("secrets", (NS, names.client), lambda o: mutate(o["data"]))  # type: ignore[operator]
    key = f"{NS}/etcd-main-0"
    async with kube_api(kube) as api, running_discovery(api, scrape=HTTPS) as (disc, pub):
        targets = await pub.until(lambda t: key in t)
    tls = tls_of(targets, key)
    assert tls.error is not None
    assert f"Secret {NS}/{names.client} {why}" in tls.error
    assert dict(disc.secrets.errors) == {reason: 1}


async def test_forbidden_secret(kube: KubeEmulator) -> None:
    add_three_shoots(kube)
    kube.deny("secrets", verb="get", namespace=NS)
    async with kube_api(kube) as api, running_discovery(api, scrape=HTTPS) as (disc, pub):
        targets = await pub.until(lambda t: set(t) == SIX)
    assert "403" in (tls_of(targets, f"{NS}/etcd-main-0").error or "")
    assert tls_of(targets, "shoot--p1--b/etcd-main-0").error is None
    # One Secret problem per Secret (client and bundle), not per member.
    assert dict(disc.secrets.errors) == {"forbidden": 2}


async def test_insecure_skip_verify_reads_no_ca(kube: KubeEmulator) -> None:
    add_three_shoots(kube)
    scrape = {**HTTPS, "insecure_skip_verify": True}
    async with kube_api(kube) as api, running_discovery(api, scrape=scrape) as (_, pub):
        targets = await pub.until(lambda t: set(t) == SIX)
    tls = tls_of(targets, f"{NS}/etcd-main-0")
    assert (tls.insecure_skip_verify, tls.ca_data, tls.cert_data is not None) == (True, None, True)
    assert all("bundle" not in name for _, _, name in kube.secret_requests())


async def test_http_and_secret_refs_off_read_no_secret(kube: KubeEmulator) -> None:
    add_three_shoots(kube)
    async with kube_api(kube) as api:
        async with running_discovery(api) as (_, pub):  # scheme http
            await pub.until(lambda t: set(t) == SIX)
        scrape = {**HTTPS, "secret_refs": False, "ca_file": "/etc/ca.pem"}
        async with running_discovery(api, scrape=scrape) as (_, pub):
            targets = await pub.until(lambda t: set(t) == SIX)
    assert tls_of(targets, f"{NS}/etcd-main-0").ca_file == "/etc/ca.pem"
    assert kube.secret_requests() == []


async def test_a_failed_reread_keeps_the_last_content(
    kube: KubeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Read once, then re-reads are denied and the Secret deleted: the members keep the material
    their etcd still trusts (no outage from a rotation's steps or an RBAC blip), logged once."""
    add_three_shoots(kube)
    caplog.set_level(logging.INFO, logger="exporter.discovery.secrets")
    key = f"{NS}/etcd-main-0"
    names = etcd_secret_names(NS)
    async with (
        kube_api(kube) as api,
        running_discovery(api, scrape=HTTPS, secret_retry=0.1, secret_refresh=0.2) as (disc, pub),
    ):
        first = tls_of(await pub.until(lambda t: set(t) == SIX), key)
        kube.deny("secrets", verb="get", namespace=NS)
        count = kube.secret_requests().count(("get", NS, names.client))
        await eventually(
            lambda: kube.secret_requests().count(("get", NS, names.client)) >= count + 3,
            seconds=10,
        )
        kube.allow("secrets", verb="get", namespace=NS)
        kube.store.delete("secrets", (NS, names.client))
        await eventually(
            lambda: kube.secret_requests().count(("get", NS, names.client)) >= count + 6,
            seconds=10,
        )
        assert tls_of(pub.last, key) == first
    assert not disc.secrets.errors
    kept = [r for r in caplog.records if "keeping its last content" in r.getMessage()]
    # once per Secret, although the re-reads failed again and again (later as not found)
    got = sorted((r.secret, r.reason) for r in kept)  # type: ignore[attr-defined]
    assert got == sorted([(names.client, "forbidden"), (names.ca_bundle, "forbidden")])
