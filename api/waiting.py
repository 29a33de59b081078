"""How a request waits for an answer: RFC 7240 `Prefer`, `?wait`, idempotency keys."""

import math
from typing import Annotated

from fastapi import Header, Query

from shared.core.config import Settings

WaitQuery = Annotated[
    float | None,
    Query(
        ge=0,
        allow_inf_nan=False,
        description="Seconds to wait for the answer (0 answers 202 at once); at most "
        "MAX_WAIT_SECONDS, longer waits are shortened to it.",
    ),
]
PreferHeader = Annotated[
    str | None,
    Header(description="`respond-async` (answer 202 at once) and/or `wait=N` (RFC 7240)."),
]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="Retrying with the same key returns the same message, never a second.",
    ),
]


def parse_prefer(header: str | None, *, default: float, maximum: float) -> tuple[float, list[str]]:
    """The wait an RFC 7240 `Prefer` header asks for, and the preferences honoured."""
    wait, applied, respond_async = default, [], False
    for token in (header or "").split(","):
        name, _, value = token.strip().partition("=")
        name = name.strip().lower()
        if name == "respond-async":
            respond_async = True
        elif name == "wait":
            try:
                asked = float(value.strip().strip('"'))
            except ValueError:
                continue
            if not math.isfinite(asked):
                continue
            wait = min(max(asked, 0.0), maximum)
            applied.append(f"wait={value.strip()}")
    if respond_async:
        applied.insert(0, "respond-async")
        if not any(p.startswith("wait=") for p in applied):
            wait = 0.0
    return wait, applied


def requested_wait(
    settings: Settings, prefer: str | None, wait: float | None
) -> tuple[float, list[str]]:
    """How long a POST waits for its answer (`?wait` over `Prefer: wait`, both capped)."""
    seconds, applied = parse_prefer(
        prefer, default=settings.ask_wait_seconds, maximum=settings.max_wait_seconds
    )
    if wait is not None:
        seconds = min(wait, settings.max_wait_seconds)
    return seconds, applied
