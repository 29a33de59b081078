"""Service identity, liveness and readiness."""

from typing import Literal

from pydantic import BaseModel


class ServiceInfo(BaseModel):
    name: str
    version: str
    status: str


class Health(BaseModel):
    status: Literal["ok"]


class CheckResult(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    provider: str
    model: str
    checks: dict[str, CheckResult]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks.values())
