"""HTTP basic auth with bcrypt hashes, as exporter-toolkit does it, for every path.

bcrypt costs about 60 ms of CPU per check, so it runs in a thread, one at a time, and results are
cached by (user, hash, password digest) so that a Prometheus scraping every 15 s pays it once.
An unknown user is checked against a fixed hash so that timing does not reveal which users exist.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import Mapping

import bcrypt
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

# bcrypt (cost 10) of a random string nobody knows: the stand-in hash for unknown users.
UNKNOWN_USER_HASH = "$2b$10$N/zZHgjCOzauxvvSnYBFNOw5G/3De6PFHQ2UYuRRSX.Ui4RXUilUG"
CACHE_SIZE = 1024


class BasicAuthChecker:
    """Checks credentials against bcrypt hashes; successes and failures are cached."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = dict(users)
        self._cache: dict[str, bool] = {}
        self._lock = asyncio.Lock()

    async def check(self, user: str, password: str) -> bool:
        """True when `user` exists and `password` matches its hash."""
        hashed = self._users.get(user)
        known = hashed is not None
        hashed = hashed or UNKNOWN_USER_HASH
        key = hashlib.sha256("\0".join((user, hashed, password)).encode()).hexdigest()
        ok = self._cache.get(key)
        if ok is None:
            async with self._lock:
                ok = await asyncio.to_thread(_bcrypt_ok, password, hashed)
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = ok
        return ok and known


def _bcrypt_ok(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:
        return False


def decode_basic_auth(header: str) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic …` header, or None."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def basic_auth_middleware(users: Mapping[str, str]) -> Middleware:
    """A middleware answering 401 with `WWW-Authenticate: Basic` unless credentials match."""
    checker = BasicAuthChecker(users)

    @web.middleware
    async def basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        creds = decode_basic_auth(request.headers.get(hdrs.AUTHORIZATION, ""))
        if creds is not None and await checker.check(*creds):
            return await handler(request)
        raise web.HTTPUnauthorized(headers={hdrs.WWW_AUTHENTICATE: "Basic"})

    return basic_auth
