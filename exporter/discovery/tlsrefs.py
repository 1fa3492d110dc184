"""Which Secrets hold an etcd member's client TLS material, and the TLSConfig made from them. Pure.

Where the material comes from, per member (Kubernetes mode, https):

1. `--scrape.secret-refs` (default on): the Secrets the member's `Etcd` resource names
   (`spec.etcd.clientUrlTls.clientTLSSecretRef.name` for `tls.crt`/`tls.key`,
   `tlsCASecretRef.{name,dataKey}` for the CA), else the Secrets of the pod's volumes
   `etcd-client-tls` and `etcd-ca`. A volume does not say which key holds the CA, so then
   `ca.crt` (druid's default) and `bundle.crt` (Gardener's bundle) are tried in this order.
2. `--scrape.client-secret`: a Secret of that fixed name in the member's namespace, with the keys
   of the `--scrape.client-secret-*-key` flags. As before this existed, a Secret or key that is
   not there falls back to the matching file flag.
3. The file flags `--scrape.ca-file`, `--scrape.cert-file`, `--scrape.key-file`.

A piece (client pair or CA) that no Secret names comes from the file flags. For referenced
Secrets (1.), a Secret that cannot be read or whose key is missing, not base64, or not PEM of the
right kind is a `SecretProblem`: the member's TLSConfig then carries an `error` and its scrapes
fail with reason `tls` without connecting. With `--scrape.insecure-skip-verify`, no CA is read.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from exporter.discovery.etcd_resource import EtcdInfo
from exporter.model import TLSConfig
from exporter.settings import ScrapeSettings

Origin = Literal["etcd", "pod", "flag"]
PemKind = Literal["cert", "key", "ca"]

UNSTATED_CA_KEYS: tuple[str, ...] = ("ca.crt", "bundle.crt")
CLIENT_CERT_KEY, CLIENT_KEY_KEY = "tls.crt", "tls.key"

# Why a Secret is unusable: the `reason` label of etcd_latency_exporter_tls_secret_errors_total.
NOT_FOUND, FORBIDDEN, MALFORMED, ERROR = "not_found", "forbidden", "malformed", "error"


@dataclass(frozen=True, slots=True)
class TLSRefs:
    """The Secrets (in `namespace`) a member's TLS material comes from; "" = none."""

    namespace: str
    client: str = ""
    ca: str = ""
    ca_keys: tuple[str, ...] = ()
    cert_key: str = CLIENT_CERT_KEY
    key_key: str = CLIENT_KEY_KEY
    origin: Origin = "etcd"

    def names(self) -> set[str]:
        """The Secret names to read."""
        return {n for n in (self.client, self.ca) if n}


@dataclass(frozen=True, slots=True)
class SecretData:
    """One Secret as read: decoded values (None for a value that is not base64 UTF-8 text), or
    why it could not be read (`failure` is not_found, forbidden or error)."""

    namespace: str
    name: str
    resource_version: str = ""
    values: Mapping[str, str | None] = field(default_factory=dict)
    failure: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SecretProblem:
    """Why a referenced Secret (key "" for the whole Secret) gives no usable material."""

    namespace: str
    secret: str
    key: str
    reason: str
    why: str

    def text(self) -> str:
        """`ns/secret key tls.crt: why` (the detail of the member's `tls` scrape errors)."""
        key = f" key {self.key}" if self.key else ""
        return f"Secret {self.namespace}/{self.secret}{key}: {self.why}"


Lookup = Callable[[str, str], SecretData | None]  # (namespace, name) → data, None if not read
PemCheck = Callable[[SecretData, str, PemKind], str | None]  # → why it is not usable, or None


def member_refs(
    *,
    namespace: str,
    etcd: EtcdInfo | None,
    pod_client_secret: str,
    pod_ca_secret: str,
    scrape: ScrapeSettings,
) -> TLSRefs | None:
    """Where the member's material comes from (module docstring); None: the file flags only."""
    skip_ca = scrape.insecure_skip_verify
    if scrape.secret_refs:
        client = (etcd.client_secret if etcd else "") or pod_client_secret
        ca_keys: tuple[str, ...]
        if etcd is not None and etcd.ca_secret:
            ca, ca_keys = etcd.ca_secret, (etcd.ca_key,)
        else:
            ca, ca_keys = pod_ca_secret, UNSTATED_CA_KEYS
        if skip_ca:
            ca, ca_keys = "", ()
        if client or ca:
            from_etcd = etcd is not None and bool(etcd.client_secret or etcd.ca_secret)
            return TLSRefs(
                namespace=namespace,
                client=client,
                ca=ca,
                ca_keys=ca_keys if ca else (),
                cert_key=scrape.client_secret_cert_key,
                key_key=scrape.client_secret_key_key,
                origin="etcd" if from_etcd else "pod",
            )
    if scrape.client_secret:
        name = scrape.client_secret
        return TLSRefs(
            namespace=namespace,
            client=name,
            ca="" if skip_ca else name,
            ca_keys=() if skip_ca else (scrape.client_secret_ca_key,),
            cert_key=scrape.client_secret_cert_key,
            key_key=scrape.client_secret_key_key,
            origin="flag",
        )
    return None


def files_tls(scrape: ScrapeSettings) -> TLSConfig:
    """TLS from the --scrape.* file flags."""
    return TLSConfig(
        ca_file=scrape.ca_file,
        cert_file=scrape.cert_file,
        key_file=scrape.key_file,
        server_name=scrape.server_name,
        insecure_skip_verify=scrape.insecure_skip_verify,
    )


def assemble(
    refs: TLSRefs, *, lookup: Lookup, check: PemCheck, scrape: ScrapeSettings
) -> tuple[TLSConfig, tuple[SecretProblem, ...]]:
    """The member's TLSConfig (server name still the flag's template) and its problems."""
    base = files_tls(scrape)
    if refs.origin == "flag":
        return _fixed_name(refs, lookup=lookup, check=check, base=base), ()
    problems: list[SecretProblem] = []
    cert = key = ca = None
    if refs.client:
        data = _read(refs.namespace, refs.client, lookup, problems)
        if data is not None:
            cert = _value(data, (refs.cert_key,), "cert", check, problems)
            key = _value(data, (refs.key_key,), "key", check, problems)
    if refs.ca:
        data = _read(refs.namespace, refs.ca, lookup, problems)
        if data is not None:
            ca = _value(data, refs.ca_keys, "ca", check, problems)
    if problems:
        why = "; ".join(p.text() for p in problems)
        return TLSConfig(server_name=base.server_name, error=why), tuple(problems)
    return _combine(base, ca=ca, cert=cert, key=key), ()


def _combine(base: TLSConfig, *, ca: str | None, cert: str | None, key: str | None) -> TLSConfig:
    pair = cert is not None and key is not None
    return TLSConfig(
        ca_data=ca,
        ca_file=None if ca else base.ca_file,
        cert_data=cert if pair else None,
        key_data=key if pair else None,
        cert_file=None if pair else base.cert_file,
        key_file=None if pair else base.key_file,
        server_name=base.server_name,
        insecure_skip_verify=base.insecure_skip_verify,
    )


def _fixed_name(refs: TLSRefs, *, lookup: Lookup, check: PemCheck, base: TLSConfig) -> TLSConfig:
    """--scrape.client-secret: whatever the Secret lacks comes from the file flags."""
    data = lookup(refs.namespace, refs.client)
    if data is None or data.failure:
        return base

    def usable(key: str, kind: PemKind) -> str | None:
        value = data.values.get(key) if key else None
        return value if value is not None and check(data, key, kind) is None else None

    ca = usable(refs.ca_keys[0], "ca") if refs.ca_keys else None
    cert, key = usable(refs.cert_key, "cert"), usable(refs.key_key, "key")
    return _combine(base, ca=ca, cert=cert, key=key)


def _read(
    namespace: str, name: str, lookup: Lookup, problems: list[SecretProblem]
) -> SecretData | None:
    data = lookup(namespace, name)
    if data is None:
        problems.append(SecretProblem(namespace, name, "", ERROR, "not read yet"))
        return None
    if data.failure:
        problems.append(SecretProblem(namespace, name, "", data.failure, data.detail))
        return None
    return data


def _value(
    data: SecretData,
    keys: tuple[str, ...],
    kind: PemKind,
    check: PemCheck,
    problems: list[SecretProblem],
) -> str | None:
    """The first of `keys` the Secret has, checked; a problem when none is there or usable."""
    for key in keys:
        if key not in data.values:
            continue
        value = data.values[key]
        why = "not base64-encoded text" if value is None else check(data, key, kind)
        if why is None:
            return value
        problems.append(SecretProblem(data.namespace, data.name, key, MALFORMED, why))
        return None
    missing = " or ".join(keys)
    problems.append(SecretProblem(data.namespace, data.name, missing, MALFORMED, "key missing"))
    return None


def decode_values(data: object) -> dict[str, str | None]:
    """A Secret's `data` → key: text (None where the value is not base64 of UTF-8 text)."""
    out: dict[str, str | None] = {}
    if not isinstance(data, dict):
        return out
    for key, raw in data.items():
        try:
            out[str(key)] = base64.b64decode(str(raw), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            out[str(key)] = None
    return out


_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


def pem_problem(text: str, kind: PemKind) -> str | None:
    """Why `text` is not PEM of `kind` (certificates for cert/ca, one private key), or None.

    Checks the armour, the base64 and the DER framing of every block (one outer SEQUENCE of the
    stated length): cheap enough for a seed's thousands of Secrets on the event loop (OpenSSL's
    parse costs ~0.5 ms per value). What passes and still does not load (a key that does not
    match its certificate) fails the member's scrape with reason `tls` when its context is built.
    """
    blocks = [(label, body) for label, body in _PEM_BLOCK.findall(text)]
    if not blocks:
        return "no PEM block"
    for label, body in blocks:
        try:
            der = base64.b64decode("".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            return f"PEM block {label} is not base64"
        if not _der_sequence(der):
            return f"PEM block {label} is not DER"
    if kind == "key":
        keys = [label for label, _ in blocks if label.endswith("PRIVATE KEY")]
        return None if len(keys) == 1 else f"{len(keys)} private keys, want 1"
    if not any(label == "CERTIFICATE" for label, _ in blocks):
        return "no CERTIFICATE block"
    return None


def _der_sequence(der: bytes) -> bool:
    """True when `der` is exactly one DER SEQUENCE (tag 0x30 and a length that fits)."""
    if len(der) < 2 or der[0] != 0x30:
        return False
    first = der[1]
    if first < 0x80:
        return 2 + first == len(der)
    size = first & 0x7F
    if not 0 < size <= 4 or len(der) < 2 + size:
        return False
    return 2 + size + int.from_bytes(der[2 : 2 + size], "big") == len(der)
