"""Analytics for the support team: rates and times over a period, the knowledge gaps, and an
export of every message. Operators' keys only; definitions in `shared.analytics.service`."""

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from api.deps import Services, ServicesDep, require_operator
from shared.analytics.schemas import Report
from shared.analytics.service import (
    EXPORT_FIELDS,
    export_conversations,
    export_rows,
    report,
)
from shared.core.db import read_scope, utcnow
from shared.core.errors import AppError
from shared.core.schemas import ErrorResponse

router = APIRouter(
    prefix="/analytics",
    tags=["analytics"],
    dependencies=[Depends(require_operator)],
    responses={
        403: {"model": ErrorResponse, "description": "Not an operator's key."},
        422: {"model": ErrorResponse, "description": "Not a period."},
    },
)
DEFAULT_PERIOD = timedelta(days=30)
EXPORT_BATCH = 200  # conversations read per transaction

Since = Annotated[
    datetime | None,
    Query(description="ISO 8601; default: 30 days before `until`. A time without a zone is UTC."),
]
Until = Annotated[datetime | None, Query(description="ISO 8601, exclusive; default: now.")]


class InvalidPeriod(AppError):
    status_code = 422
    code = "invalid_period"


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


def _period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    end = _utc(until) if until else utcnow()
    start = _utc(since) if since else end - DEFAULT_PERIOD
    if start >= end:
        raise InvalidPeriod("`since` must be before `until`")
    return start, end


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@router.get("", response_model=Report)
def analytics(services: ServicesDep, since: Since = None, until: Until = None) -> Report:
    """Conversations, messages, handoffs and replies of the period; involvement, resolution
    (confirmed and assumed), handoff and thumbs rates; median time to the first answer and to a
    person's first reply; the knowledge gaps, grouped by meaning, the largest first."""
    start, end = _period(since, until)
    settings = services.settings
    with read_scope(services.sessions) as session:
        return report(
            session=session,
            since=start,
            until=end,
            quiet_minutes=settings.resolution_quiet_minutes,
            gap_confidence_below=settings.gap_confidence_below,
            gap_cluster_cosine=settings.gap_cluster_cosine,
        )


# A cell a spreadsheet would run as a formula (a customer could write one).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv(rows: list[dict[str, object]], *, header: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS)
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow({name: _cell(value) for name, value in row.items()})
    return buffer.getvalue()


def _export(services: Services, start: datetime, end: datetime, fmt: ExportFormat) -> Iterator[str]:
    """Rows in batches, each read in a short transaction of its own: no transaction stays open
    while the client downloads."""
    with read_scope(services.sessions) as session:
        conversation_ids = export_conversations(session=session, since=start, until=end)
    if fmt is ExportFormat.CSV:
        yield _csv([], header=True)
    for batch in range(0, len(conversation_ids), EXPORT_BATCH):
        with read_scope(services.sessions) as session:
            rows = list(
                export_rows(
                    session=session,
                    conversation_ids=conversation_ids[batch : batch + EXPORT_BATCH],
                )
            )
        if fmt is ExportFormat.CSV:
            yield _csv([{**row, "sources": " ".join(row["sources"])} for row in rows])
        else:
            yield "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
)
def export(
    services: ServicesDep,
    since: Since = None,
    until: Until = None,
    format: Annotated[ExportFormat, Query()] = ExportFormat.CSV,
) -> StreamingResponse:
    """Every message of the conversations started in the period, a row each (with its
    conversation, author, sources and rating), as CSV or JSON lines."""
    start, end = _period(since, until)
    media = "text/csv" if format is ExportFormat.CSV else "application/x-ndjson"
    name = f"conversations-{start:%Y%m%d}-{end:%Y%m%d}.{format.value}"
    return StreamingResponse(
        _export(services, start, end, format),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
