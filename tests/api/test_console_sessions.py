"""A console session stands for its operator key only while that key is configured."""

import asyncio

from fakeredis import FakeAsyncRedis

from api.web.sessions import ConsoleSessions, console_key_ids
from shared.core.config import Settings


def test_removing_a_key_ends_its_sessions() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        redis = FakeAsyncRedis()
        before = Settings(_env_file=None, api_keys="old-key,other-key")  # type: ignore[call-arg]
        after = Settings(_env_file=None, api_keys="other-key")  # type: ignore[call-arg]
        (old_id,) = console_key_ids(before) - console_key_ids(after)
        session_id, _ = await ConsoleSessions(redis, key_ids=console_key_ids(before)).create(old_id)
        kept = await ConsoleSessions(redis, key_ids=console_key_ids(before)).get(session_id)
        ended = await ConsoleSessions(redis, key_ids=console_key_ids(after)).get(session_id)
        unknown = await ConsoleSessions(redis, key_ids=console_key_ids(before)).get("nope")
        return kept is not None, ended is None, unknown is None

    assert asyncio.run(scenario()) == (True, True, True)


def test_without_keys_only_local_sessions_count() -> None:
    assert console_key_ids(Settings(_env_file=None)) == {"local"}  # type: ignore[call-arg]
