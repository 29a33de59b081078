"""What worker pool processes report about themselves, and what readiness concludes from it.

Every pool process writes a short-lived report to Redis while it starts and, once it can answer,
on every heartbeat; a process that hangs while loading its model keeps reporting `starting`, and
one that died stops reporting. Readiness comes from these reports, not from a worker's main
process answering a ping (it answers even when none of its pool processes can work).
"""

import json
import time
from dataclasses import asdict, dataclass
from enum import StrEnum

import redis

POOL_REPORT_PREFIX = "support-assistant:pool:"


class PoolState(StrEnum):
    STARTING = "starting"
    READY = "ready"


@dataclass(frozen=True)
class PoolReport:
    worker: str  # the Celery node name
    queue: str  # the queue it consumes: readiness counts the workers of the API's queue
    pid: int
    state: PoolState
    since: float  # when the process started (epoch seconds)
    provider: str
    model: str
    model_ok: bool
    model_detail: str

    @property
    def key(self) -> str:
        return f"{POOL_REPORT_PREFIX}{self.worker}:{self.pid}"

    def encode(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: str | bytes) -> "PoolReport":
        data = json.loads(raw)
        return cls(**{**data, "state": PoolState(data["state"])})


def publish_pool_report(client: redis.Redis, report: PoolReport, *, ttl: float) -> None:
    """Write (or refresh) this process's report; it expires unless refreshed within `ttl` s."""
    client.set(report.key, report.encode(), px=int(ttl * 1000))


def withdraw_pool_report(client: redis.Redis, report: PoolReport) -> None:
    client.delete(report.key)


def read_pool_reports(client: redis.Redis, *, queue: str) -> list[PoolReport]:
    """Every live report of a process consuming `queue`, oldest process first."""
    keys = list(client.scan_iter(match=f"{POOL_REPORT_PREFIX}*", count=500))
    reports = []
    for raw in client.mget(keys) if keys else []:
        if raw is None:  # expired between the scan and the read
            continue
        try:
            report = PoolReport.decode(raw)
        except (ValueError, KeyError, TypeError):
            continue
        if report.queue == queue:
            reports.append(report)
    return sorted(reports, key=lambda report: (report.since, report.worker, report.pid))


@dataclass(frozen=True)
class PoolSummary:
    ok: bool  # at least one pool process can answer
    detail: str
    ready: list[PoolReport]


def summarize_pools(
    reports: list[PoolReport], *, start_timeout: float, now: float | None = None
) -> PoolSummary:
    """Whether any pool process is ready, and a sentence an operator can act on."""
    now = time.time() if now is None else now
    ready = [r for r in reports if r.state is PoolState.READY]
    stuck = [r for r in reports if r.state is PoolState.STARTING and now - r.since > start_timeout]
    workers = sorted({r.worker for r in reports})
    if not reports:
        return PoolSummary(ok=False, detail="no worker pool process has reported", ready=[])
    detail = (
        f"{len(ready)}/{len(reports)} pool process(es) ready on {len(workers)} worker(s): "
        + ", ".join(workers)
    )
    if stuck:
        oldest = max(now - r.since for r in stuck)
        detail += (
            f"; {len(stuck)} still starting after {oldest:.0f} s (stuck loading the model?): "
            + ", ".join(f"{r.worker} pid {r.pid}" for r in stuck)
        )
    return PoolSummary(ok=bool(ready), detail=detail, ready=ready)
