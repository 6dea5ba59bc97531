"""Request ids, the body-size limit and an access log that never records query strings."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carevault.web.outcome import outcome

access_log = logging.getLogger("carevault.access")
_ids = random.Random()  # noqa: S311 (request ids are for correlation, not secrecy)


OnRefused = Callable[[Scope, int, str, str], Awaitable[None]]
"""Called with (scope, status, reason, request_id) for a request refused here, to audit it."""


class _TooLarge(Exception):
    pass


class RequestMiddleware:
    """Pure ASGI, so it adds no per-request task and sees the raw body stream."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, on_refused: OnRefused | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Ids need to be unique, not secret: no system call per request.
        request_id = f"{_ids.getrandbits(96):024x}"
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = {"code": 500}
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, receive, send, request_id)
            self._log(scope, 413, started, request_id)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _TooLarge
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = 1
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _TooLarge:
            await self._too_large(scope, receive, send, request_id)
            status["code"] = 413
        except Exception:
            # Answer here rather than in Starlette's outer handler, so the 500 carries
            # its request id (which its audit entry names) and reaches the access log.
            access_log.exception("unhandled error", extra={"request_id": request_id})
            if status["code"] == 500 and not status.get("started"):
                response = outcome(
                    500, "exception", f"internal error; quote request id {request_id}"
                )
                response.headers["x-request-id"] = request_id
                await response(scope, receive, send)
            status["code"] = 500
        self._log(scope, status["code"], started, request_id)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        reason = f"the body is larger than {self.max_body_bytes} bytes"
        if self.on_refused is not None:
            await self.on_refused(scope, 413, reason, request_id)
        response = outcome(413, "too-costly", reason)
        response.headers["x-request-id"] = request_id
        await response(scope, receive, send)

    @staticmethod
    def _log(scope: Scope, status: int, started: float, request_id: str) -> None:
        extra: dict[str, Any] = {
            "method": scope.get("method"),
            "path": scope.get("path"),  # never the query string: it may hold identifiers
            "status": status,
            "ms": round((time.perf_counter() - started) * 1000, 2),
            "request_id": request_id,
        }
        access_log.info("request", extra=extra)
