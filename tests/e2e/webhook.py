"""An Alertmanager webhook receiver inside the test: records every notification it is sent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

Alert = dict[str, Any]


class WebhookReceiver:
    """aiohttp server on 127.0.0.1 (free port) that stores Alertmanager's webhook payloads."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self._received = asyncio.Condition()
        self.url = ""

    async def start(self) -> str:
        """Serve POST /alerts; returns the URL to give Alertmanager."""
        app = web.Application()
        app.router.add_post("/alerts", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/alerts"
        return self.url

    async def stop(self) -> None:
        """Close the server."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def alerts(self) -> list[Alert]:
        """Every alert of every notification received so far."""
        return [alert for payload in self.payloads for alert in payload.get("alerts", [])]

    async def wait_for(self, predicate: Callable[[list[Alert]], bool]) -> None:
        """Wait until `predicate(alerts())` holds (bound it with asyncio.timeout)."""
        async with self._received:
            await self._received.wait_for(lambda: predicate(self.alerts()))

    async def _receive(self, request: web.Request) -> web.Response:
        payload = await request.json()
        async with self._received:
            self.payloads.append(payload)
            self._received.notify_all()
        return web.Response(text="ok")
