"""Certificates made like Gardener's etcd PKI, with the `openssl` command line, for tests.

Gardener's secrets manager gives every shoot namespace its own etcd CA (`ca-etcd`), a server
certificate for etcd (`etcd-server-cr`) and one client certificate (`etcd-client`). What matters
for a scraper, and what these helpers reproduce:

- The server certificate's SANs are `<etcd>-local`, `<etcd>-client`, `<etcd>-client.<ns>`,
  `<etcd>-client.<ns>.svc`, `<etcd>-client.<ns>.svc.cluster.local`, `*.<etcd>-peer` (and
  `.<ns>`, `.svc`, `.svc.cluster.local`), and the IPs 127.0.0.1 and ::1 — never the pod IP.
  Tests therefore run their etcds on other loopback addresses (127.0.0.2, 127.0.0.3, …) as the
  "pod IP": only the server name (`--scrape.server-name={etcd}-local`) can make verification
  pass, exactly as in a seed.
- The client certificate (CN `etcd-client`, extended key usage clientAuth) is published without
  the CA (`tls.crt`/`tls.key` only); the CA that verifies etcd is a separate bundle Secret whose
  `bundle.crt` is the concatenation of the CA certificates in use. During a CA rotation the
  bundle holds the old and the new CA, the server certificate is still signed by the OLD CA and
  the client certificate already by the NEW one.

API (all paths are plain files in a directory the caller owns, e.g. pytest's `tmp_path`):

    ca = make_ca(tmp_path / "ca", cn="etcd")                  # -> CA (cert, key)
    srv = issue_server(ca, tmp_path / "srv", etcd="etcd-main", namespace="shoot--p--s")
    cli = issue_client(ca, tmp_path / "cli")                  # -> CertPair, CN etcd-client
    pem = bundle(old_ca, new_ca)                              # -> str, concatenated PEMs
    cli.secret_data()                                         # {"tls.crt": b64, "tls.key": b64}

Keys are ECDSA P-256 by default (a certificate costs a few milliseconds); `key="rsa"` gives RSA
2048 like Gardener's. CA, server and client certificates all carry subject and authority key
identifiers, so two CAs with the same subject (as in a rotation) are told apart by verifiers.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

KeyType = Literal["ec", "rsa"]

OPENSSL = "openssl"
DAYS = 30


@dataclass(frozen=True, slots=True)
class CertPair:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path

    @property
    def cert_pem(self) -> str:
        return self.cert.read_text()

    @property
    def key_pem(self) -> str:
        return self.key.read_text()

    def secret_data(self) -> dict[str, str]:
        """The `data` of a `kubernetes.io/tls` Secret holding this pair (base64 values)."""
        return {"tls.crt": b64(self.cert_pem), "tls.key": b64(self.key_pem)}


@dataclass(frozen=True, slots=True)
class CA(CertPair):
    """A self-signed certificate authority; `cn` is its subject's common name."""

    cn: str = "etcd"


def b64(text: str) -> str:
    """Base64 of a text, as Secret `data` values are written."""
    return base64.b64encode(text.encode()).decode()


def server_sans(etcd: str, namespace: str) -> list[str]:
    """Gardener's etcd server certificate SANs (DNS names and IPs; no pod IP)."""
    client = f"{etcd}-client"
    peer = f"*.{etcd}-peer"
    names = [f"{etcd}-local"]
    for base in (client, peer):
        names += [base, f"{base}.{namespace}", f"{base}.{namespace}.svc"]
        names.append(f"{base}.{namespace}.svc.cluster.local")
    return [f"DNS:{name}" for name in names] + ["IP:127.0.0.1", "IP:::1"]


def make_ca(directory: Path, cn: str = "etcd", *, name: str = "ca", key: KeyType = "ec") -> CA:
    """A new self-signed CA in `directory` (`<name>.crt`, `<name>.key`)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, keyfile = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-nodes", *_newkey(key), "-keyout", str(keyfile), "-out", str(cert),
        "-days", str(DAYS), "-subj", f"/CN={cn}", "-set_serial", _serial(),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        "-addext", "subjectKeyIdentifier=hash",
    )  # fmt: skip
    return CA(cert=cert, key=keyfile, cn=cn)


def issue_server(
    ca: CA,
    directory: Path,
    *,
    etcd: str = "etcd-main",
    namespace: str,
    name: str = "server",
    key: KeyType = "ec",
) -> CertPair:
    """etcd's server certificate (server and client auth, Gardener's SANs), signed by `ca`."""
    return issue(
        ca,
        directory,
        cn="etcd-server",
        sans=server_sans(etcd, namespace),
        usages=("serverAuth", "clientAuth"),
        name=name,
        key=key,
    )


def issue_client(
    ca: CA, directory: Path, *, cn: str = "etcd-client", name: str = "client", key: KeyType = "ec"
) -> CertPair:
    """The scraper's client certificate (clientAuth only), signed by `ca`."""
    return issue(ca, directory, cn=cn, sans=(), usages=("clientAuth",), name=name, key=key)


def issue(
    ca: CA,
    directory: Path,
    *,
    cn: str,
    sans: Sequence[str],
    usages: Sequence[str],
    name: str,
    key: KeyType = "ec",
) -> CertPair:
    """A leaf certificate signed by `ca`: a CSR with `req`, then `x509 -req` with extensions."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, keyfile = directory / f"{name}.crt", directory / f"{name}.key"
    csr, ext = directory / f"{name}.csr", directory / f"{name}.ext"
    extensions = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={','.join(usages)}",
        "subjectKeyIdentifier=hash",
        "authorityKeyIdentifier=keyid:always",
    ]
    if sans:
        extensions.append(f"subjectAltName={','.join(sans)}")
    ext.write_text("\n".join(extensions) + "\n")
    _openssl("req", "-new", "-nodes", *_newkey(key), "-keyout", str(keyfile), "-out", str(csr),
             "-subj", f"/CN={cn}")  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-set_serial", _serial(), "-days", str(DAYS), "-extfile", str(ext), "-out", str(cert),
    )  # fmt: skip
    csr.unlink()
    ext.unlink()
    return CertPair(cert=cert, key=keyfile)


def bundle(*cas: CA) -> str:
    """A CA bundle as Gardener publishes it in `ca-etcd-bundle-<hash>` (`bundle.crt`)."""
    return "".join(_ensure_newline(ca.cert_pem) for ca in cas)


def write_bundle(path: Path, *cas: CA) -> Path:
    """`bundle(*cas)` written to `path` (for etcd's `--trusted-ca-file`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(bundle(*cas))
    return path


def _newkey(key: KeyType) -> list[str]:
    if key == "rsa":
        return ["-newkey", "rsa:2048"]
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]


def _serial() -> str:
    return "0x" + secrets.token_hex(16)


def _ensure_newline(pem: str) -> str:
    return pem if pem.endswith("\n") else pem + "\n"


def _openssl(*args: str) -> None:
    """Run openssl; a failure raises with openssl's own message (bounded: 30 s)."""
    proc = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed ({proc.returncode}): {proc.stderr.strip()}")
