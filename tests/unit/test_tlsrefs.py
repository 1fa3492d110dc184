"""tlsrefs.py: which Secrets a member's TLS comes from, and the TLSConfig made of them (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exporter.discovery.etcd_resource import EtcdInfo
from exporter.discovery.tlsrefs import (
    UNSTATED_CA_KEYS,
    SecretData,
    TLSRefs,
    assemble,
    decode_values,
    member_refs,
    pem_problem,
)
from exporter.settings import ScrapeSettings
from tests.support import pki

NS = "shoot--p1--a"
ETCD = EtcdInfo(
    NS, "etcd-main", "", 2379, "etcd-client-1a2b3c4d", "ca-etcd-bundle-5e6f", "bundle.crt"
)


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp: Path = tmp_path_factory.mktemp("pki")
    ca = pki.make_ca(tmp / "ca")
    client = pki.issue_client(ca, tmp / "c")
    return {"ca": ca.cert_pem, "cert": client.cert_pem, "key": client.key_pem}


def scrape(**kw: Any) -> ScrapeSettings:
    return ScrapeSettings(**kw)


def refs(**kw: Any) -> TLSRefs | None:
    args: dict[str, Any] = {
        "namespace": NS, "etcd": ETCD, "pod_client_secret": "", "pod_ca_secret": "",
        "scrape": scrape(),
    }  # fmt: skip
    return member_refs(**(args | kw))


def test_refs_from_the_etcd_resource_win_over_the_pod() -> None:
    got = refs(pod_client_secret="pod-client", pod_ca_secret="pod-ca")
    assert got == TLSRefs(NS, "etcd-client-1a2b3c4d", "ca-etcd-bundle-5e6f", ("bundle.crt",))
    assert got is not None
    assert got.origin == "etcd"
    assert got.names() == {"etcd-client-1a2b3c4d", "ca-etcd-bundle-5e6f"}


def test_refs_from_pod_volumes_try_both_ca_keys() -> None:
    got = refs(etcd=None, pod_client_secret="pod-client", pod_ca_secret="pod-ca")
    assert got == TLSRefs(NS, "pod-client", "pod-ca", UNSTATED_CA_KEYS, origin="pod")
    assert UNSTATED_CA_KEYS == ("ca.crt", "bundle.crt")
    # an Etcd without clientUrlTls: the pod's volumes
    bare = EtcdInfo(NS, "etcd-main", None)
    assert refs(etcd=bare, pod_client_secret="c", pod_ca_secret="a") == TLSRefs(
        NS, "c", "a", UNSTATED_CA_KEYS, origin="pod"
    )


def test_refs_fixed_name_files_and_skip_verify() -> None:
    off = scrape(secret_refs=False, client_secret="etcd-client", client_secret_ca_key="ca.pem")
    assert refs(scrape=off) == TLSRefs(NS, "etcd-client", "etcd-client", ("ca.pem",), origin="flag")
    assert refs(scrape=scrape(secret_refs=False)) is None
    assert refs(etcd=None) is None  # nothing names a Secret and no fixed name: the files
    # The fixed name is the fallback for members without references.
    assert refs(etcd=None, scrape=scrape(client_secret="etcd-client")) is not None
    skip = refs(scrape=scrape(insecure_skip_verify=True))
    assert skip == TLSRefs(NS, "etcd-client-1a2b3c4d", "", ())


def data(name: str, values: dict[str, str | None], rv: str = "1") -> SecretData:
    return SecretData(NS, name, rv, values)


def build(r: TLSRefs, secrets: dict[str, SecretData], **kw: Any) -> tuple[Any, tuple[Any, ...]]:
    return assemble(
        r,
        lookup=lambda ns, name: secrets.get(name) if ns == NS else None,
        check=lambda d, key, kind: pem_problem(d.values[key] or "", kind),
        scrape=scrape(**kw),
    )


def test_assemble_from_referenced_secrets(pems: dict[str, str]) -> None:
    r = TLSRefs(NS, "cli", "bundle", ("bundle.crt",))
    secrets = {
        "cli": data("cli", {"tls.crt": pems["cert"], "tls.key": pems["key"]}),
        "bundle": data("bundle", {"bundle.crt": pems["ca"] + pems["ca"]}),
    }
    tls, problems = build(r, secrets, server_name="{etcd}-local", ca_file="/x")
    assert problems == ()
    assert (tls.cert_data, tls.key_data, tls.ca_data) == (pems["cert"], pems["key"], pems["ca"] * 2)
    assert (tls.ca_file, tls.cert_file, tls.server_name, tls.error) == (
        None, None, "{etcd}-local", None,
    )  # fmt: skip


def test_assemble_unstated_ca_key_finds_the_bundle(pems: dict[str, str]) -> None:
    r = TLSRefs(NS, "", "bundle", UNSTATED_CA_KEYS, origin="pod")
    tls, problems = build(r, {"bundle": data("bundle", {"bundle.crt": pems["ca"]})},
                          cert_file="/c", key_file="/k")  # fmt: skip
    assert problems == ()
    assert (tls.ca_data, tls.cert_file, tls.key_file) == (pems["ca"], "/c", "/k")


@pytest.mark.parametrize(
    ("secrets", "expected"),
    [
        ({}, [("cli", "", "error", "not read yet"), ("bundle", "", "error", "not read yet")]),
        (
            {"cli": SecretData(NS, "cli", failure="not_found", detail="404 gone"),
             "bundle": SecretData(NS, "bundle", failure="forbidden", detail="403 no")},
            [("cli", "", "not_found", "404 gone"), ("bundle", "", "forbidden", "403 no")],
        ),
        (
            {"cli": data("cli", {"tls.crt": None, "tls.key": "x"}),
             "bundle": data("bundle", {"ca.crt": "x"})},
            [("cli", "tls.crt", "malformed", "not base64-encoded text"),
             ("cli", "tls.key", "malformed", "no PEM block"),
             ("bundle", "bundle.crt", "malformed", "key missing")],
        ),
    ],
    ids=["not-read", "not-found-forbidden", "malformed"],
)  # fmt: skip
def test_assemble_problems(
    secrets: dict[str, SecretData], expected: list[tuple[str, str, str, str]]
) -> None:
    r = TLSRefs(NS, "cli", "bundle", ("bundle.crt",))
    tls, problems = build(r, secrets)
    assert [(p.secret, p.key, p.reason, p.why) for p in problems] == expected
    assert tls.error == "; ".join(p.text() for p in problems)
    assert (tls.cert_data, tls.ca_data, tls.ca_file) == (None, None, None)


def test_fixed_name_falls_back_per_piece(pems: dict[str, str]) -> None:
    r = TLSRefs(NS, "etcd-client", "etcd-client", ("ca.crt",), origin="flag")
    files = {"ca_file": "/ca", "cert_file": "/c", "key_file": "/k"}
    tls, problems = build(r, {"etcd-client": data("etcd-client", {"ca.crt": "junk"})}, **files)
    assert problems == ()  # the legacy mode never fails a member: it uses the files
    assert (tls.ca_file, tls.cert_file, tls.ca_data, tls.error) == ("/ca", "/c", None, None)
    missing = {"etcd-client": SecretData(NS, "etcd-client", failure="not_found")}
    assert build(r, missing, **files)[0].ca_file == "/ca"
    full = {"tls.crt": pems["cert"], "tls.key": pems["key"], "ca.crt": pems["ca"]}
    tls, _ = build(r, {"etcd-client": data("etcd-client", full)}, **files)
    assert (tls.cert_data, tls.ca_data, tls.cert_file, tls.ca_file) == (
        pems["cert"], pems["ca"], None, None,
    )  # fmt: skip


def test_decode_values() -> None:
    assert decode_values({"a": "aGk=", "b": "!!", "c": "/w=="}) == {"a": "hi", "b": None, "c": None}
    assert decode_values(None) == {}


def test_pem_problem(pems: dict[str, str]) -> None:
    assert pem_problem(pems["cert"], "cert") is None
    assert pem_problem(pems["ca"] + pems["cert"], "ca") is None
    assert pem_problem(pems["key"], "key") is None
    assert pem_problem(pems["key"], "cert") == "no CERTIFICATE block"
    assert pem_problem(pems["key"] + pems["key"], "key") == "2 private keys, want 1"
    assert pem_problem("hello", "ca") == "no PEM block"
    broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"
    assert pem_problem(broken, "cert") == "PEM block CERTIFICATE is not base64"
    garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert pem_problem(garbage, "ca") == "PEM block CERTIFICATE is not DER"
    # a certificate cut short: the DER length no longer fits
    lines = pems["cert"].splitlines()
    cut = "\n".join([*lines[:3], lines[-1]]) + "\n"
    assert pem_problem(cut, "cert") == "PEM block CERTIFICATE is not DER"
    key_lines = pems["key"].splitlines()
    assert pem_problem("\n".join([*key_lines[:2], key_lines[-1]]), "key") == (
        "PEM block PRIVATE KEY is not DER"
    )
