"""Hostile and broken input: each gets a clear 4xx and nothing broken is stored."""

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration
ASK = "/api/v1/ask"


def _total(client: TestClient) -> int:
    return int(client.get("/api/v1/history").json()["total"])


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"question": "refund?"', "application/json"),  # truncated JSON
        (b"question=refund+policy", "application/x-www-form-urlencoded"),
        (b"What is your refund policy?", "text/plain"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b"[]", "application/json"),
        (b'{"question": ["a", "list"]}', "application/json"),
        (b'{"question": 12345}', "application/json"),
        (b'{"question": null}', "application/json"),
    ],
)
def test_malformed_bodies_are_422(client: TestClient, content: bytes, content_type: str) -> None:
    before = _total(client)
    response = client.post(ASK, content=content, headers={"Content-Type": content_type})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert _total(client) == before


@pytest.mark.parametrize(
    "question",
    [
        "¿Puedo devolver un artículo después de tres semanas?",
        "Rückgabe nach 3 Wochen möglich? 🙂",
        "<script>alert('x')</script> refund?",
        "'; DROP TABLE questions; -- refund?",
        "q" * 2000,
    ],
)
def test_unusual_but_valid_questions_are_stored_intact(client: TestClient, question: str) -> None:
    response = client.post(ASK, json={"question": question})
    assert response.status_code == 200, response.text
    record = client.get(f"/api/v1/questions/{response.json()['question_id']}").json()
    assert record["question"] == question
    assert record["status"] == "completed"


@pytest.mark.parametrize(
    "search",
    ["5%", "a_b", "%%%", "' OR 1=1 --", '"; DELETE FROM questions; --', "<img src=x>", "日本"],
)
def test_hostile_history_searches_are_plain_text(client: TestClient, search: str) -> None:
    total = _total(client)
    response = client.get("/api/v1/history", params={"search": search})
    assert response.status_code == 200
    for entry in response.json()["entries"]:
        assert search.lower() in entry["question"].lower()
    assert _total(client) == total


@pytest.mark.parametrize("question", ["refund\x00policy?", "refund\x07policy", "\x1b[31mred?"])
def test_control_characters_are_refused(client: TestClient, question: str) -> None:
    before = _total(client)
    response = client.post(ASK, json={"question": question})
    assert response.status_code == 422
    assert _total(client) == before


def test_bad_idempotency_key_is_422(client: TestClient) -> None:
    response = client.post(
        ASK, json={"question": "Refund?"}, headers={"Idempotency-Key": "x" * 129}
    )
    assert response.status_code == 422


def test_wrong_method_is_a_json_405(client: TestClient) -> None:
    response = client.delete("/api/v1/history")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
