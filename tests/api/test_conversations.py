"""Conversations over the API with a real Redis and a real worker: follow-ups, privacy, identity,
erasure, asking for a person, limits (SQLite and PostgreSQL)."""

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import jwt
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.main import create_app
from shared.conversations.models import Conversation, ConversationStatus, Message
from shared.core.config import Settings
from shared.core.db import create_db_engine, create_session_factory, session_scope, utcnow
from shared.core.events import EventType, conversation_stream_key, decode_event
from shared.core.queue import PURGE_TASK
from shared.questions.models import Question
from tests.api.test_events import StartApi, read_events
from tests.conftest import StartWorker, WorkerProcess

pytestmark = pytest.mark.integration
SHIPPING_ABROAD = "orders-and-shipping#do-you-ship-internationally"
OPERATOR, PUBLIC = "operator-key", "widget-key"
SECRET = "identity-secret-of-thirty-two-bytes!"


def _api(settings: Settings, **changes: object) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=changes)))


@pytest.fixture
def keyed(worker: WorkerProcess, base_settings: Settings) -> Iterator[TestClient]:
    """The API with operators' and widgets' keys and identity tokens configured."""
    with _api(
        base_settings,
        api_keys=OPERATOR,
        public_keys=PUBLIC,
        identity_secret=SECRET,
        rate_limit_per_minute=0,
    ) as api:
        yield api


def _as(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def _identity(customer: str, *, expires_in: float = 600, secret: str = SECRET) -> str:
    claims = {"sub": customer, "exp": int(time.time() + expires_in)}
    return jwt.encode(claims, secret, algorithm="HS256")


def _start(api: TestClient, key: str = PUBLIC, **headers: str) -> tuple[str, str]:
    created = api.post("/api/v1/conversations", headers=_as(key, **headers))
    assert created.status_code == 201, created.text
    body = created.json()
    return body["conversation_id"], body["token"]


def _say(
    api: TestClient, conversation: str, token: str, text: str, **params: object
) -> httpx.Response:
    return api.post(
        f"/api/v1/conversations/{conversation}/messages",
        json={"text": text},
        headers=_as(PUBLIC, **{"X-Conversation-Token": token}),
        params=params,
    )


def test_a_follow_up_is_understood_over_real_http(
    worker: WorkerProcess, base_settings: Settings, start_api: StartApi
) -> None:
    api = start_api(base_settings)
    base = f"{api.base}/api/v1"
    created = httpx.post(f"{base}/conversations", timeout=10).json()
    headers = {"X-Conversation-Token": created["token"]}
    url = f"{base}/conversations/{created['conversation_id']}/messages"
    first = httpx.post(
        url, json={"text": "Do you ship internationally?"}, headers=headers, timeout=40
    ).json()
    assert first["status"] == "completed" and first["sources"][0]["id"] == SHIPPING_ABROAD
    # Thanks is answered in kind: nothing looked up, no one's inbox, not the subject.
    thanks = httpx.post(url, json={"text": "thanks!"}, headers=headers, timeout=40).json()
    assert thanks["status"] == "completed" and thanks["action"] == "answer", thanks
    assert thanks["origin"] == "courtesy" and not thanks["sources"]
    assert thanks["answer"] == base_settings.thanks_message
    second = httpx.post(
        url, json={"text": "How long does it take?"}, headers=headers, timeout=40
    ).json()
    assert second["status"] == "completed", second
    assert second["sources"][0]["id"] == SHIPPING_ABROAD
    assert "internationally" in second["standalone_question"]
    assert "7-14" in second["answer"]
    view = httpx.get(
        f"{base}/conversations/{created['conversation_id']}", headers=headers, timeout=10
    ).json()
    assert view["status"] == "open"
    assert [m["role"] for m in view["messages"]] == ["customer", "assistant"] * 3
    assert view["messages"][3]["origin"] == "courtesy"
    assert view["messages"][5]["sources"][0]["id"] == SHIPPING_ABROAD


def test_ask_opens_a_conversation_to_follow_up_in(keyed: TestClient) -> None:
    asked = keyed.post(
        "/api/v1/ask", json={"question": "Do you ship internationally?"}, headers=_as(PUBLIC)
    )
    assert asked.status_code == 200, asked.text
    body = asked.json()
    assert body["conversation_id"] and body["conversation_token"]
    follow = _say(
        keyed, body["conversation_id"], body["conversation_token"], "And who pays the duties?"
    )
    assert follow.status_code == 200 and follow.json()["sources"][0]["id"] == SHIPPING_ABROAD


def test_a_public_key_reads_only_its_own_conversation(keyed: TestClient) -> None:
    mine, my_token = _start(keyed)
    theirs, their_token = _start(keyed)
    assert _say(keyed, theirs, their_token, "How do I track my order?").status_code == 200
    for path in (
        "/api/v1/history",
        "/api/v1/ready",
        "/api/v1/knowledge",
        "/metrics",
        f"/api/v1/questions/{uuid.uuid4()}",
    ):
        assert keyed.get(path, headers=_as(PUBLIC)).status_code == 403, path
    hidden = keyed.get(
        f"/api/v1/conversations/{theirs}", headers=_as(PUBLIC, **{"X-Conversation-Token": my_token})
    )
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "conversation_not_found"
    no_token = keyed.get(f"/api/v1/conversations/{theirs}", headers=_as(PUBLIC))
    assert no_token.status_code == 404
    writing = _say(keyed, theirs, my_token, "Let me in")
    assert writing.status_code == 404
    # The support team sees everything.
    assert keyed.get("/api/v1/history", headers=_as(OPERATOR)).status_code == 200
    seen = keyed.get(f"/api/v1/conversations/{theirs}", headers=_as(OPERATOR))
    assert seen.status_code == 200 and len(seen.json()["messages"]) == 2
    assert keyed.get(f"/api/v1/conversations/{mine}", headers=_as(OPERATOR)).status_code == 200


def test_a_signed_in_customer_finds_their_conversations_from_any_device(
    keyed: TestClient,
) -> None:
    customer = f"customer-{uuid.uuid4().hex[:8]}"
    identity = {"X-Identity-Token": _identity(customer)}
    conversation, _ = _start(keyed, **identity)
    listed = keyed.get("/api/v1/me/conversations", headers=_as(PUBLIC, **identity))
    assert [c["conversation_id"] for c in listed.json()["conversations"]] == [conversation]
    # Another device: no conversation token, only the identity.
    view = keyed.get(f"/api/v1/conversations/{conversation}", headers=_as(PUBLIC, **identity))
    assert view.status_code == 200
    stranger = {"X-Identity-Token": _identity("someone-else")}
    assert (
        keyed.get(
            f"/api/v1/conversations/{conversation}", headers=_as(PUBLIC, **stranger)
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    "token",
    [
        _identity("late", expires_in=-10),
        _identity("forged", secret="not-the-secret-but-as-long-as-it!"),
        "nonsense",
    ],
)
def test_an_expired_or_forged_identity_is_401(keyed: TestClient, token: str) -> None:
    response = keyed.get(
        "/api/v1/me/conversations", headers=_as(PUBLIC, **{"X-Identity-Token": token})
    )
    assert response.status_code == 401
    started = keyed.post(
        "/api/v1/conversations", headers=_as(PUBLIC, **{"X-Identity-Token": token})
    )
    assert started.status_code == 401


def test_the_token_is_kept_hashed(keyed: TestClient, base_settings: Settings) -> None:
    conversation, token = _start(keyed)
    sessions = create_session_factory(create_db_engine(base_settings.database_url))
    with session_scope(sessions) as session:
        stored = session.get(Conversation, conversation)
        assert (
            stored is not None and token not in stored.token_hash and len(stored.token_hash) == 64
        )


def test_deleting_leaves_nothing_in_the_database_or_redis(
    keyed: TestClient, base_settings: Settings
) -> None:
    conversation, token = _start(keyed)
    marker = uuid.uuid4().hex
    said = _say(keyed, conversation, token, f"What is your refund policy? Order {marker}")
    assert said.status_code == 200
    client = redis.Redis.from_url(base_settings.redis_url)
    assert client.exists(conversation_stream_key(conversation))
    erased = keyed.delete(
        f"/api/v1/conversations/{conversation}",
        headers=_as(PUBLIC, **{"X-Conversation-Token": token}),
    )
    assert erased.status_code == 204
    sessions = create_session_factory(create_db_engine(base_settings.database_url))
    with session_scope(sessions) as session:
        for model, column in (
            (Conversation, Conversation.id),
            (Message, Message.conversation_id),
            (Question, Question.conversation_id),
        ):
            assert (
                session.scalar(
                    select(func.count()).select_from(model).where(column == conversation)
                )
                == 0
            )
    assert not client.exists(conversation_stream_key(conversation))
    # Nothing else in Redis names it or holds its text.
    for key in client.scan_iter(count=1000):
        assert conversation.encode() not in key
        if client.type(key) == b"stream":
            assert marker not in str(client.xrange(key))
        elif client.type(key) == b"string":
            assert marker.encode() not in (client.get(key) or b"")
    client.close()
    assert (
        keyed.get(f"/api/v1/conversations/{conversation}", headers=_as(OPERATOR)).status_code == 404
    )


@pytest.mark.parametrize(
    "text", ["I want to talk to a real person", "agent please", "Can I speak to a human?"]
)
def test_asking_for_a_person_hands_off_without_the_model(
    keyed: TestClient, base_settings: Settings, text: str
) -> None:
    conversation, token = _start(keyed)
    reply = _say(keyed, conversation, token, text).json()
    assert reply["action"] == "handoff" and reply["origin"] == "handoff"
    assert reply["answer"] == base_settings.person_requested_message
    sessions = create_session_factory(create_db_engine(base_settings.database_url))
    with session_scope(sessions) as session:
        stored = session.get(Conversation, conversation)
        assert stored is not None
        assert stored.status is ConversationStatus.WAITING_FOR_AGENT
        assert stored.handoff_reason == "customer_request"
    # Whoever follows the conversation (the customer's widget, the support team) is told.
    client = redis.Redis.from_url(base_settings.redis_url)
    events = [
        decode_event(fields) for _, fields in client.xrange(conversation_stream_key(conversation))
    ]
    client.close()
    assert (
        EventType.STATUS,
        {"status": "waiting_for_agent", "reason": "customer_request"},
    ) in events


def test_the_event_stream_replays_the_conversation_then_follows_it(
    worker: WorkerProcess, base_settings: Settings, start_api: StartApi
) -> None:
    api = start_api(base_settings.model_copy(update={"sse_keepalive_seconds": 0.5}))
    base = f"{api.base}/api/v1"
    created = httpx.post(f"{base}/conversations", timeout=10).json()
    headers = {"X-Conversation-Token": created["token"]}
    url = f"{base}/conversations/{created['conversation_id']}"
    httpx.post(
        f"{url}/messages", json={"text": "Can I cancel my order?"}, headers=headers, timeout=40
    )
    seen: list[tuple[str, object]] = []
    posted = False
    with httpx.stream(
        "GET", f"{url}/events", params={"token": created["token"]}, timeout=30
    ) as response:
        assert response.status_code == 200
        for kind, data in read_events(response, until=set(), timeout=30):
            seen.append((kind, data))
            if kind == "comment" and not posted:
                posted = True
                httpx.post(
                    f"{url}/messages",
                    json={"text": "How do I track my order?"},
                    headers=headers,
                    params={"wait": 0},
                    timeout=10,
                )
            if kind == "turn" and data["status"] == "completed":  # type: ignore[index]
                break
    kinds = [kind for kind, _ in seen]
    # The late joiner first gets the two messages so far, then the new turn as it happens.
    assert kinds[:2] == ["message", "message"]
    later = [data for kind, data in seen[2:] if kind == "message"]
    assert [m["role"] for m in later] == ["customer", "assistant"]  # type: ignore[index]
    assert "token" in kinds


def test_posting_messages_has_its_own_rate_limit(
    worker: WorkerProcess, base_settings: Settings
) -> None:
    # Each database's run of this test counts against the same client in the same Redis.
    client = redis.Redis.from_url(base_settings.redis_url)
    client.delete(*client.keys("support-assistant:rate:*") or ["none"])
    client.close()
    with _api(base_settings, message_rate_limit_per_minute=2, rate_limit_per_minute=0) as api:
        conversation, token = _start(api)
        answers = [
            _say(api, conversation, token, f"Refund question {i}?", wait=0) for i in range(3)
        ]
    assert [a.status_code for a in answers[:2]] == [202, 202]
    assert answers[2].status_code == 429 and int(answers[2].headers["Retry-After"]) >= 1


def test_open_streams_are_capped_per_client(
    worker: WorkerProcess, base_settings: Settings, start_api: StartApi
) -> None:
    api = start_api(base_settings.model_copy(update={"max_streams_per_client": 1}))
    base = f"{api.base}/api/v1"
    created = httpx.post(f"{base}/conversations", timeout=10).json()
    events = f"{base}/conversations/{created['conversation_id']}/events"
    with httpx.stream("GET", events, params={"token": created["token"]}, timeout=10) as first:
        assert first.status_code == 200
        second = httpx.get(events, params={"token": created["token"]}, timeout=10)
        assert second.status_code == 429 and "Retry-After" in second.headers


def test_old_conversations_are_purged_on_schedule(
    keyed: TestClient, base_settings: Settings, start_worker: StartWorker
) -> None:
    retaining = base_settings.model_copy(
        update={"celery_queue": f"purge-{uuid.uuid4().hex[:6]}", "retention_days": 30}
    )
    worker = start_worker(retaining, concurrency=1)
    old, _ = _start(keyed)
    recent, _ = _start(keyed)
    sessions = create_session_factory(create_db_engine(base_settings.database_url))
    with session_scope(sessions) as session:
        stored = session.get(Conversation, old)
        assert stored is not None
        stored.updated_at = utcnow() - timedelta(days=40)
    worker.producer.send_task(PURGE_TASK, queue=retaining.celery_queue)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with session_scope(sessions) as session:
            if session.get(Conversation, old) is None:
                break
        time.sleep(0.2)
    with session_scope(sessions) as session:
        assert session.get(Conversation, old) is None
        assert session.get(Conversation, recent) is not None
