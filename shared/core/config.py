"""The one settings object: every knob the service has, read from the environment and `.env`."""

from enum import StrEnum
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

import pycountry
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ProviderName(StrEnum):
    AUTO = "auto"
    OLLAMA = "ollama"
    OPENAI = "openai"
    EMBEDDED = "embedded"
    EXTRACTIVE = "extractive"


class EmbeddingProviderName(StrEnum):
    MPNET = "mpnet"
    MINILM = "minilm"
    OLLAMA = "ollama"
    NONE = "none"


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
    sse_keepalive_seconds: float = Field(default=15.0, gt=0)
    max_body_bytes: int = Field(default=16_384, ge=1024)
    max_queue_depth: int = Field(default=1000, ge=0)  # 0: unlimited
    # Operators' keys (everything), comma-separated; empty with no PUBLIC_KEYS: no authentication
    # (the API then listens on loopback only).
    api_keys: str = ""
    # Keys for a chat widget in a web page: they create conversations, talk in and read only the
    # conversations whose token they present, and ask.
    public_keys: str = ""
    # Signs the identity tokens a company's backend gives its logged-in customers (JWT, HS256,
    # `sub` = the customer's id, `exp`); empty: no identity tokens.
    identity_secret: str = ""
    # Proxies whose X-Forwarded-For is believed (comma-separated CIDRs).
    trusted_proxies: str = ""
    # Without API_KEYS the API only listens on loopback; this allows it anyway (say, in a container
    # whose port is published on the host's loopback only).
    allow_unauthenticated: bool = False
    rate_limit_per_minute: int = Field(default=120, ge=0)  # per key and address; 0: unlimited
    message_rate_limit_per_minute: int = Field(default=20, ge=0)  # posting messages, per client
    max_streams_per_client: int = Field(default=4, ge=1)  # open event streams and long polls
    max_streams_total: int = Field(default=500, ge=1)  # ... in one API process
    # Conversations with no activity for this many days are erased (0: kept for ever).
    retention_days: float = Field(default=0, ge=0)
    cors_origins: str = ""  # comma-separated origins allowed to call the API from a browser

    # Worker
    worker_concurrency: int = Field(default=2, ge=1)
    task_soft_time_limit: int = Field(default=240, ge=1)
    task_time_limit: int = Field(default=300, ge=1)
    task_max_retries: int = Field(default=3, ge=0)
    task_retry_backoff: float = Field(default=2.0, gt=0)
    task_retry_backoff_max: float = Field(default=60.0, gt=0)
    # A running question holds a lease its worker renews every `heartbeat_interval` s; the
    # reconciler (Celery beat, every `reconcile_interval` s) re-queues it once the lease expired.
    lease_seconds: float = Field(default=10.0, gt=0)
    heartbeat_interval: float = Field(default=3.0, gt=0)
    reconcile_interval: float = Field(default=5.0, gt=0)
    reconcile_queued_after: float = Field(default=60.0, ge=0)  # ...once the queue is empty
    reconcile_queued_max_wait: float = Field(default=900.0, gt=0)  # ...even if it is not
    max_attempts: int = Field(default=5, ge=1)

    # Knowledge and retrieval
    knowledge_path: Path = PROJECT_ROOT / "knowledge"
    knowledge_check_interval: float = Field(default=2.0, ge=0)
    # The shop's own country (ISO 3166 code; the default base's shop is in the United States):
    # a city elsewhere ("shipping to Toronto") is answered from what the base says of other
    # countries, never with a domestic time. Empty: unknown, and no city is taken for abroad.
    shop_country: str = Field(default="US", pattern=r"^([A-Za-z]{2})?$")
    retrieval_top_k: int = Field(default=3, ge=1, le=20)
    # Share of the dense cosine in the fused score (the rest is BM25 / best BM25); tuned on
    # StackFAQ with `python -m shared.knowledge.eval --tune`.
    retrieval_dense_weight: float = Field(default=0.9, ge=0, le=1)
    # Share of an entry's best-matching answer unit (sentence, list item) in its cosine.
    retrieval_unit_weight: float = Field(default=0.3, ge=0, le=1)
    embedding_provider: EmbeddingProviderName = EmbeddingProviderName.MPNET
    ollama_embed_model: str = "nomic-embed-text"
    embedding_cache_dir: Path | None = Path.home() / ".cache" / "support-assistant"

    # Confidence and handoff: confidence = logistic(slope * top cosine + intercept), calibrated
    # on StackFAQ questions versus out-of-scope ones (`shared.knowledge.eval --calibrate`).
    confidence_slope: float = 12.16
    confidence_intercept: float = -4.90
    handoff_threshold: float = Field(default=0.5, ge=0, le=1)
    # The answer cache: a first turn's answer is reused for a question whose standalone form has
    # the same words, or a vector at least this close (cosine), answered from the same entry's
    # same statements. Calibrated on StackFAQ by `python bench/answer_cache.py --calibrate`.
    answer_cache: bool = True
    answer_cache_similarity: float = Field(default=0.80, ge=0, le=1)
    answer_cache_max_entries: int = Field(default=10_000, ge=1)
    handoff_message: str = (
        "I don't have that information, so I'm passing you to a human agent "
        "who will get back to you as soon as possible."
    )
    person_requested_message: str = (
        "Of course. I'm passing you to a person from our support team, who will reply here."
    )
    # Said to a message that asks nothing ("hi", "thanks!"): not looked up, not handed off.
    greeting_message: str = "Hello! What can I help you with?"
    thanks_message: str = "You're welcome. If there is anything else, just ask."

    # Model backends
    llm_provider: ProviderName = ProviderName.AUTO
    llm_temperature: float = Field(default=0.2, ge=0, le=2)
    llm_max_tokens: int = Field(default=256, ge=16)
    # `all` sends the whole knowledge base when it fits in this many characters.
    context_max_chars: int = Field(default=12_000, ge=1000)
    ollama_host: str = "http://localhost:11434"
    ollama_model: str = "mistral"
    ollama_timeout: float = Field(default=120.0, gt=0)
    ollama_probe_timeout: float = Field(default=2.0, gt=0)
    ollama_keep_alive: str = "10m"
    ollama_num_ctx: int = Field(default=4096, ge=512)
    openai_base_url: str = "http://localhost:8080/v1"
    openai_api_key: str = ""
    openai_model: str = "local-model"
    openai_timeout: float = Field(default=120.0, gt=0)
    embedded_model_path: Path | None = None
    embedded_n_ctx: int = Field(default=2048, ge=512)
    embedded_threads: int = Field(default=0, ge=0)  # 0: the cores shared among pool processes
    # Before a worker relies on the embedded model, a child process loads it and generates a few
    # tokens within this many seconds; a crash or a hang there never reaches a question.
    embedded_probe_timeout: float = Field(default=60.0, gt=0)
    # A pool process still loading after this many seconds is reported by /ready as stuck.
    pool_start_timeout: float = Field(default=120.0, gt=0)

    # The support team: handoffs, learning, analytics
    # POSTed a signed JSON on every handoff (a Slack bridge, a helpdesk); empty: no webhook.
    handoff_webhook_url: str = ""
    # Signs the webhook's body: `X-Signature-256: sha256=<HMAC-SHA256 hex>`, as GitHub does.
    handoff_webhook_secret: str = ""
    webhook_timeout: float = Field(default=10.0, gt=0)
    webhook_max_retries: int = Field(default=5, ge=0)
    webhook_retry_backoff: float = Field(default=5.0, gt=0)  # seconds, doubled on each retry
    # A knowledge suggestion whose question is this close (cosine) to an entry's nearly repeats it.
    learning_duplicate_cosine: float = Field(default=0.8, ge=0, le=1)
    # Analytics: an answer with no reply from the customer for this long counts as resolved
    # (assumed), unless it was handed off or rated down.
    resolution_quiet_minutes: float = Field(default=60.0, ge=0)
    # Knowledge gaps: answers below this confidence count as gaps; questions this close (cosine)
    # fall in one cluster.
    gap_confidence_below: float = Field(default=0.7, ge=0, le=1)
    gap_cluster_cosine: float = Field(default=0.6, ge=0, le=1)

    # Operations
    flower_host: str = "127.0.0.1"
    flower_port: int = 5555
    flower_basic_auth: str = ""  # user:password; required when Flower listens beyond loopback
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    log_level: str = "INFO"
    log_format: str = Field(default="auto", pattern="^(auto|text|json)$")
    # Customers' questions are personal data: logged only when this is on.
    log_questions: bool = False
    # Workers serve their Prometheus metrics here (every pool process, through multiprocess mode).
    worker_metrics_port: int = Field(default=9808, ge=0)

    @field_validator("knowledge_path", "embedding_cache_dir", "embedded_model_path", mode="before")
    @classmethod
    def _expand_home(cls, value: object) -> object:
        if isinstance(value, str):
            return Path(value).expanduser() if value.strip() else None
        return value

    @field_validator("shop_country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        if value and pycountry.countries.get(alpha_2=value.upper()) is None:
            raise ValueError(f"SHOP_COUNTRY {value!r} is not an ISO 3166 country code")
        return value.upper()

    @field_validator("identity_secret")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value and len(value.encode()) < 32:
            raise ValueError("IDENTITY_SECRET must be at least 32 bytes (HS256 keys, RFC 7518 3.2)")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def api_key_list(self) -> list[str]:
        return [key.strip() for key in self.api_keys.split(",") if key.strip()]

    @property
    def public_key_list(self) -> list[str]:
        return [key.strip() for key in self.public_keys.split(",") if key.strip()]

    @property
    def trusted_proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        cidrs = [cidr.strip() for cidr in self.trusted_proxies.split(",") if cidr.strip()]
        return [ip_network(cidr, strict=False) for cidr in cidrs]

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
