"""tests/support/pki.py: Gardener-like certificates verify by server name, never by the pod IP,
and a CA rotation's bundle verifies both the old-CA server and the new-CA client certificate."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from tests.support import pki

NS = "shoot--dev--alpha"


def _handshake(
    server: pki.CertPair, server_ca: str, client: pki.CertPair, client_ca: str, name: str
) -> None:
    """One mutual-TLS handshake over loopback; raises the client's ssl error, if any."""
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(server.cert, server.key)
    sctx.load_verify_locations(cadata=server_ca)
    sctx.verify_mode = ssl.CERT_REQUIRED
    cctx = ssl.create_default_context(cadata=client_ca)
    cctx.load_cert_chain(client.cert, client.key)
    listener = socket.create_server(("127.0.0.2", 0))
    port = listener.getsockname()[1]
    errors: list[BaseException] = []

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with sctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError) as err:
            errors.append(err)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.2", port), timeout=5) as raw,
            cctx.wrap_socket(raw, server_hostname=name) as tls,
        ):
            tls.sendall(b"x")
    finally:
        thread.join(5)
        listener.close()


def test_server_sans_are_gardeners_and_have_no_pod_ip() -> None:
    sans = pki.server_sans("etcd-events", NS)
    assert "DNS:etcd-events-local" in sans
    assert f"DNS:etcd-events-client.{NS}.svc.cluster.local" in sans
    assert f"DNS:*.etcd-events-peer.{NS}.svc" in sans
    assert [s for s in sans if s.startswith("IP:")] == ["IP:127.0.0.1", "IP:::1"]


def test_certificates_carry_the_sans_and_usages(tmp_path: Path) -> None:
    ca = pki.make_ca(tmp_path / "ca")
    server = pki.issue_server(ca, tmp_path / "s", etcd="etcd-main", namespace=NS)
    client = pki.issue_client(ca, tmp_path / "c")
    text = subprocess.run(
        ["openssl", "x509", "-in", str(server.cert), "-noout", "-text"],
        capture_output=True, text=True, check=True, timeout=10,
    ).stdout  # fmt: skip
    assert "DNS:etcd-main-local" in text
    assert "IP Address:127.0.0.2" not in text
    ctext = subprocess.run(
        ["openssl", "x509", "-in", str(client.cert), "-noout", "-text"],
        capture_output=True, text=True, check=True, timeout=10,
    ).stdout  # fmt: skip
    assert "CN = etcd-client" in ctext
    assert "TLS Web Client Authentication" in ctext
    assert "TLS Web Server Authentication" not in ctext


def test_server_name_verifies_and_pod_ip_does_not(tmp_path: Path) -> None:
    ca = pki.make_ca(tmp_path / "ca")
    server = pki.issue_server(ca, tmp_path / "s", etcd="etcd-main", namespace=NS)
    client = pki.issue_client(ca, tmp_path / "c")
    pem = pki.bundle(ca)
    _handshake(server, pem, client, pem, "etcd-main-local")
    with pytest.raises(ssl.SSLCertVerificationError, match=r"127\.0\.0\.2"):
        _handshake(server, pem, client, pem, "127.0.0.2")


def test_rotation_bundle_verifies_old_server_and_new_client(tmp_path: Path) -> None:
    old = pki.make_ca(tmp_path / "old")
    new = pki.make_ca(tmp_path / "new")  # same subject, as in Gardener's rotation
    server = pki.issue_server(old, tmp_path / "s", etcd="etcd-main", namespace=NS)
    client = pki.issue_client(new, tmp_path / "c")
    both = pki.bundle(old, new)
    assert both.count("BEGIN CERTIFICATE") == 2
    _handshake(server, both, client, both, "etcd-main-local")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server, both, client, pki.bundle(new), "etcd-main-local")


def test_secret_data_is_base64_of_the_pems(tmp_path: Path) -> None:
    ca = pki.make_ca(tmp_path / "ca", key="rsa")
    client = pki.issue_client(ca, tmp_path / "c", key="rsa")
    data = client.secret_data()
    assert set(data) == {"tls.crt", "tls.key"}
    assert data["tls.crt"] == pki.b64(client.cert_pem)
    assert "PRIVATE KEY" in client.key_pem
