"""The widget and the console in a real browser: Playwright drives Debian's Chromium, headless,
against the running system (a uvicorn API, a Celery worker with the default model choice, Redis,
SQLite), the widget embedded in a page of another origin. Each screen is saved as a PNG under
`screenshots/` (not committed) for a person to look at."""

import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.cli.launcher import free_port
from shared.core.config import ProviderName, Settings
from tests.conftest import PROJECT_ROOT, ApiProcess, Started, fresh_database

pytestmark = [pytest.mark.integration, pytest.mark.browser]
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
SCREENSHOTS = PROJECT_ROOT / "screenshots"
OPERATOR, PUBLIC = "operator-key-for-the-console", "widget-public-key"
OUT_OF_SCOPE = "Do you sell car insurance?"
HOSTILE_CSS = (
    "button, textarea, ul, li { display: none !important; } * { font-size: 40px !important; }"
)

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


class HostSite:
    """A company's page on another origin (localhost:<port>, the API being 127.0.0.1:<port>),
    with CSS that would break a widget not kept in its own shadow root."""

    def __init__(self, api_base: str, port: int) -> None:
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Shop</title>"
            f"<style>{HOSTILE_CSS}</style></head><body><h1>Our shop</h1>"
            f"<script src='{api_base}/widget.js' data-key='{PUBLIC}' async></script>"
            "</body></html>"
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *_: Any) -> None:
                pass

        self.port = port
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.origin = f"http://localhost:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class System:
    api: ApiProcess
    host: HostSite
    settings: Settings
    conversations: int = 0  # started by the tests of this module so far, in whatever order

    @property
    def base(self) -> str:
        return self.api.base

    def operator_get(self, path: str) -> Any:
        response = httpx.get(
            f"{self.base}/api/v1{path}",
            headers={"Authorization": f"Bearer {OPERATOR}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def system(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, module_started: Started
) -> Iterator[System]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    directory = tmp_path_factory.mktemp("browser")
    knowledge = directory / "knowledge"
    shutil.copytree(PROJECT_ROOT / "knowledge", knowledge)
    host_port = free_port()
    with fresh_database("sqlite", directory) as url:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=url,
            redis_url=redis_url,
            celery_queue=f"browser-{uuid.uuid4().hex[:6]}",
            llm_provider=ProviderName.AUTO,  # as `make run`: the embedded model without Ollama
            ollama_host="http://127.0.0.1:9",  # no Ollama here, whatever this machine runs
            knowledge_path=knowledge,
            worker_metrics_port=0,
            api_keys=OPERATOR,
            public_keys=PUBLIC,
            cors_origins=f"http://localhost:{host_port}",
            rate_limit_per_minute=0,
            message_rate_limit_per_minute=0,
            knowledge_check_interval=0.5,
            sse_keepalive_seconds=1,
        )
        module_started.worker(settings)
        api = module_started.api(settings)
        host = HostSite(api.base, host_port)
        yield System(api, host, settings)
        host.close()


@pytest.fixture(scope="module")
def browser(system: System) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def widget_messages(page: Any, role: str) -> Any:
    return page.locator(f"[data-support-assistant] .msg.{role}")


def ask(page: Any, text: str) -> None:
    page.locator("[data-support-assistant] textarea").fill(text)
    page.locator("[data-support-assistant] textarea").press("Enter")


def watch_requests(page: Any, allowed: set[str]) -> list[str]:
    """Every request the page makes to an origin outside `allowed`."""
    strangers: list[str] = []

    def seen(request: Any) -> None:
        origin = "/".join(request.url.split("/")[:3])
        if origin not in allowed and not request.url.startswith("data:"):
            strangers.append(request.url)

    page.on("request", seen)
    return strangers


def test_a_customer_chats_a_person_answers_and_the_base_learns(
    system: System, browser: Any
) -> None:
    """Scenarios 1-3: an answer streamed with its source, kept across a reload; a handoff that an
    operator answers live from the console, resolves and turns into knowledge; the analytics."""
    allowed = {system.base, system.host.origin}
    customer = browser.new_context(viewport={"width": 1100, "height": 800})
    page = customer.new_page()
    strangers = watch_requests(page, allowed)
    page.goto(f"{system.host.origin}/")
    page.locator("[data-support-assistant] .launcher").click()
    # The host page's CSS hides every button and textarea of its own; not the widget's.
    assert page.locator("[data-support-assistant] textarea").is_visible()
    page.evaluate(
        """() => {
            window.__pieces = [];
            const root = document.querySelector('[data-support-assistant]').shadowRoot;
            new MutationObserver(() => {
                const busy = root.querySelector('.msg.assistant[aria-busy=true] .text');
                if (busy) window.__pieces.push(busy.textContent);
            }).observe(root, {subtree: true, childList: true, characterData: true});
        }"""
    )
    ask(page, "How long does shipping take?")
    system.conversations += 1
    answer = widget_messages(page, "assistant").first
    answer.locator(".sources li").wait_for(timeout=120_000)
    assert "How long does shipping take?" in answer.locator(".sources").inner_text()
    final = answer.locator(".text").inner_text()
    # The answer was on screen while it was being written, before the final message replaced it.
    assert page.evaluate("window.__pieces"), "the answer was not streamed"
    shot(page, "widget-answer")

    page.reload()
    page.locator("[data-support-assistant] .launcher").click()
    widget_messages(page, "assistant").first.wait_for()
    assert widget_messages(page, "customer").first.inner_text() == "How long does shipping take?"
    assert final in widget_messages(page, "assistant").first.inner_text()

    # An operator signs in to the console and keeps the inbox open.
    operator = browser.new_context(viewport={"width": 1280, "height": 900})
    console = operator.new_page()
    console_strangers = watch_requests(console, allowed)
    console.goto(f"{system.base}/console")
    console.fill("#key", OPERATOR)
    console.click("button[type=submit]")
    console.locator("table.inbox").wait_for()
    shot(console, "console-inbox-empty")

    ask(page, OUT_OF_SCOPE)
    page.locator("[data-support-assistant] .notice", has_text="A person will reply here").wait_for(
        timeout=120_000
    )
    shot(page, "widget-handoff")
    row = console.locator("table.inbox tbody tr", has_text=OUT_OF_SCOPE)
    row.wait_for(timeout=10_000)  # arrives without a reload
    shot(console, "console-inbox")
    row.locator("a").click()
    packet = console.locator("section.packet")
    packet.locator(".reason", has_text="low confidence").wait_for()
    assert packet.locator("table.sources tbody tr").count() >= 1
    assert packet.locator(".confidence").inner_text() != "—"
    shot(console, "console-conversation")

    reply = "We don't sell car insurance, sorry — only the products in our shop."
    console.fill("#reply-text", reply)
    sent = time.monotonic()
    console.click("text=Send reply")
    widget_messages(page, "agent").first.wait_for(timeout=5_000)
    arrived = time.monotonic() - sent
    assert arrived < 1.0, f"the reply took {arrived:.2f} s to reach the customer"
    assert reply in widget_messages(page, "agent").first.inner_text()
    shot(page, "widget-agent-reply")

    console.click("text=Resolve")
    console.locator("#toast", has_text="knowledge suggestion").wait_for()
    console.goto(f"{system.base}/console#knowledge")
    suggestion = console.locator("article.suggestion", has_text=OUT_OF_SCOPE)
    suggestion.wait_for()
    # The entries show the other ways customers ask them.
    contact = console.locator("details.entry", has_text="How can I contact support?")
    contact.locator("summary").click()
    assert "How can I reach you?" in contact.locator("p.phrasings").inner_text()
    edited = "No. We do not sell car insurance or any other insurance."
    suggestion.locator("textarea").fill(edited)
    shot(console, "console-knowledge")
    before = system.operator_get("/knowledge")["version"]
    suggestion.locator("text=Approve").click()
    console.locator("#toast", has_text="Approved").wait_for()
    assert system.operator_get("/knowledge")["version"] != before
    console.locator("table.history tbody tr", has_text="added").wait_for()

    newcomer = browser.new_context()
    fresh = newcomer.new_page()
    fresh.goto(f"{system.host.origin}/")
    fresh.locator("[data-support-assistant] .launcher").click()
    time.sleep(system.settings.knowledge_check_interval * 2)  # every worker reloads
    ask(fresh, OUT_OF_SCOPE)
    system.conversations += 1
    learned = widget_messages(fresh, "assistant").first
    learned.locator(".sources li").wait_for(timeout=120_000)
    assert learned.locator(".sources").inner_text().strip() == OUT_OF_SCOPE
    assert "insurance" in learned.locator(".text").inner_text()
    shot(fresh, "widget-learned")

    console.goto(f"{system.base}/console#analytics")
    figures = console.locator(".figures")
    figures.locator("[data-figure=Conversations] dd").wait_for()
    assert figures.locator("[data-figure=Conversations] dd").inner_text() == str(
        system.conversations
    )
    assert figures.locator("[data-figure=Handoffs] dd").inner_text() == "1"
    assert figures.locator("[data-figure='Agent replies'] dd").inner_text() == "1"
    console.locator("figure[data-chart='Conversations per day'] svg").wait_for()
    label = console.locator("figure[data-chart='Conversations per day'] svg").get_attribute(
        "aria-label"
    )
    assert label is not None and f" {system.conversations}" in label
    console.locator("ol.gaps li", has_text=OUT_OF_SCOPE).wait_for()
    assert console.locator("a", has_text="Export CSV").get_attribute("href")
    shot(console, "console-analytics")

    assert strangers == [] and console_strangers == []  # nothing from anywhere else
    for context in (customer, operator, newcomer):
        context.close()


def test_the_console_needs_an_operators_sign_in(system: System, browser: Any) -> None:
    """Scenario 4: the sign-in page only; a public key refused; the cookie's flags; CSRF."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{system.base}/console")
    assert page.locator("#key").is_visible() and page.locator("nav").count() == 0
    page.fill("#key", PUBLIC)
    page.click("button[type=submit]")
    page.locator(".error", has_text="cannot sign in").wait_for()
    assert context.cookies() == [] or all(c["name"] != "sa_console" for c in context.cookies())
    shot(page, "console-sign-in")

    page.fill("#key", OPERATOR)
    page.click("button[type=submit]")
    page.locator("nav").wait_for()
    (session,) = [c for c in context.cookies() if c["name"] == "sa_console"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert 0 < session["expires"] - time.time() <= 8 * 3600 + 60
    assert page.evaluate("document.cookie") == ""  # not readable by scripts

    # State-changing calls without the session's CSRF token are refused.
    logout = context.request.post(f"{system.base}/console/logout", form={"key": "x"})
    assert logout.status == 403
    api_call = context.request.post(f"{system.base}/api/v1/knowledge/reload")
    assert api_call.status == 403 and api_call.json()["error"]["code"] == "csrf_failed"
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    allowed = context.request.post(
        f"{system.base}/api/v1/knowledge/reload", headers={"X-CSRF-Token": token}
    )
    assert allowed.status == 200

    page.goto(f"{system.base}/")  # the demo page embeds the widget too
    page.locator("[data-support-assistant] .launcher").wait_for()
    page.goto(f"{system.base}/console")
    page.click("text=Sign out")
    page.locator("#key").wait_for()
    assert context.request.get(f"{system.base}/api/v1/inbox").status == 401
    context.close()


def test_the_widget_works_by_keyboard_alone(system: System, browser: Any) -> None:
    """Scenario 5: Tab to the chat button, open it, ask, read the answer, rate it."""
    context = browser.new_context(viewport={"width": 390, "height": 760})  # a phone's screen
    page = context.new_page()
    page.goto(f"{system.host.origin}/")
    page.locator("[data-support-assistant] .launcher").wait_for()
    for _ in range(10):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => document.activeElement?.shadowRoot?.activeElement?.className || ''"
        )
        if focused == "launcher":
            break
    assert focused == "launcher"
    page.keyboard.press("Enter")
    assert (
        page.evaluate("() => document.activeElement.shadowRoot.activeElement.tagName") == "TEXTAREA"
    )
    page.keyboard.type("Which payment methods do you accept?")
    page.keyboard.press("Enter")
    system.conversations += 1
    answer = widget_messages(page, "assistant").first
    answer.locator(".rate button").first.wait_for(timeout=120_000)
    log = page.locator("[data-support-assistant] [role=log]")
    assert log.get_attribute("aria-live") == "polite"
    # From the message box, Tab reaches the answer's rating buttons (after Send, the log).
    for _ in range(12):
        page.keyboard.press("Tab")
        label = page.evaluate(
            "() => document.activeElement.shadowRoot?.activeElement?.getAttribute('aria-label')"
        )
        if label == "Helpful":
            break
    assert label == "Helpful"
    page.keyboard.press("Enter")
    helpful = answer.locator("button[aria-label=Helpful]")
    sync_api.expect(helpful).to_have_attribute("aria-pressed", "true")
    shot(page, "widget-keyboard-phone")
    state = page.evaluate(
        "() => Object.entries(localStorage).find(([k]) => k.startsWith('support-assistant:'))[1]"
    )
    conversation = __import__("json").loads(state)["id"]
    messages = system.operator_get(f"/conversations/{conversation}")["messages"]
    assert [m["rating"] for m in messages if m["role"] == "assistant"] == ["up"]
    context.close()
