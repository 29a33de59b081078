"""Celery's lines about the housekeeping tasks beat sends every few seconds stay out of the log."""

import logging
from collections.abc import Iterator

import pytest

from shared.core.queue import RECONCILE_TASK
from worker.celery_app import RoutineTaskFilter, _setup_logging


def _record(logger: str, level: int, message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(logger, level, __file__, 1, message, args, None)


@pytest.fixture
def root_level() -> Iterator[logging.Logger]:
    """The root logger, its level, handlers and the Celery loggers' filters as they were."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    filters = {name: list(logging.getLogger(name).filters) for name in RoutineTaskFilter.LOGGERS}
    yield root
    root.setLevel(level)
    root.handlers[:] = handlers
    for name, kept in filters.items():
        logging.getLogger(name).filters[:] = kept


def test_routine_runs_are_debug_and_everything_else_is_kept(root_level: logging.Logger) -> None:
    routine = RoutineTaskFilter()
    root_level.setLevel(logging.INFO)
    sent = _record(
        "celery.beat", logging.INFO, "Scheduler: Sending due task %s (%s)",
        "reconcile-questions", RECONCILE_TASK,
    )  # fmt: skip
    assert not routine.filter(sent) and sent.levelname == "DEBUG"
    succeeded = _record("celery.app.trace", logging.INFO, f"Task {RECONCILE_TASK}[1] succeeded")
    assert not routine.filter(succeeded)
    failed = _record("celery.app.trace", logging.ERROR, f"Task {RECONCILE_TASK}[1] raised")
    assert routine.filter(failed) and failed.levelname == "ERROR"
    answer = _record("celery.app.trace", logging.INFO, "Task questions.answer[2] succeeded")
    assert routine.filter(answer)
    root_level.setLevel(logging.DEBUG)  # LOG_LEVEL=debug shows them, as DEBUG
    again = _record("celery.worker.strategy", logging.INFO, f"Task {RECONCILE_TASK}[3] received")
    assert routine.filter(again) and again.levelname == "DEBUG"


def test_celery_loggers_get_the_filter_once(root_level: logging.Logger) -> None:
    _setup_logging()
    _setup_logging()  # Celery may send the signal again (beat, then the worker)
    for name in RoutineTaskFilter.LOGGERS:
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, RoutineTaskFilter) for f in filters) == 1
