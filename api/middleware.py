"""Request ids and the body size limit, as plain ASGI middleware.

``X-Request-ID`` comes in (when sane) or is generated, and goes out on every answer,
413 and 500 included; it lands in audit records (SPEC 2.7) and in our log lines.

The body limit is ours rather than ``FastAPI(max_body_size=...)``: that one sits outside
all user middleware and answers 413 itself, without the request id.
"""

from __future__ import annotations

import json
import logging
import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
# Only ids that are safe to store and log verbatim are kept; anything else is replaced.
_SANE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

log = logging.getLogger("dunning.api")


def accepted_request_id(value: str | None) -> str:
    if value is not None and _SANE.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accepted_request_id(Headers(scope=scope).get(HEADER))
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if started:
                raise
            log.exception("unexpected error (request %s)", request_id)
            await _send_json(send_with_id, 500,
                             {"detail": "internal error", "request_id": request_id})


class BodyTooLarge(HTTPException):
    """Raised from ``receive``: FastAPI re-raises HTTPExceptions met while reading a body,
    so the exception handlers answer 413 (not 400) for any route."""

    def __init__(self) -> None:
        super().__init__(413, detail="Content Too Large")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            # Refuse before reading a byte of it.
            await _send_json(send, 413, {"detail": "Content Too Large"})
            return
        received = 0

        async def counting_receive() -> Message:
            # Chunked bodies have no Content-Length: count the bytes as they arrive.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        await self.app(scope, counting_receive, send)


async def _send_json(send: Send, status: int, document: dict[str, str]) -> None:
    body = json.dumps(document).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
