"""Who is calling: operator or public (widget) keys, the client's address, the customer's signed
identity, and the limits that apply to each."""

import asyncio
import hashlib
import hmac
import ipaddress
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum

import jwt
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.core.config import Settings
from shared.core.errors import AppError, Unauthorized


class Role(StrEnum):
    OPERATOR = "operator"  # API_KEYS: everything
    PUBLIC = "public"  # PUBLIC_KEYS: a widget in a web page — its own conversations only


@dataclass(frozen=True)
class Principal:
    role: Role
    key_id: str  # a hash of the key, never the key ("local" when no keys are configured)
    client: str  # the client's address (an IPv6 client's /64)

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    @property
    def identity(self) -> str:
        """Whom limits count against: the key and the address together."""
        return f"{self.key_id}:{self.client}"


class Keys:
    """The configured keys, compared in constant time (timing tells nothing about any key)."""

    def __init__(self, settings: Settings) -> None:
        self.operator = [key.encode() for key in settings.api_key_list]
        self.public = [key.encode() for key in settings.public_key_list]

    @property
    def configured(self) -> bool:
        return bool(self.operator or self.public)

    def role_of(self, token: str | None) -> Role | None:
        if not self.configured:
            return Role.OPERATOR  # local development: no keys, loopback only
        if token is None:
            return None
        offered = token.encode()
        if any([hmac.compare_digest(offered, key) for key in self.operator]):
            return Role.OPERATOR
        if any([hmac.compare_digest(offered, key) for key in self.public]):
            return Role.PUBLIC
        return None


def key_id(token: str | None) -> str:
    return "key:" + hashlib.sha256(token.encode()).hexdigest()[:16] if token else "local"


def client_address(
    peer: str | None,
    forwarded_for: str | None,
    trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> str:
    """The client's address: the peer's, or — when the peer is a trusted proxy — the nearest
    untrusted address it forwarded. IPv6 addresses are grouped by their /64 (one customer's
    network hands out many)."""
    address = peer or "unknown"
    if forwarded_for and _trusted(address, trusted):
        for hop in reversed([part.strip() for part in forwarded_for.split(",") if part.strip()]):
            address = hop
            if not _trusted(hop, trusted):
                break
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _trusted(address: str, trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def decode_identity(token: str, *, secret: str) -> str:
    """The customer id (`sub`) of a signed identity token (HS256, with `exp`); 401 otherwise."""
    if not secret:
        raise Unauthorized("identity tokens are not enabled (IDENTITY_SECRET is not set)")
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("the identity token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("the identity token is not valid") from exc
    return str(claims["sub"])


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class RateLimiter:
    """Requests per minute per client and scope, counted in Redis so every API process shares it;
    when Redis is unreachable nobody is limited (answering matters more)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def retry_after(self, identity: str, *, scope: str, limit: int) -> int | None:
        """Seconds until the client may try again when it is over `limit`, else None."""
        if not limit:
            return None
        now = time.time()
        key = f"support-assistant:rate:{scope}:{identity}:{int(now // 60)}"
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.incr(key)
            pipe.expire(key, 61)
            count, _ = await pipe.execute()
        except (RedisError, OSError):
            return None
        return max(1, int(60 - now % 60)) if int(count) > limit else None

    async def check(self, identity: str, *, scope: str, limit: int) -> None:
        if (retry := await self.retry_after(identity, scope=scope, limit=limit)) is not None:
            raise RateLimited(
                f"more than {limit} {scope} a minute; retry in {retry} s", retry_after=retry
            )


class StreamSlots:
    """Open event streams and long polls, capped per client and in total in this process: each
    holds a connection (and a Redis read) for as long as it lasts."""

    def __init__(self, *, per_client: int, total: int, retry_after: int) -> None:
        self.per_client = per_client
        self.total = total
        self.retry_after = retry_after
        self._open: Counter[str] = Counter()
        self._lock = asyncio.Lock()

    async def acquire(self, identity: str) -> None:
        """Take a slot, or `RateLimited` (429) when the client or the process has none left."""
        async with self._lock:
            if self._open[identity] >= self.per_client or sum(self._open.values()) >= self.total:
                raise RateLimited(
                    "too many open streams and long polls; retry later",
                    retry_after=self.retry_after,
                )
            self._open[identity] += 1

    async def release(self, identity: str) -> None:
        async with self._lock:
            self._open[identity] -= 1
            if self._open[identity] <= 0:
                del self._open[identity]

    @asynccontextmanager
    async def hold(self, identity: str) -> AsyncIterator[None]:
        await self.acquire(identity)
        try:
            yield
        finally:
            await self.release(identity)
