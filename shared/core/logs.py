"""Logging for every process: readable text in a terminal, JSON lines otherwise (`LOG_FORMAT`),
each record carrying the request id and question id it belongs to."""

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
question_id_var: ContextVar[str | None] = ContextVar("question_id", default=None)


class ContextFilter(logging.Filter):
    """Stamps each record with the current request and question ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.question_id = question_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "question_id": getattr(record, "question_id", None),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps({k: v for k, v in entry.items() if v is not None})


TEXT_FORMAT = "%(asctime)s %(levelname)s [%(processName)s] %(name)s: %(message)s%(ids)s"


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ids = [
            f"{name}={value}"
            for name in ("request_id", "question_id")
            if (value := getattr(record, name, None))
        ]
        record.ids = f" [{' '.join(ids)}]" if ids else ""
        return super().format(record)


def configure_logging(level: str, fmt: str = "auto") -> None:
    """Text for a person at a terminal, JSON lines for a log collector (`auto` picks)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter(TEXT_FORMAT))
    handler.addFilter(ContextFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for noisy in ("httpx", "httpx2", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
