"""The one settings object: every knob the service has, read from the environment and `.env`."""

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ProviderName(StrEnum):
    AUTO = "auto"
    OLLAMA = "ollama"
    EXTRACTIVE = "extractive"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Storage and queue
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'support_assistant.db'}"
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    redis_url: str = "redis://127.0.0.1:6379/0"
    celery_queue: str = "questions"

    # HTTP API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_prefix: str = "/api/v1"
    ask_wait_seconds: float = Field(default=30.0, ge=0, le=120)
    max_wait_seconds: float = Field(default=120.0, ge=0)
    retry_after_seconds: int = Field(default=2, ge=1)

    # Worker
    worker_concurrency: int = Field(default=2, ge=1)
    task_soft_time_limit: int = Field(default=240, ge=1)
    task_time_limit: int = Field(default=300, ge=1)
    task_max_retries: int = Field(default=3, ge=0)
    task_retry_backoff: float = Field(default=2.0, gt=0)
    task_retry_backoff_max: float = Field(default=60.0, gt=0)

    # Knowledge
    knowledge_path: Path = PROJECT_ROOT / "knowledge"
    retrieval_top_k: int = Field(default=3, ge=1, le=20)

    # Model backends
    llm_provider: ProviderName = ProviderName.AUTO
    ollama_host: str = "http://localhost:11434"
    ollama_model: str = "mistral"
    ollama_timeout: float = Field(default=120.0, gt=0)
    ollama_probe_timeout: float = Field(default=2.0, gt=0)
    llm_temperature: float = Field(default=0.2, ge=0, le=2)

    # Operations
    flower_port: int = 5555
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    log_level: str = "INFO"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
