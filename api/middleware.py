"""Guards in front of every route: body size, API keys, rate limits (pure ASGI middleware)."""

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from api.security import Keys, Principal, RateLimiter, Role, client_address, key_id
from api.web.sessions import CSRF_HEADER, SESSION_COOKIE, ConsoleSessions, cookie_value
from shared.core.config import Settings
from shared.core.logs import request_id_var

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContext:
    """Takes `X-Request-ID` from the client (or makes one), returns it, and puts it on every log
    line of the request, and on the task it queues."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex
        token = request_id_var.set(request_id)

        started, status = time.perf_counter(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]  # fmt: skip
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logger.info(
                "%s %s -> %d in %.0f ms", scope["method"], scope["path"], status,
                (time.perf_counter() - started) * 1000,
            )  # fmt: skip
            request_id_var.reset(token)


async def send_error(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """413 for a request body over `max_bytes`, announced or not: the (small) body is read
    first, then handed to the app."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; let the app see it
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        await send_error(
            send, 413, "body_too_large", f"request bodies are limited to {self.max_bytes} bytes"
        )


SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            header: str = value.decode("latin-1")
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


class AccessControl:
    """Who is calling (an operator's key, a widget's public key, or anyone when no keys are
    configured), from which address, within the per-client rate limit shared through Redis. The
    principal is left in the request's state for the routes."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        limiter: Callable[[], RateLimiter],
        open_paths: set[str],
        console_sessions: Callable[[], ConsoleSessions],
    ) -> None:
        self.app = app
        self.open_paths = open_paths  # liveness probes and the browser pages never need a key
        self.console_sessions = console_sessions
        self.keys = Keys(settings)
        self.trusted = settings.trusted_proxy_networks
        self.limit = settings.rate_limit_per_minute
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        role = self.keys.role_of(token)
        identity = key_id(token if self.keys.configured else None)
        if token is None and (session_id := cookie_value(scope["headers"], SESSION_COOKIE)):
            # The console: a signed-in operator's session cookie stands for their key; whatever
            # changes something must also carry the session's CSRF token.
            session = await self.console_sessions().get(session_id)
            if session is not None:
                if scope["method"] not in SAFE_METHODS and not session.csrf_matches(
                    _header(scope, CSRF_HEADER.encode())
                ):
                    await send_error(
                        send, 403, "csrf_failed", "the console's CSRF token is missing or wrong"
                    )
                    return
                role, identity = Role.OPERATOR, session.key_id
        if role is None:
            await send_error(
                send, 401, "unauthorized", "a valid API key is needed: Authorization: Bearer <key>",
                {"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
            return
        peer = scope.get("client")
        forwarded = _header(scope, b"x-forwarded-for")
        principal = Principal(
            role=role,
            key_id=identity,
            client=client_address(peer[0] if peer else None, forwarded, self.trusted),
        )
        scope.setdefault("state", {})["principal"] = principal
        retry_after = await self.limiter().retry_after(
            principal.identity, scope="requests", limit=self.limit
        )
        if retry_after is not None:
            await send_error(
                send, 429, "rate_limited",
                f"more than {self.limit} requests a minute; retry in {retry_after} s",
                {"Retry-After": str(retry_after)},
            )  # fmt: skip
            return
        await self.app(scope, receive, send)
