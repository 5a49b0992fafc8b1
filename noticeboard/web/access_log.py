"""An access log that never writes signed links.

uvicorn's own access log prints each request's full path, and the newsletter's confirm,
preferences and unsubscribe paths carry signed tokens: anyone who reads such a log could manage
or end that subscription. This middleware logs method, path with tokens masked, status and
duration instead; `noticeboard serve` turns uvicorn's access log off.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

logger = logging.getLogger(__name__)

TOKEN_PATH = re.compile(r"^(/newsletter/(?:confirm|preferences|unsubscribe))/[^/]+")

Scope = dict[str, Any]


def mask_path(path: str) -> str:
    """Return `path` with any signed token replaced by `***`."""
    return TOKEN_PATH.sub(r"\1/***", path)


class AccessLogMiddleware:
    """ASGI middleware that logs one line per HTTP request, without tokens or query strings."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        status = 500

        async def send_with_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            logger.info(
                "request method=%s path=%s status=%d ms=%.1f",
                scope.get("method", "-"),
                mask_path(scope.get("path", "")),
                status,
                (time.perf_counter() - started) * 1000,
            )
