"""A pool process's report follows its model backend: broken while it is down, working again
once it answers, without restarting the worker."""

from unittest.mock import MagicMock

import fakeredis

from shared.llm.base import BackendStatus
from shared.system.workers import read_pool_reports
from worker.heartbeat import Heartbeat, new_report


def test_a_backend_down_at_start_is_reported_working_once_it_answers() -> None:
    client = fakeredis.FakeRedis()
    heartbeat = Heartbeat(
        report=new_report(worker="w1@host", queue="q", provider="ollama", model="mistral"),
        redis_client=lambda: client,
        interval=60,
        lease_seconds=30,
    )
    answers = [BackendStatus(ok=False, detail="still down"), BackendStatus(ok=True, detail="up")]
    heartbeat.ready(
        sessions=MagicMock(),
        provider="ollama",
        model="mistral",
        model_ok=False,
        model_detail="cannot reach Ollama",
        model_status=lambda: answers.pop(0),
    )
    (report,) = read_pool_reports(client, queue="q")
    assert not report.model_ok and report.model_detail == "cannot reach Ollama"
    assert len(answers) == 1  # asked again on the beat that published the report

    heartbeat._beat()
    (report,) = read_pool_reports(client, queue="q")
    assert report.model_ok and report.model_detail == "up"

    heartbeat._beat()  # working now: no further checks
    assert answers == []
