"""The fault tests' own accounting, checked on logs with a known answer (runs in `make test`)."""

import json
from pathlib import Path

from tests.faults.harness import count_stored_answers, duplicates
from worker.tasks import STORED_MESSAGE


def _line(message: str, question_id: str | None) -> str:
    return json.dumps({"level": "INFO", "message": message, "question_id": question_id})


def test_a_question_stored_twice_counts_as_one_duplicate(tmp_path: Path) -> None:
    (tmp_path / "worker-0.log").write_text(
        "\n".join(
            [
                " -------------- celery@test v5.7.0",  # the banner is not JSON
                _line(STORED_MESSAGE, "q1"),
                _line(STORED_MESSAGE, "q2"),
                _line("question q3 failed: llm_unavailable", "q3"),
            ]
        )
    )
    (tmp_path / "worker-1.log").write_text(_line(STORED_MESSAGE, "q1") + "\n{broken json\n")
    stored = count_stored_answers(sorted(tmp_path.glob("worker-*.log")))
    assert stored == {"q1": 2, "q2": 1}
    assert duplicates(stored, ["q1", "q2", "q3"]) == 1
    assert duplicates(stored, ["q2", "q3"]) == 0
