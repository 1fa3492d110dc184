"""The exporter-toolkit web configuration file (`--web.config.file`): TLS, basic auth, headers.

The format is the one every Prometheus exporter reads
(https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md):

    tls_server_config: {cert_file, key_file, client_ca_file, client_auth_type, min_version, …}
    http_server_config: {http2, headers}
    basic_auth_users: {user: bcrypt hash}

Loading validates everything, including that the certificates load, and raises one ConfigError
listing every problem. Relative paths are relative to the file's directory, as in the toolkit.
Where Python's ssl cannot do what Go's crypto/tls does, the difference is stated here:
`RequestClientCert` verifies a certificate if a client CA is given (otherwise none is asked
for), and `RequireAnyClientCert` needs a client CA and verifies against it.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from exporter.tls import load_cert_chain_data

CLIENT_AUTH_TYPES: dict[str, ssl.VerifyMode] = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
NEEDS_CA = frozenset(
    {"RequireAnyClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"}
)
TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# The toolkit allows only these response headers, some with fixed values.
HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}
BCRYPT_HASH = re.compile(r"\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}")
TOP_KEYS = frozenset({"tls_server_config", "http_server_config", "basic_auth_users"})
TLS_KEYS = frozenset(
    {"cert_file", "key_file", "cert", "key", "client_ca_file", "client_ca", "client_auth_type"}
    | {"min_version", "max_version", "prefer_server_cipher_suites"}
)
# Known to the toolkit, not implemented here: rejected rather than silently ignored.
UNSUPPORTED = {
    "rate_limit": "rate_limit is not supported",
    "cipher_suites": "tls_server_config.cipher_suites is not supported (ssl defaults apply)",
    "curve_preferences": "tls_server_config.curve_preferences is not supported",
    "client_allowed_sans": "tls_server_config.client_allowed_sans is not supported",
}


class ConfigError(ValueError):
    """An invalid configuration file; `problems` lists every problem found."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{path}: invalid web configuration ({len(problems)}):\n{lines}")


@dataclass(frozen=True, slots=True)
class TLSServerConfig:
    """`tls_server_config`, with paths made absolute."""

    cert_file: str | None = None
    key_file: str | None = None
    cert: str | None = None
    key: str | None = None
    client_ca_file: str | None = None
    client_ca: str | None = None
    client_auth_type: str = "NoClientCert"
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    prefer_server_cipher_suites: bool = True


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The whole file. `tls` is None when the file configures no TLS."""

    tls: TLSServerConfig | None = None
    basic_auth_users: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    http2: bool = True  # accepted for compatibility; aiohttp serves HTTP/1.1 only


def load_web_config(path: str) -> WebConfig:
    """Read and validate the file (certificates are loaded once); raises ConfigError."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(path, [f"cannot read: {err}"]) from None
    problems: list[str] = []
    config = _parse(doc if doc is not None else {}, base=os.path.dirname(path), problems=problems)
    if not problems and config.tls is not None:
        try:
            server_ssl_context(config)
        except (ssl.SSLError, OSError, ValueError) as err:
            problems.append(f"tls_server_config: cannot load the certificates: {err}")
    if problems:
        raise ConfigError(path, problems)
    return config


def _parse(doc: Any, *, base: str, problems: list[str]) -> WebConfig:
    if not isinstance(doc, dict):
        problems.append("the file must be a YAML mapping")
        return WebConfig()
    for key in doc:
        if key in UNSUPPORTED:
            problems.append(UNSUPPORTED[key])
        elif key not in TOP_KEYS:
            problems.append(f"unknown field {key!r}")
    http = _mapping(doc, "http_server_config", problems)
    for key in http:
        if key not in ("http2", "headers"):
            problems.append(f"http_server_config: unknown field {key!r}")
    http2 = http.get("http2", True)
    if not isinstance(http2, bool):
        problems.append("http_server_config.http2 must be true or false")
    return WebConfig(
        tls=_tls(_mapping(doc, "tls_server_config", problems), base=base, problems=problems),
        basic_auth_users=_users(_mapping(doc, "basic_auth_users", problems), problems),
        headers=_headers(_mapping(http, "headers", problems), problems),
        http2=http2 is not False,
    )


def _mapping(doc: dict[str, Any], key: str, problems: list[str]) -> dict[str, Any]:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{key} must be a mapping")
        return {}
    return value


def _users(users: dict[str, Any], problems: list[str]) -> dict[str, str]:
    for user, hashed in users.items():
        if not isinstance(hashed, str) or not BCRYPT_HASH.fullmatch(hashed):
            problems.append(f"basic_auth_users.{user}: not a bcrypt hash")
    return {str(u): h for u, h in users.items() if isinstance(h, str)}


def _headers(headers: dict[str, Any], problems: list[str]) -> dict[str, str]:
    for name, value in headers.items():
        allowed = HEADERS.get(name)
        if allowed is None:
            problems.append(f"http_server_config.headers: header {name!r} can not be configured")
        elif not isinstance(value, str):
            problems.append(f"http_server_config.headers.{name} must be a string")
        elif allowed and value not in allowed:
            problems.append(
                f"http_server_config.headers.{name}: expected one of {list(allowed)}, got {value!r}"
            )
    return {k: v for k, v in headers.items() if isinstance(v, str)}


def _tls(raw: dict[str, Any], *, base: str, problems: list[str]) -> TLSServerConfig | None:
    if not raw:
        return None
    start = len(problems)
    for key in raw:
        if key in UNSUPPORTED:
            problems.append(UNSUPPORTED[key])
        elif key not in TLS_KEYS:
            problems.append(f"tls_server_config: unknown field {key!r}")
    strings = {k: _string(raw, k, problems) for k in TLS_KEYS - {"prefer_server_cipher_suites"}}
    for key in ("cert_file", "key_file", "client_ca_file"):
        if strings[key]:
            strings[key] = os.path.join(base, str(strings[key]))
    _check_tls(strings, problems)
    if len(problems) > start:
        return None
    return TLSServerConfig(
        cert_file=strings["cert_file"],
        key_file=strings["key_file"],
        cert=strings["cert"],
        key=strings["key"],
        client_ca_file=strings["client_ca_file"],
        client_ca=strings["client_ca"],
        client_auth_type=strings["client_auth_type"] or "NoClientCert",
        min_version=strings["min_version"] or "TLS12",
        max_version=strings["max_version"] or "TLS13",
        prefer_server_cipher_suites=raw.get("prefer_server_cipher_suites") is not False,
    )


def _string(raw: dict[str, Any], key: str, problems: list[str]) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        problems.append(f"tls_server_config.{key} must be a string")
        return None
    return value


def _check_tls(tls: dict[str, str | None], problems: list[str]) -> None:
    if not (tls["cert_file"] or tls["cert"]):
        problems.append("tls_server_config: missing one of cert or cert_file")
    if not (tls["key_file"] or tls["key"]):
        problems.append("tls_server_config: missing one of key or key_file")
    auth = tls["client_auth_type"] or "NoClientCert"
    has_ca = bool(tls["client_ca_file"] or tls["client_ca"])
    if auth not in CLIENT_AUTH_TYPES:
        problems.append(f"tls_server_config.client_auth_type: invalid {auth!r}")
    elif auth == "NoClientCert" and has_ca:
        problems.append("tls_server_config: client CAs are configured without a client_auth_type")
    elif auth in NEEDS_CA and not has_ca:
        problems.append(f"tls_server_config: client_auth_type {auth} needs client_ca_file")
    low, high = tls["min_version"] or "TLS12", tls["max_version"] or "TLS13"
    for key, version in (("min_version", low), ("max_version", high)):
        if version not in TLS_VERSIONS:
            problems.append(f"tls_server_config.{key}: unknown TLS version {version!r}")
    if low in TLS_VERSIONS and high in TLS_VERSIONS and TLS_VERSIONS[low] > TLS_VERSIONS[high]:
        problems.append("tls_server_config: min_version is above max_version")


def server_ssl_context(config: WebConfig) -> ssl.SSLContext | None:
    """The server SSLContext of `config`, or None for plain HTTP (blocking: reads files)."""
    tls = config.tls
    if tls is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = TLS_VERSIONS[tls.min_version]
    ctx.maximum_version = TLS_VERSIONS[tls.max_version]
    if tls.prefer_server_cipher_suites:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    _load_server_cert(ctx, tls)
    if tls.client_ca_file or tls.client_ca:
        ctx.load_verify_locations(cafile=tls.client_ca_file, cadata=tls.client_ca)
        ctx.verify_mode = CLIENT_AUTH_TYPES[tls.client_auth_type]
    return ctx


def _load_server_cert(ctx: ssl.SSLContext, tls: TLSServerConfig) -> None:
    if tls.cert_file and tls.key_file:
        ctx.load_cert_chain(certfile=tls.cert_file, keyfile=tls.key_file)
        return
    # inline PEM (`cert`/`key`): ssl reads chains from files only
    cert = tls.cert or _read(tls.cert_file)
    key = tls.key or _read(tls.key_file)
    load_cert_chain_data(ctx, cert=cert, key=key)


def _read(path: str | None) -> str:
    if path is None:
        raise ValueError("missing certificate or key")
    with open(path, encoding="utf-8") as fh:
        return fh.read()
