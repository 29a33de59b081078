"""Who is calling: keys, client addresses behind proxies, identity tokens, limits."""

import asyncio
import ipaddress
import time

import fakeredis
import jwt
import pytest

from api.security import (
    Keys,
    RateLimited,
    RateLimiter,
    Role,
    StreamSlots,
    client_address,
    decode_identity,
)
from shared.core.config import Settings
from shared.core.errors import Unauthorized

SECRET = "a-secret-long-enough-for-hs256-keys!"
PROXIES = [ipaddress.ip_network("10.0.0.0/8")]


def _settings(**values: str) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_operators_and_widgets_keys_have_their_roles() -> None:
    keys = Keys(_settings(api_keys="op-1, op-2", public_keys="widget"))
    assert keys.role_of("op-2") is Role.OPERATOR
    assert keys.role_of("widget") is Role.PUBLIC
    assert keys.role_of("op-") is None and keys.role_of(None) is None


def test_without_keys_every_caller_is_an_operator() -> None:
    keys = Keys(_settings())
    assert not keys.configured and keys.role_of(None) is Role.OPERATOR


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.7", None, "203.0.113.7"),
        # An untrusted peer cannot claim to be someone else.
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),
        # A trusted proxy: the nearest address it did not add itself.
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.9", "198.51.100.1"),
        # IPv6 clients count by their /64.
        ("2001:db8:1:2:aaaa::1", None, "2001:db8:1:2::/64"),
        ("10.0.0.2", "2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("10.0.0.2", "not-an-address", "not-an-address"),
    ],
)
def test_the_client_address(peer: str, forwarded: str | None, client: str) -> None:
    assert client_address(peer, forwarded, PROXIES) == client


def _token(claims: dict[str, object], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def test_a_signed_identity_names_its_customer() -> None:
    token = _token({"sub": "customer-42", "exp": int(time.time()) + 60})
    assert decode_identity(token, secret=SECRET) == "customer-42"


@pytest.mark.parametrize(
    "token",
    [
        _token({"sub": "c", "exp": int(time.time()) - 10}),  # expired
        _token({"sub": "c", "exp": int(time.time()) + 60}, "another-secret-of-enough-length!!"),
        _token({"sub": "c"}),  # never expires: refused
        _token({"exp": int(time.time()) + 60}),  # nobody
        jwt.encode({"sub": "c", "exp": int(time.time()) + 60}, None, algorithm="none"),
        "garbage",
    ],
)
def test_an_identity_that_is_not_valid_is_refused(token: str) -> None:
    with pytest.raises(Unauthorized):
        decode_identity(token, secret=SECRET)


def test_identity_tokens_need_a_secret() -> None:
    token = _token({"sub": "c", "exp": int(time.time()) + 60})
    with pytest.raises(Unauthorized):
        decode_identity(token, secret="")


def test_the_rate_limit_counts_per_client_and_scope() -> None:
    limiter = RateLimiter(fakeredis.FakeAsyncRedis())

    async def run() -> list[int | None]:
        return [
            await limiter.retry_after("a", scope="messages", limit=2),
            await limiter.retry_after("a", scope="messages", limit=2),
            await limiter.retry_after("b", scope="messages", limit=2),
            await limiter.retry_after("a", scope="requests", limit=2),
            await limiter.retry_after("a", scope="messages", limit=2),
        ]

    first, second, other_client, other_scope, third = asyncio.run(run())
    assert first is second is other_client is other_scope is None
    assert third is not None and 1 <= third <= 60


def test_the_rate_limit_lets_everyone_through_when_redis_is_down() -> None:
    class Down(fakeredis.FakeAsyncRedis):
        def pipeline(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def,override]
            raise ConnectionError("down")

    limiter = RateLimiter(Down())
    assert asyncio.run(limiter.retry_after("a", scope="messages", limit=0)) is None

    async def over() -> None:
        for _ in range(5):
            await limiter.check("a", scope="messages", limit=1)

    asyncio.run(over())


def test_stream_slots_are_capped_per_client_and_in_total() -> None:
    slots = StreamSlots(per_client=2, total=3, retry_after=5)

    async def run() -> None:
        await slots.acquire("a")
        await slots.acquire("a")
        with pytest.raises(RateLimited) as refused:
            await slots.acquire("a")
        assert refused.value.headers == {"Retry-After": "5"}
        await slots.acquire("b")
        with pytest.raises(RateLimited):
            await slots.acquire("c")  # the process is full
        await slots.release("a")
        async with slots.hold("c"):
            with pytest.raises(RateLimited):
                await slots.acquire("d")
        await slots.acquire("d")

    asyncio.run(run())


def test_a_short_identity_secret_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        _settings(identity_secret="too-short")
