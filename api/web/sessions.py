"""The console's signed-in sessions: an operator's key is exchanged for a random session id in an
HttpOnly, SameSite=Strict cookie; the key itself is never stored. Each session has a CSRF token
that every state-changing request must echo (`X-CSRF-Token`, or a form's `csrf` field)."""

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass

from redis.asyncio import Redis

from api.security import Keys, key_id
from shared.core.config import Settings

SESSION_COOKIE = "sa_console"
CSRF_COOKIE = "sa_csrf"  # the sign-in form's double-submit token (before there is a session)
CSRF_HEADER = "x-csrf-token"
SESSION_SECONDS = 8 * 3600
_PREFIX = "support-assistant:console-session:"


@dataclass(frozen=True)
class ConsoleSession:
    key_id: str  # which operator key signed in (a hash of it)
    csrf: str

    def csrf_matches(self, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(self.csrf, offered)


def _key(session_id: str) -> str:
    # Stored under a hash: reading Redis does not give anyone a usable cookie.
    return _PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


class ConsoleSessions:
    """Sessions kept in Redis. A session counts only while the operator key it signed in with is
    configured (`key_ids`): removing or rotating a key ends its sessions."""

    def __init__(self, redis: Redis, *, key_ids: set[str]) -> None:
        self.redis = redis
        self.key_ids = key_ids

    async def create(self, key_id: str) -> tuple[str, ConsoleSession]:
        session_id = secrets.token_urlsafe(32)
        session = ConsoleSession(key_id=key_id, csrf=secrets.token_urlsafe(32))
        await self.redis.set(_key(session_id), json.dumps(asdict(session)), ex=SESSION_SECONDS)
        return session_id, session

    async def get(self, session_id: str | None) -> ConsoleSession | None:
        if not session_id or len(session_id) > 100:
            return None
        raw = await self.redis.get(_key(session_id))
        if raw is None:
            return None
        session = ConsoleSession(**json.loads(raw))
        return session if session.key_id in self.key_ids else None

    async def end(self, session_id: str | None) -> None:
        if session_id:
            await self.redis.delete(_key(session_id))


def console_key_ids(settings: Settings) -> set[str]:
    """The ids of the keys a console session may stand for ("local" when no keys are set)."""
    keys = Keys(settings)
    return {key_id(key) for key in settings.api_key_list} if keys.configured else {"local"}


def cookie_value(headers: list[tuple[bytes, bytes]], name: str) -> str | None:
    for header, value in headers:
        if header == b"cookie":
            for part in value.decode("latin-1").split(";"):
                cookie, _, content = part.strip().partition("=")
                if cookie == name:
                    return content
    return None
