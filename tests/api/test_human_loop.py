"""The human loop over real HTTP, tried as a new user would: a uvicorn API process, a real worker,
a real webhook receiver on loopback, a fresh database (SQLite and PostgreSQL) and a copy of the
default knowledge base.

An out-of-scope question hands off; the inbox holds it with its packet; the webhook receiver gets
one signed POST; an operator assigns and replies, and the customer's event stream has the reply
within a second; resolving drafts a suggestion; approving it (edited) changes the knowledge
version, and the next customer is answered from the new entry; ratings are stored; the analytics
of the period count exactly this, with the gap; a public key gets 403 on every operator route."""

import csv
import importlib
import io
import json
import pkgutil
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

import api.routes
from api.deps import require_operator
from shared.cli.launcher import free_port
from shared.core.config import ProviderName, Settings
from shared.core.db import utcnow
from shared.inbox.webhook import SIGNATURE_HEADER, verify
from tests.api.test_events import StartApi, read_events
from tests.conftest import BACKENDS, PROJECT_ROOT, StartWorker, fresh_database

pytestmark = pytest.mark.integration
OPERATOR, PUBLIC = "operator-key", "widget-key"
WEBHOOK_SECRET = "a-webhook-secret"
OUT_OF_SCOPE = "Do you sell car insurance?"
AGENT_REPLY = (
    "We don't sell car insurance, sorry: only the products in our shop. "
    "A comparison site will find you a policy."
)
EDITED_ANSWER = "No. We do not sell car insurance or any other insurance; only our shop's products."


class Receiver:
    """A webhook receiver on loopback that records every POST and answers with `statuses` in
    turn (204 once they are used up)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        received, answers = self.posts, list(statuses or [])

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((dict(self.headers.items()), body))
                self.send_response(answers.pop(0) if answers else 204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/support"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    """`@pytest.mark.receiver_answers(503, 204)` sets what it answers."""
    marker = request.node.get_closest_marker("receiver_answers")
    server = Receiver(list(marker.args) if marker else None)
    yield server
    server.close()


class EventLog:
    """The customer's event stream, read in a thread: (arrival time, event, data)."""

    def __init__(self, url: str, token: str) -> None:
        self.seen: list[tuple[float, str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url, token), daemon=True)
        self._thread.start()

    def _read(self, url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {PUBLIC}"}
        try:
            with httpx.stream(
                "GET", url, params={"token": token}, headers=headers, timeout=60
            ) as response:
                for kind, data in read_events(response, until=set(), timeout=120):
                    self.seen.append((time.monotonic(), kind, data))
                    if self._stop.is_set():
                        return
        except httpx.HTTPError:  # the API stopped at the end of the test
            return

    def first(self, role: str, timeout: float) -> tuple[float, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, kind, data in list(self.seen):
                if kind == "message" and data["role"] == role:
                    return at, data
            time.sleep(0.01)
        raise TimeoutError(f"no {role} message on the stream within {timeout} s")

    def stop(self) -> None:
        self._stop.set()


def _operator(**headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR}", **headers}


def _customer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {PUBLIC}", "X-Conversation-Token": token}


def _wait_for(check: Any, *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise TimeoutError(what)


@pytest.fixture(params=BACKENDS)
def loop_settings(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, receiver: Receiver
) -> Iterator[Settings]:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(PROJECT_ROOT / "knowledge", knowledge)
    with fresh_database(request.param, tmp_path) as url:
        yield Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=url,
            redis_url=redis_url,
            celery_queue=f"loop-{uuid.uuid4().hex[:6]}",
            llm_provider=ProviderName.EXTRACTIVE,
            knowledge_path=knowledge,
            worker_metrics_port=0,
            api_keys=OPERATOR,
            public_keys=PUBLIC,
            rate_limit_per_minute=0,
            message_rate_limit_per_minute=0,
            handoff_webhook_url=receiver.url,
            handoff_webhook_secret=WEBHOOK_SECRET,
            knowledge_check_interval=0.5,
            sse_keepalive_seconds=0.5,
        )


def test_the_human_loop_end_to_end(
    loop_settings: Settings, start_worker: StartWorker, start_api: StartApi, receiver: Receiver
) -> None:
    start_worker(loop_settings)
    api = start_api(loop_settings)
    http = httpx.Client(base_url=f"{api.base}/api/v1", timeout=60)
    began = utcnow() - timedelta(seconds=1)

    # A customer asks what the shop does not cover: the conversation goes to the team.
    created = http.post("/conversations", headers={"Authorization": f"Bearer {PUBLIC}"}).json()
    first, token = created["conversation_id"], created["token"]
    events = EventLog(f"{api.base}/api/v1/conversations/{first}/events", token)
    asked = http.post(
        f"/conversations/{first}/messages", json={"text": OUT_OF_SCOPE}, headers=_customer(token)
    ).json()
    assert asked["status"] == "completed" and asked["action"] == "handoff", asked

    # The inbox lists it, with the packet a person needs.
    inbox = http.get("/inbox", headers=_operator()).json()
    assert [item["conversation_id"] for item in inbox["conversations"]] == [first]
    item = inbox["conversations"][0]
    assert item["status"] == "waiting_for_agent" and item["waiting_seconds"] >= 0
    packet = item["handoff"]["packet"]
    assert packet["customer_message"] == OUT_OF_SCOPE
    assert packet["reason"] == "low_confidence"
    # The best entry ("Do you have physical stores? — We sell online only.") passes the confidence
    # curve, but names nothing of what is asked for: handed off rather than answered from it.
    assert packet["confidence"] is not None
    assert packet["fallback_reason"] == "unmentioned_subject"
    assert packet["sources"] and all("score" in source for source in packet["sources"])

    # The webhook receiver got exactly one POST, signed with the shared secret.
    _wait_for(lambda: receiver.posts, timeout=20, what="no webhook POST")
    time.sleep(0.5)  # nothing more arrives
    assert len(receiver.posts) == 1
    headers, body = receiver.posts[0]
    assert verify(body, WEBHOOK_SECRET, headers.get(SIGNATURE_HEADER))
    hook = json.loads(body)
    assert hook["event"] == "conversation.handoff" and hook["conversation_id"] == first
    assert hook["packet"]["customer_message"] == OUT_OF_SCOPE

    # An operator takes it; the customer's next message goes to them, not to the model.
    assigned = http.post(
        f"/conversations/{first}/assign", json={"agent": "dana"}, headers=_operator()
    ).json()
    assert assigned["status"] == "assigned" and assigned["assignee"] == "dana"
    waiting = http.post(
        f"/conversations/{first}/messages",
        json={"text": "Hello, anyone?"},
        headers=_customer(token),
    )
    # Accepted for a person to answer: no assistant reply is coming.
    assert waiting.status_code == 202 and waiting.json()["status"] == "with_agent"

    # The reply reaches the customer's event stream within a second.
    sent_at = time.monotonic()
    reply = http.post(
        f"/conversations/{first}/replies",
        json={"agent": "dana", "text": AGENT_REPLY},
        headers=_operator(),
    )
    assert reply.status_code == 201, reply.text
    arrived_at, streamed = events.first("agent", timeout=5)
    events.stop()
    assert arrived_at - sent_at < 1.0
    assert streamed["text"] == AGENT_REPLY and streamed["author"] == "dana"

    # Resolving drafts a suggestion, compared with the entries by a worker.
    resolved = http.post(f"/conversations/{first}/resolve", headers=_operator()).json()
    assert resolved["status"] == "resolved" and resolved["suggestion_id"]
    suggestion_id = resolved["suggestion_id"]

    def compared() -> dict[str, Any] | None:
        found = http.get("/knowledge/suggestions", headers=_operator()).json()["suggestions"]
        ready = [s for s in found if s["id"] == suggestion_id and s["similar"] is not None]
        return ready[0] if ready else None

    suggestion = _wait_for(compared, timeout=30, what="the suggestion was never compared")
    assert suggestion["question"] == OUT_OF_SCOPE and suggestion["answer"] == AGENT_REPLY
    assert len(suggestion["similar"]) == 3 and suggestion["duplicate_of"] is None

    # Approved with an edit: a new version, and the next customer gets it from the assistant.
    before = http.get("/knowledge", headers=_operator()).json()["version"]
    approved = http.post(
        f"/knowledge/suggestions/{suggestion_id}/approve",
        json={"answer": EDITED_ANSWER, "agent": "dana"},
        headers=_operator(),
    ).json()
    assert approved["version"] != before
    entry_id = approved["suggestion"]["entry_id"]
    assert entry_id.startswith("learned#")
    learned = (loop_settings.knowledge_path / "learned.md").read_text()
    assert f"Q: {OUT_OF_SCOPE}\nA: {EDITED_ANSWER}" in learned
    (change,) = http.get("/knowledge/changes", headers=_operator()).json()["changes"]
    assert change["actor"] == "dana" and change["action"] == "added"
    assert change["after"]["answer"] == EDITED_ANSWER and change["suggestion_id"] == suggestion_id

    second_created = http.post(
        "/conversations", headers={"Authorization": f"Bearer {PUBLIC}"}
    ).json()
    second, second_token = second_created["conversation_id"], second_created["token"]

    def answered_from_the_new_entry() -> dict[str, Any] | None:
        # The worker reloads within KNOWLEDGE_CHECK_INTERVAL of the approval.
        answer = http.post(
            f"/conversations/{second}/messages",
            json={"text": OUT_OF_SCOPE},
            headers=_customer(second_token),
        ).json()
        return answer if answer["action"] == "answer" else None

    time.sleep(loop_settings.knowledge_check_interval * 2)
    answer = answered_from_the_new_entry()
    assert answer is not None, "the next customer was not answered from the approved entry"
    assert answer["sources"][0]["id"] == entry_id
    assert "We do not sell car insurance" in answer["answer"]  # the entry's own statement

    # Thumbs: the customer rates the person's reply (changing their mind once) and the answer.
    agent_message = streamed["id"]
    for rating in ("down", "up"):
        rated = http.post(
            f"/conversations/{first}/messages/{agent_message}/feedback",
            json={"rating": rating, "comment": "thanks" if rating == "up" else None},
            headers=_customer(token),
        )
        assert rated.status_code == 200 and rated.json()["rating"] == rating
    rated = http.post(
        f"/conversations/{second}/messages/{answer['reply_id']}/feedback",
        json={"rating": "up"},
        headers=_customer(second_token),
    )
    assert rated.status_code == 200, rated.text
    team_view = http.get(f"/inbox/{first}", headers=_operator()).json()
    assert [(r["rating"], r["comment"]) for r in team_view["ratings"]] == [("up", "thanks")]
    assert len(team_view["handoffs"]) == 1 and team_view["handoffs"][0]["outcome"] == "resolved"

    # The analytics of the period count exactly this, and show the gap it covered.
    period = {"since": began.isoformat(), "until": (utcnow() + timedelta(seconds=1)).isoformat()}
    report = http.get("/analytics", params=period, headers=_operator()).json()
    assert report["counts"] == {
        "conversations": 2,
        "customer_messages": 3,
        "assistant_answers": 1,
        "cached_answers": 0,
        "handoffs": 1,
        "handoffs_by_reason": {"low_confidence": 1},
        "agent_replies": 1,
        "thumbs_up": 2,
        "thumbs_down": 0,
        "involved_conversations": 2,
        "resolved_confirmed": 1,
        "resolved_assumed": 0,
        "resolution_pending": 0,
    }
    rates = report["rates"]
    assert rates["involvement"] == 1.0 and rates["handoff"] == 0.5
    assert rates["resolution"] == 0.5 and rates["confirmed_resolution"] == 0.5
    assert rates["thumbs_up"] == 1.0
    assert report["timings"]["median_handoff_wait_seconds"] > 0
    assert report["timings"]["handoffs_waiting"] == 0
    (gap,) = report["gaps"]
    assert gap["count"] == 1 and gap["examples"][0]["question"] == OUT_OF_SCOPE
    assert gap["examples"][0]["why"] == "handed_off" and gap["covered_by"] == [suggestion_id]

    exported = http.get("/analytics/export", params=period, headers=_operator())
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(row["conversation_id"], row["role"]) for row in rows] == [
        (first, "customer"),
        (first, "assistant"),
        (first, "customer"),
        (first, "agent"),
        (second, "customer"),
        (second, "assistant"),
    ]
    lines = http.get(
        "/analytics/export", params={**period, "format": "jsonl"}, headers=_operator()
    ).text.splitlines()
    assert [json.loads(line)["rating"] for line in lines] == [None, None, None, "up", None, "up"]
    http.close()


def _routes() -> Iterator[APIRoute]:
    """Every route of every router in `api.routes`."""
    for module_info in pkgutil.iter_modules(api.routes.__path__):
        module = importlib.import_module(f"api.routes.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, APIRouter):
                yield from (route for route in value.routes if isinstance(route, APIRoute))


def _needs_operator(dependant: Dependant) -> bool:
    return any(
        dependency.call is require_operator or _needs_operator(dependency)
        for dependency in dependant.dependencies
    )


def test_a_public_key_gets_403_on_every_operator_route(
    loop_settings: Settings, start_api: StartApi
) -> None:
    routes = [
        (method, loop_settings.api_prefix + route.path)
        for route in _routes()
        if _needs_operator(route.dependant)
        for method in sorted(route.methods)
    ]
    paths = {path for _, path in routes}
    for expected in (
        "/api/v1/inbox",
        "/api/v1/conversations/{conversation_id}/replies",
        "/api/v1/knowledge/suggestions/{suggestion_id}/approve",
        "/api/v1/knowledge/entries/{entry_id:path}",
        "/api/v1/analytics/export",
    ):
        assert expected in paths  # fmt: skip
    api = start_api(loop_settings)
    public = {"Authorization": f"Bearer {PUBLIC}"}
    refused = []
    for method, path in routes:
        url = api.base + re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        response = httpx.request(method, url, headers=public, json={}, timeout=10)
        refused.append((method, path, response.status_code))
    assert all(status == 403 for _, _, status in refused), refused
    assert len(refused) >= 20


def test_an_answer_the_base_had_teaches_it_the_customers_words(
    loop_settings: Settings, start_worker: StartWorker, start_api: StartApi
) -> None:
    # Handed off (retrieval does not know these words), answered by a person from what the
    # contact entry says, approved as one more phrasing of it: the next customer is answered.
    words, contact = "Is there a hotline?", "contact#how-can-i-contact-support"
    start_worker(loop_settings)
    http = httpx.Client(base_url=f"{start_api(loop_settings).base}/api/v1", timeout=60)
    conversation, _, asked = _ask_in_a_new_conversation(http, words)
    assert asked["action"] == "handoff" and asked["sources"][0]["id"] == contact, asked
    http.post(
        f"/conversations/{conversation}/replies",
        json={"agent": "dana", "text": "Yes: call +1 800 555 0199, weekdays 8 AM to 8 PM."},
        headers=_operator(),
    ).raise_for_status()
    resolved = http.post(f"/conversations/{conversation}/resolve", headers=_operator()).json()
    suggestion_id = resolved["suggestion_id"]

    approved = http.post(
        f"/knowledge/suggestions/{suggestion_id}/approve",
        json={"phrasing_of": contact, "agent": "dana"},
        headers=_operator(),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["suggestion"]["entry_id"] == contact
    (change,) = http.get("/knowledge/changes", headers=_operator()).json()["changes"]
    assert change["action"] == "edited" and change["after"]["phrasings"][-1] == words
    assert change["after"]["answer"] == change["before"]["answer"]
    contact_file = (loop_settings.knowledge_path / "contact.md").read_text()
    assert f"\nQ: {words}\nA: Our support team" in contact_file

    time.sleep(loop_settings.knowledge_check_interval * 2)  # the worker reloads
    _, _, answer = _ask_in_a_new_conversation(http, words)
    assert answer["action"] == "answer" and answer["sources"][0]["id"] == contact, answer
    assert "+1 800 555 0199" in answer["answer"]
    http.close()


def _ask_in_a_new_conversation(http: httpx.Client, text: str) -> tuple[str, str, dict[str, Any]]:
    """A customer starts a conversation and asks: its id, its token and the reply."""
    created = http.post("/conversations", headers={"Authorization": f"Bearer {PUBLIC}"}).json()
    conversation, token = created["conversation_id"], created["token"]
    reply = http.post(
        f"/conversations/{conversation}/messages", json={"text": text}, headers=_customer(token)
    ).json()
    return conversation, token, reply


def _hand_off(http: httpx.Client) -> tuple[str, str]:
    conversation, token, asked = _ask_in_a_new_conversation(http, OUT_OF_SCOPE)
    assert asked["action"] == "handoff"
    return conversation, token


def _webhook_state(http: httpx.Client, conversation: str) -> tuple[str, int]:
    (handoff,) = http.get(f"/inbox/{conversation}", headers=_operator()).json()["handoffs"]
    return handoff["webhook_status"], handoff["webhook_attempts"]


@pytest.mark.receiver_answers(503, 429)
def test_a_failing_webhook_receiver_is_retried_with_backoff(
    loop_settings: Settings, start_worker: StartWorker, start_api: StartApi, receiver: Receiver
) -> None:
    settings = loop_settings.model_copy(update={"webhook_retry_backoff": 0.3})
    start_worker(settings)
    http = httpx.Client(base_url=f"{start_api(settings).base}/api/v1", timeout=60)
    conversation, _ = _hand_off(http)  # answered at once, whatever the receiver does
    _wait_for(
        lambda: _webhook_state(http, conversation)[0] == "delivered", timeout=30,
        what="the webhook was never delivered",
    )  # fmt: skip
    assert _webhook_state(http, conversation) == ("delivered", 3)
    assert len(receiver.posts) == 3
    ids = {headers["X-Support-Assistant-Delivery"] for headers, _ in receiver.posts}
    assert len(ids) == 1  # the same delivery each time: a receiver can drop repeats
    http.close()


@pytest.mark.receiver_answers(400)
def test_a_receiver_that_refuses_is_not_asked_again(
    loop_settings: Settings, start_worker: StartWorker, start_api: StartApi, receiver: Receiver
) -> None:
    start_worker(loop_settings)
    http = httpx.Client(base_url=f"{start_api(loop_settings).base}/api/v1", timeout=60)
    conversation, _ = _hand_off(http)
    _wait_for(
        lambda: _webhook_state(http, conversation)[0] == "failed", timeout=30,
        what="the refused webhook was not marked failed",
    )  # fmt: skip
    time.sleep(1)
    assert _webhook_state(http, conversation) == ("failed", 1) and len(receiver.posts) == 1
    http.close()


def test_only_the_customer_rates_and_only_replies(
    loop_settings: Settings, start_worker: StartWorker, start_api: StartApi
) -> None:
    start_worker(loop_settings)
    http = httpx.Client(base_url=f"{start_api(loop_settings).base}/api/v1", timeout=60)
    conversation, token = _hand_off(http)
    messages = http.get(f"/conversations/{conversation}", headers=_customer(token)).json()
    question, notice = messages["messages"]
    url = f"/conversations/{conversation}/messages/{{}}/feedback"

    as_operator = http.post(url.format(notice["id"]), json={"rating": "up"}, headers=_operator())
    assert as_operator.status_code == 403
    own_message = http.post(
        url.format(question["id"]), json={"rating": "up"}, headers=_customer(token)
    )
    assert own_message.status_code == 409
    unknown = http.post(url.format(uuid.uuid4()), json={"rating": "up"}, headers=_customer(token))
    assert unknown.status_code == 404
    invalid = http.post(url.format(notice["id"]), json={"rating": "meh"}, headers=_customer(token))
    assert invalid.status_code == 422
    for rating in ("up", "down"):
        rated = http.post(
            url.format(notice["id"]), json={"rating": rating}, headers=_customer(token)
        )
        assert rated.status_code == 200
    view = http.get(f"/conversations/{conversation}", headers=_customer(token)).json()
    assert [m["rating"] for m in view["messages"]] == [None, "down"]  # one rating, changed
    http.close()
