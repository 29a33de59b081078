"""The reconciler in a real worker: lost tasks are queued again, hopeless questions fail."""

import time
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.main import create_app
from shared.cli.launcher import free_port
from shared.core.config import Settings
from shared.core.db import create_db_engine, create_session_factory, session_scope, utcnow
from shared.core.queue import RECONCILE_TASK
from shared.questions.models import Question, QuestionStatus
from shared.questions.service import create_question, get_question
from tests.conftest import Started, WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def reconciling(base_settings: Settings, module_started: Started) -> tuple[Settings, WorkerProcess]:
    settings = base_settings.model_copy(
        update={"celery_queue": f"rec-{uuid.uuid4().hex[:6]}", "reconcile_interval": 0.5,
                "max_attempts": 3}
    )  # fmt: skip
    return settings, module_started.worker(settings)


def _status(settings: Settings, question_id: str, *, until: set[QuestionStatus]) -> Question:
    sessions = create_session_factory(create_db_engine(settings.database_url))
    deadline = time.monotonic() + 30
    while True:
        with session_scope(sessions) as session:
            question = get_question(session=session, question_id=question_id)
        if question.status in until or time.monotonic() > deadline:
            return question
        time.sleep(0.2)


def _reconcile(worker: WorkerProcess) -> None:
    worker.producer.send_task(RECONCILE_TASK)


def test_question_accepted_while_the_broker_is_down_is_answered_later(
    reconciling: tuple[Settings, WorkerProcess],
) -> None:
    settings, worker = reconciling
    down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with TestClient(create_app(down)) as api:
        response = api.post("/api/v1/ask", json={"question": "How do I track my order?"})
    assert response.status_code == 202, response.text  # accepted: the row exists
    question_id = response.json()["question_id"]
    assert _status(settings, question_id, until=set(QuestionStatus)).enqueued_at is None
    _reconcile(worker)
    question = _status(settings, question_id, until={QuestionStatus.COMPLETED})
    assert question.status is QuestionStatus.COMPLETED
    assert question.enqueue_count == 2


def _left_running(settings: Settings, text: str, *, attempts: int) -> str:
    """A question its worker took, and then died on: its lease ran out."""
    sessions = create_session_factory(create_db_engine(settings.database_url))
    with session_scope(sessions) as session:
        question_id = create_question(session=session, text=text, context_method="hybrid").id
        now = utcnow()
        session.execute(
            update(Question)
            .where(Question.id == question_id)
            .values(
                status=QuestionStatus.RUNNING,
                started_at=now - timedelta(seconds=30),
                lease_owner="celery@gone:123",
                lease_expires_at=now - timedelta(seconds=1),
                attempts=attempts,
            )
        )
    return question_id


def test_running_question_whose_worker_died_is_answered_again(
    reconciling: tuple[Settings, WorkerProcess],
) -> None:
    settings, worker = reconciling
    question_id = _left_running(settings, "Can I pay with PayPal?", attempts=1)
    _reconcile(worker)
    question = _status(settings, question_id, until={QuestionStatus.COMPLETED})
    assert question.status is QuestionStatus.COMPLETED
    assert question.attempts == 2


def test_question_out_of_attempts_fails_with_gave_up(
    reconciling: tuple[Settings, WorkerProcess],
) -> None:
    settings, worker = reconciling
    question_id = _left_running(settings, "Is this hopeless?", attempts=3)
    _reconcile(worker)
    question = _status(settings, question_id, until={QuestionStatus.FAILED})
    assert question.status is QuestionStatus.FAILED
    assert question.error_code == "gave_up"
