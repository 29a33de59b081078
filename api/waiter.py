"""Wake waiting requests when a worker finishes a question, and note the words of each answer
it caches (Redis pub/sub, one connection)."""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.core.events import QUESTION_EVENTS_CHANNEL, QuestionEvent
from shared.questions.models import TERMINAL_STATUSES, Question

logger = logging.getLogger(__name__)


class AnswerWaiter:
    """Listens on the events channel: wakes the requests waiting on a question, and passes on the
    words of each answer just cached (`on_cached`)."""

    def __init__(
        self,
        redis: Redis,
        *,
        reconnect_delay: float = 1.0,
        on_cached: Callable[[str], None] | None = None,
    ) -> None:
        """`on_cached` is told the words of each answer just cached, before its waiters wake: a
        client asking the same again at once is answered on arrival."""
        self.redis = redis
        self.reconnect_delay = reconnect_delay
        self.on_cached = on_cached
        self.subscribed = asyncio.Event()
        self._waiters: defaultdict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None

    async def start(self, *, timeout: float = 2.0) -> None:  # noqa: ASYNC109
        self._task = asyncio.create_task(self._listen(), name="question-events")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.subscribed.wait(), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_for(
        self,
        question_id: str,
        *,
        timeout: float,  # noqa: ASYNC109 - the deadline spans several awaits
        load: Callable[[], Awaitable[Question]],
    ) -> Question:
        """Return the question once it is terminal, or as it stands when `timeout` runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            future: asyncio.Future[None] = loop.create_future()
            self._waiters[question_id].add(future)
            try:
                # Registered before reading, so a completion between the read and the wait
                # still wakes us.
                question = await load()
                remaining = deadline - loop.time()
                if question.status.is_terminal or remaining <= 0:
                    return question
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(future, remaining)
            finally:
                self._discard(question_id, future)

    def _discard(self, question_id: str, future: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(question_id)
        if waiters is not None:
            waiters.discard(future)
            if not waiters:
                del self._waiters[question_id]

    def _wake(self, question_id: str | None = None) -> None:
        targets = (
            [f for fs in self._waiters.values() for f in fs]
            if question_id is None
            else list(self._waiters.get(question_id, ()))
        )
        for future in targets:
            if not future.done():
                future.set_result(None)

    def _learn(self, words: str) -> None:
        if self.on_cached is None:
            return
        try:
            self.on_cached(words)
        except Exception:  # only a hint: never stop waking the waiters for it
            logger.warning("could not note the cached words %r", words, exc_info=True)

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(QUESTION_EVENTS_CHANNEL)
                self.subscribed.set()
                # Events published while we were away are lost: let every waiter re-read its row.
                self._wake()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        event = QuestionEvent.decode(message["data"])
                    except (ValueError, KeyError):
                        logger.warning("ignoring malformed question event %r", message["data"])
                        continue
                    if event.cached is not None:
                        self._learn(event.cached)
                    if event.status in TERMINAL_STATUSES:
                        self._wake(event.question_id)
            except (RedisError, OSError) as exc:
                self.subscribed.clear()
                logger.warning("question events: lost Redis (%s); reconnecting", exc)
                await asyncio.sleep(self.reconnect_delay)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
