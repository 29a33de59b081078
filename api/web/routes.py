"""Pages for browsers: the demo page that embeds the widget, the widget script, and the support
team's console with its sign-in (an operator's key exchanged for a session cookie)."""

import html
import secrets
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)

from api.deps import ServicesDep
from api.routes.system import root
from api.security import Keys, Role, key_id
from api.web.sessions import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
)

STATIC = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)
# Served without a key: the pages themselves hold nothing; what they show comes from the API.
OPEN_PATHS = {
    "/",
    "/widget.js",
    "/console",
    "/console/login",
    "/console/logout",
    "/console/console.js",
    "/console/console.css",
}
MAX_FORM_BYTES = 4096
SIGN_IN_ATTEMPTS_PER_MINUTE = 10  # per client address: keys are not guessed by the thousand
NO_STORE = {"Cache-Control": "no-store"}


def _page(name: str, **values: str) -> str:
    """A page from `static/`, its `{{name}}` placeholders filled with escaped values."""
    text = (STATIC / name).read_text(encoding="utf-8")
    for placeholder, value in values.items():
        text = text.replace("{{" + placeholder + "}}", html.escape(value, quote=True))
    return text


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


@router.get("/", response_model=None)
def demo_page(request: Request, services: ServicesDep) -> Response:
    """For a browser, a demo shop page with the widget embedded, as a company would embed it;
    for an API client, what this service is (as `GET /api/v1/`)."""
    if "text/html" not in request.headers.get("accept", ""):
        return JSONResponse(root().model_dump(mode="json"))
    keys = services.settings.public_key_list
    return HTMLResponse(_page("demo.html", key=keys[0] if keys else ""))


@router.get("/widget.js")
def widget_script() -> FileResponse:
    return FileResponse(
        STATIC / "widget.js",
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/console/console.js")
def console_script() -> FileResponse:
    return FileResponse(STATIC / "console.js", media_type="text/javascript", headers=NO_STORE)


@router.get("/console/console.css")
def console_style() -> FileResponse:
    return FileResponse(STATIC / "console.css", media_type="text/css", headers=NO_STORE)


@router.get("/console", response_class=HTMLResponse)
async def console(request: Request, services: ServicesDep) -> Response:
    """The console when signed in; otherwise only the sign-in page."""
    session = await services.console_sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is not None:
        page = _page("console.html", csrf=session.csrf, prefix=services.settings.api_prefix)
        return HTMLResponse(page, headers=NO_STORE)
    return _sign_in_page(request, services, message="")


def _sign_in_page(
    request: Request, services: ServicesDep, *, message: str, status: int = 200
) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    hint = (
        ""
        if Keys(services.settings).configured
        else "No API_KEYS are configured: leave the key empty (the API listens on loopback only)."
    )
    response = HTMLResponse(
        _page("signin.html", csrf=token, message=message, hint=hint),
        status_code=status,
        headers=NO_STORE,
    )
    response.set_cookie(
        CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request),
        path="/console", max_age=3600,
    )  # fmt: skip
    return response


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


@router.post("/console/login")
async def sign_in(request: Request, services: ServicesDep) -> Response:
    """Exchange an operator's key for a session cookie (HttpOnly, SameSite=Strict, 8 hours)."""
    client = request.client.host if request.client else "unknown"
    await services.limiter.check(
        f"console-sign-in:{client}", scope="sign-in attempts", limit=SIGN_IN_ATTEMPTS_PER_MINUTE
    )
    form = await _form(request)
    expected = request.cookies.get(CSRF_COOKIE)
    offered = form.get("csrf")
    if not expected or not offered or not secrets.compare_digest(expected, offered):
        return _sign_in_page(
            request, services, message="The form expired; please sign in again.", status=403
        )
    keys = Keys(services.settings)
    key = form.get("key", "").strip()
    if keys.role_of(key or None) is not Role.OPERATOR:
        return _sign_in_page(
            request, services, message="That key cannot sign in to the console.", status=403
        )
    session_id, _ = await services.console_sessions.create(key_id(key if keys.configured else None))
    response = RedirectResponse("/console", status_code=303)
    response.set_cookie(
        SESSION_COOKIE, session_id, httponly=True, samesite="strict", secure=_secure(request),
        path="/", max_age=SESSION_SECONDS,
    )  # fmt: skip
    response.delete_cookie(CSRF_COOKIE, path="/console")
    return response


@router.post("/console/logout")
async def sign_out(request: Request, services: ServicesDep) -> Response:
    form = await _form(request)
    sessions = services.console_sessions
    session_id = request.cookies.get(SESSION_COOKIE)
    session = await sessions.get(session_id)
    if session is None or not session.csrf_matches(form.get("csrf")):
        return Response("Forbidden: the CSRF token is missing or wrong.", status_code=403)
    await sessions.end(session_id)
    response = RedirectResponse("/console", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
