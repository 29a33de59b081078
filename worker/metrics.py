"""Worker-side Prometheus metrics (multiprocess-safe when PROMETHEUS_MULTIPROC_DIR is set)."""

import logging
import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
    start_http_server,
)

logger = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

TIME_QUEUED = Histogram(
    "support_time_queued_seconds", "From POST /ask to a worker taking the question.",
    buckets=_LATENCY_BUCKETS,
)  # fmt: skip
RETRIEVAL_SECONDS = Histogram(
    "support_retrieval_seconds", "Knowledge-base retrieval per answer.", buckets=_LATENCY_BUCKETS
)
MODEL_SECONDS = Histogram(
    "support_model_seconds", "Model generation per answer.", ["provider"], buckets=_LATENCY_BUCKETS
)
TIME_TO_FIRST_TOKEN = Histogram(
    "support_time_to_first_token_seconds", "From asking the model to its first token.",
    ["provider"], buckets=_LATENCY_BUCKETS,
)  # fmt: skip
TOKENS_PER_SECOND = Histogram(
    "support_tokens_per_second", "Generation speed per answer.", ["provider"],
    buckets=(1, 2, 5, 10, 20, 40, 80, 160, 320),
)  # fmt: skip
ANSWER_CACHE_LOOKUPS = Counter(
    "support_answer_cache_lookups_total",
    "Answer-cache lookups, by kind (repeated: the same words; equivalent: a close question "
    "answered from the same statements) and result (hit, miss).",
    ["kind", "result"],
)
ANSWERS = Counter(
    "support_answers_total",
    "Answers stored, by provider, action (answer/handoff) and origin (generated: the model's "
    "verified wording; extracted: the entry's own statements; handoff; courtesy: a greeting or "
    "thanks answered in kind).",
    ["provider", "action", "origin"],
)
FAILURES = Counter("support_answer_failures_total", "Questions stored as failed.", ["code"])
RETRIES = Counter(
    "support_task_retries_total", "Answering retries after transient errors.", ["code"]
)
RECONCILER_ACTIONS = Counter(
    "support_reconciler_actions_total", "Questions the reconciler re-queued or gave up on.",
    ["action"],
)  # fmt: skip
HANDOFFS = Counter(
    "support_handoffs_total",
    "Conversations passed to the support team by the assistant, by reason.",
    ["reason"],
)
WEBHOOK_DELIVERIES = Counter(
    "support_webhook_deliveries_total",
    "Handoff webhook POSTs, by outcome (delivered, retry, refused, gave_up).",
    ["outcome"],
)


def serve_worker_metrics(port: int) -> None:
    """Serve this worker's metrics — of every pool process, in multiprocess mode — on `port`."""
    if not port:
        return
    registry = None
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    try:
        if registry is None:
            start_http_server(port)
        else:
            start_http_server(port, registry=registry)
    except OSError as exc:
        logger.warning("worker metrics not served: port %d: %s", port, exc)
        return
    logger.info("worker metrics on http://0.0.0.0:%d/metrics", port)


def process_exited(pid: int) -> None:
    """Let multiprocess mode forget a pool process's live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
