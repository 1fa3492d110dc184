"""What a slow request was: its operation and the Kubernetes resource of its key. Pure.

etcd logs the request as gogoproto compact text: a range is `key:"/registry/pods/ns/x" range_end:…`,
a write is `header:<ID:… username:"…" > put:<key:"…" value_size:… >` or `… txn:<compare:<…> …>`,
and a read-only txn is its body `compare:<…> success:<request_range:<key:"…" …>> failure:<>`.
capnslog prints it Go-`%q`-quoted (`go_unquote` undoes that before anything here runs).

Operation (design §3): `range`; `txn` (including read-only txns that etcd 3.3/3.4 log under the
`read-only range ` prefix); the first field after the optional header for put, delete_range,
lease_grant, lease_revoke, lease_checkpoint, compaction, authenticate; `cluster` for membership
and version requests (3.5 `cluster_version_set`, `cluster_member_attr_set`, `downgrade_info_set`;
3.4 v2-style `Method:"PUT" Path:"/0/members/…"` or `Path:"/0/version"`); else `other`.

Resource (design §2): from the request's first key (a range's start key, a txn's first key);
`/registry/services/specs/…` → services, `/registry/services/endpoints/…` → endpoints,
`/registry/minions/…` → nodes, `/registry/<group>/<resource>/…` → resource when the group has a dot
or is a dotless API group, else `/registry/<resource>/…` → resource. Anything else, and any value
that is not a plain lowercase name of at most 63 characters, → `other`. No key at all → `other`.
"""

from __future__ import annotations

import functools
import re

from exporter.model import Operation

OTHER = "other"
_DOTLESS_GROUPS = frozenset({"apps", "batch", "autoscaling", "policy", "extensions"})
_SPECIAL = {"minions": "nodes"}
_SERVICES = {"specs": "services", "endpoints": "endpoints"}
_NAME = re.compile(r"[a-z0-9.-]{1,63}")
_KEY = re.compile(r'key:"((?:[^"\\]++|\\.)*+)"')
_FIELD = re.compile(r"([a-z_]+):")
_HEADER = re.compile(r'header:<(?:[^"<>]++|"(?:[^"\\]++|\\.)*+")*+> *')
_V2_CLUSTER = re.compile(r'Method:"[A-Z]+" Path:"/0/(?:members/|version")')
_READ_ONLY_TXN = ("compare:", "success:", "failure:")
_CLUSTER_FIELDS = frozenset(
    {"cluster_version_set", "cluster_member_attr_set", "downgrade_info_set"}
)
_FIELD_OPS = {
    "range": Operation.RANGE,
    "txn": Operation.TXN,
    "put": Operation.PUT,
    "delete_range": Operation.DELETE_RANGE,
    "lease_grant": Operation.LEASE_GRANT,
    "lease_revoke": Operation.LEASE_REVOKE,
    "lease_checkpoint": Operation.LEASE_CHECKPOINT,
    "compaction": Operation.COMPACTION,
    "authenticate": Operation.AUTHENTICATE,
}
_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
}
_GO_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.S)


def is_read_only(prefix: str) -> bool:
    """True for the `read-only range ` and `read-only txn ` prefixes."""
    return prefix.startswith("read-only")


def describe(prefix: str, request: str) -> tuple[Operation, str]:
    """(operation, resource) of a slow request from its log prefix and its request text; the
    header is read past once."""
    body = _after_header(request)
    return _operation(prefix, request, body), _resource(body)


def _operation(prefix: str, request: str, body: str) -> Operation:
    if is_read_only(prefix):
        if request.startswith(_READ_ONLY_TXN) or prefix.startswith("read-only txn"):
            return Operation.TXN
        return Operation.RANGE
    m = _FIELD.match(body)
    if m is None:
        return Operation.CLUSTER if _V2_CLUSTER.search(request) else Operation.OTHER
    field = m.group(1)
    if field in _CLUSTER_FIELDS:
        return Operation.CLUSTER
    if field == "v2":
        return Operation.CLUSTER if _V2_CLUSTER.search(request) else Operation.OTHER
    return _FIELD_OPS.get(field, Operation.OTHER)


def _resource(body: str) -> str:
    m = _KEY.search(body)
    if m is None:
        return OTHER
    return resource_of_key(m.group(1))


@functools.lru_cache(maxsize=4096)
def resource_of_key(key: str) -> str:
    """`/registry/deployments/ns/x` → `deployments`; see the module docstring for the rules.
    Memoised in bounded memory: the same keys come back in a log."""
    if not key.startswith("/registry/"):
        return OTHER
    parts = key[10:].split("/", 2)
    first = parts[0]
    second = parts[1] if len(parts) > 1 else ""
    if first == "services" and second in _SERVICES:
        name = _SERVICES[second]
    elif first in _SPECIAL:
        name = _SPECIAL[first]
    elif "." in first or first in _DOTLESS_GROUPS:
        name = second
    else:
        name = first
    return name if _is_name(name) else OTHER


@functools.lru_cache(maxsize=1024)
def _is_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def go_unquote(text: str) -> str:
    """Undo Go's `%q` escaping of the inside of a quoted string (no surrounding quotes)."""
    if "\\" not in text:
        return text
    return _GO_ESCAPE.sub(_unescape, text)


def _unescape(m: re.Match[str]) -> str:
    esc = m.group(0)[1:]
    if len(esc) == 1:
        return _ESCAPES.get(esc, esc)
    if esc[0] in "xuU":
        code = int(esc[1:], 16)
        # \x is a byte in Go; a lone byte ≥ 0x80 is not text, so it stays a replacement char.
        if (esc[0] == "x" and code >= 0x80) or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return "\ufffd"
        return chr(code)
    code = int(esc, 8)
    return chr(code) if code < 0x80 else "\ufffd"


def _after_header(request: str) -> str:
    """The request text after a leading `header:<…> ` (its quoted username may hold `>`)."""
    m = _HEADER.match(request)
    return request if m is None else request[m.end() :]
