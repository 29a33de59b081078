"""AnswerWaiter over fakeredis: a completion wakes exactly the requests waiting on it."""

import asyncio
from dataclasses import dataclass

import fakeredis
import pytest

from api.waiter import AnswerWaiter
from shared.core.events import QUESTION_EVENTS_CHANNEL, QuestionEvent, publish_question_event
from shared.questions.models import QuestionStatus


@dataclass
class Row:
    status: QuestionStatus


class FakeTable:
    """Stands in for the database row the waiter re-reads; counts the reads."""

    def __init__(self) -> None:
        self.status = QuestionStatus.QUEUED
        self.reads = 0

    async def load(self) -> Row:
        self.reads += 1
        return Row(self.status)


async def _listening() -> tuple[AnswerWaiter, fakeredis.FakeRedis]:
    server = fakeredis.FakeServer()
    events = AnswerWaiter(fakeredis.aioredis.FakeRedis(server=server))
    await events.start()
    assert events.subscribed.is_set()
    return events, fakeredis.FakeRedis(server=server)


def test_completion_event_wakes_the_waiter_before_its_timeout() -> None:
    async def scenario() -> None:
        events, publisher = await _listening()
        table = FakeTable()

        async def finish_soon() -> None:
            await asyncio.sleep(0.2)
            table.status = QuestionStatus.COMPLETED
            publish_question_event(publisher, QuestionEvent("q1", "completed"))

        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.create_task(finish_soon())
        row = await events.wait_for("q1", timeout=10, load=table.load)  # type: ignore[arg-type]
        await task
        assert row.status is QuestionStatus.COMPLETED
        assert loop.time() - started < 5
        assert table.reads == 2  # once before waiting, once after the wake-up: no polling
        await events.stop()

    asyncio.run(scenario())


def test_running_event_and_other_questions_do_not_end_the_wait() -> None:
    async def scenario() -> None:
        events, publisher = await _listening()
        table = FakeTable()

        async def noise() -> None:
            await asyncio.sleep(0.1)
            publish_question_event(publisher, QuestionEvent("q1", "running"))
            publish_question_event(publisher, QuestionEvent("other", "completed"))

        task = asyncio.create_task(noise())
        row = await events.wait_for("q1", timeout=0.6, load=table.load)  # type: ignore[arg-type]
        await task
        assert row.status is QuestionStatus.QUEUED
        assert table.reads == 2  # before waiting and at the deadline, never woken in between
        await events.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize("status", [QuestionStatus.COMPLETED, QuestionStatus.FAILED])
def test_terminal_row_returns_at_once(status: QuestionStatus) -> None:
    async def scenario() -> None:
        events, _ = await _listening()
        table = FakeTable()
        table.status = status
        row = await events.wait_for("q1", timeout=30, load=table.load)  # type: ignore[arg-type]
        assert row.status is status
        await events.stop()

    asyncio.run(scenario())


def test_a_completion_announces_the_words_its_answer_was_cached_under() -> None:
    async def scenario() -> None:
        server = fakeredis.FakeServer()
        learned: list[str] = []
        events = AnswerWaiter(fakeredis.aioredis.FakeRedis(server=server), on_cached=learned.append)
        await events.start()
        publisher = fakeredis.FakeRedis(server=server)
        table = FakeTable()

        async def finish_soon() -> None:
            await asyncio.sleep(0.1)
            publish_question_event(publisher, QuestionEvent("q0", "completed"))  # not cached
            table.status = QuestionStatus.COMPLETED
            cached = QuestionEvent("q1", "completed", cached="do you ship abroad")
            publish_question_event(publisher, cached)

        task = asyncio.create_task(finish_soon())
        await events.wait_for("q1", timeout=10, load=table.load)  # type: ignore[arg-type]
        await task
        assert learned == ["do you ship abroad"]  # only the words of an answer cached
        await events.stop()

    asyncio.run(scenario())


def test_a_malformed_event_is_skipped_and_the_waiter_keeps_listening() -> None:
    async def scenario() -> None:
        events, publisher = await _listening()
        table = FakeTable()

        async def noise_then_finish() -> None:
            await asyncio.sleep(0.1)
            for junk in ("[1, 2]", "not json", '"a string"', '{"status": "completed"}'):
                publisher.publish(QUESTION_EVENTS_CHANNEL, junk)
            table.status = QuestionStatus.COMPLETED
            publish_question_event(publisher, QuestionEvent("q1", "completed"))

        task = asyncio.create_task(noise_then_finish())
        row = await events.wait_for("q1", timeout=10, load=table.load)  # type: ignore[arg-type]
        await task
        assert row.status is QuestionStatus.COMPLETED and table.reads == 2  # woken, not timed out
        await events.stop()

    asyncio.run(scenario())


def test_a_question_event_round_trips_with_and_without_cached_words() -> None:
    for event in (QuestionEvent("q1", "completed"), QuestionEvent("q1", "completed", cached="hi")):
        assert QuestionEvent.decode(event.encode()) == event
    assert "cached" not in QuestionEvent("q1", "running").encode()  # as before for old readers
