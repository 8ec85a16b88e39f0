"""The one settings class. Every knob is an environment variable `DOCFLOW_<NAME>` (or a `.env` file)."""

from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BackendKind = Literal["local", "llamacloud", "openai"]
# LlamaParse's tiers, cheapest first (the llama-cloud SDK's `parsing.create(tier=...)`)
LlamaParseTier = Literal["fast", "cost_effective", "agentic", "agentic_plus"]
LLAMA_PARSE_TIERS: tuple[str, ...] = get_args(LlamaParseTier)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DOCFLOW_", env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )

    # --- where state lives -------------------------------------------------------------------------
    home: Path = Field(Path(".docflow"), description="Embedded services' data and DAGSTER_HOME.")
    database_url: str | None = Field(
        None, description="Postgres with pgvector for docflow's tables; unset = embedded pgserver."
    )
    dagster_database_url: str | None = Field(
        None, description="Postgres for Dagster's instance storage; unset = database_url's server."
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3 endpoint (MinIO, R2...); unset = embedded SeaweedFS, 'aws' = AWS S3."
    )
    s3_region: str = "us-east-1"
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    bucket: str = "docflow"
    prefix: str = Field("incoming/", description="Upload prefix the sensor watches: <prefix><tenant>/...")
    default_tenant: str = "default"
    embedded_pg_port: int = 5439
    embedded_s3_port: int = 8339

    # --- backends ----------------------------------------------------------------------------------
    parse_backend: BackendKind = "local"
    classify_backend: BackendKind = "local"
    extract_backend: BackendKind = "local"
    embed_backend: Literal["local", "openai"] = "local"
    embed_model: str = Field(
        "", description="Local: a sentence-transformers path or name; '' = the bundled MiniLM."
    )
    embed_batch_size: int = 32
    torch_threads: int = Field(
        1,
        ge=0,
        description="Threads per process for the local models (torch). docflow runs several processes at "
        "once (run slots); 0 = torch's default, a thread per core in every process (oversubscribed).",
    )
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_embed_model: str = "text-embedding-3-small"
    openai_embed_dimensions: int | None = None
    openai_embed_batch_size: int = Field(128, description="Texts per embeddings request (OpenAI API).")
    openai_max_retries: int = Field(6, description="Retries of a rate-limited/failed OpenAI call (429, 5xx).")
    openai_timeout_s: float = 60.0
    openai_requests_per_minute: int | None = Field(
        None, description="Client-side request rate limit for OpenAI calls (per process); unset = none."
    )
    # --- search and ask ----------------------------------------------------------------------------
    rerank: Literal["none", "local", "api"] = Field(
        "none", description="Rerank hits: a local cross-encoder (rerank_model) or a /rerank API."
    )
    rerank_model: str = Field("", description="Local cross-encoder folder, or the API reranker's model.")
    rerank_url: str | None = Field(None, description="Cohere/Jina-style /rerank endpoint (rerank=api).")
    rerank_api_key: SecretStr | None = None
    rerank_candidates: int = Field(30, description="Hits fetched for the reranker to reorder.")
    ask_backend: Literal["auto", "extractive", "openai"] = Field(
        "auto", description="ask: 'auto' = an OpenAI(-compatible) LLM when openai_api_key is set."
    )
    llama_cloud_api_key: SecretStr | None = None
    llama_cloud_base_url: str | None = None
    remote_timeout_s: float = Field(120.0, description="Remote classify/extract: per request and job wait.")
    remote_max_retries: int = Field(
        2, ge=0, description="Retries inside the official clients (429/5xx/timeouts) before the asset's own."
    )
    remote_poll_interval_s: float = Field(1.0, gt=0, description="LlamaCloud: first job-status poll (s).")
    llama_parse_tier: LlamaParseTier = Field(
        "cost_effective",
        description="LlamaParse tier (parse backend llamacloud): fast (text only, no markdown), "
        "cost_effective, agentic or agentic_plus; priced per page by tier in data/prices.yaml.",
    )

    @field_validator("llama_parse_tier", mode="before")
    @classmethod
    def _known_tier(cls, value: object) -> object:
        tier = str(value).strip().lower().replace("-", "_").replace(" ", "_")
        if tier not in LLAMA_PARSE_TIERS:
            raise ValueError(
                f"DOCFLOW_LLAMA_PARSE_TIER must be one of {', '.join(LLAMA_PARSE_TIERS)} "
                f"(LlamaParse's tiers), not {value!r}"
            )
        return tier

    # --- execution ---------------------------------------------------------------------------------
    executor: Literal["in_process", "multiprocess", "k8s"] = Field(
        "in_process",
        description="How a run executes its steps: in one process (model loaded once; the embedded default), "
        "a process per step, or a Kubernetes pod per step (dagster-k8s, resources from op_tags).",
    )

    # --- processing --------------------------------------------------------------------------------
    max_bytes: int = 100 * 1024 * 1024
    max_pages: int = 2000
    parse_timeout_s: float = 300.0
    chunk_tokens: int = 180  # MiniLM reads 256 word pieces; ~1.3x this estimate at p95
    chunk_overlap: int = 30
    classify_threshold: float = 0.35
    classify_embed_weight: float = Field(
        15.0, ge=0.0, description="Local classifier: points per unit of description similarity; 0 = rules."
    )
    rules_path: Path | None = Field(
        None,
        description="Document types: classification rules and each type's schema file (relative to this "
        "file's folder); unset = data/doc_types.yaml",
    )
    prices_path: Path | None = Field(
        None, description="Price table of the usage cost estimates; unset = data/prices.yaml"
    )
    classify_learned: bool = Field(True, description="Local classifier: use the learned model when present.")
    classify_model_weight: float = Field(
        0.7, ge=0.0, le=1.0, description="Local classifier: the learned model's share beside the rules'."
    )
    classifier_model_path: Path | None = Field(
        None, description="Learned classifier (`docflow train-classifier`); unset = data/classifier.json"
    )

    # --- sensor ------------------------------------------------------------------------------------
    sensor_interval_s: int = Field(
        4,
        ge=1,
        description="Least seconds between sensor ticks. The daemon looks at its sensors every 5 s: 4 gives "
        "a tick every 5 s, 5 a tick every 5 or 10 s (a tick due a moment after a look waits for the next).",
    )
    sensor_max_per_tick: int = 500
    sensor_list_budget_s: float = Field(
        4.0, gt=0, description="Seconds a tick may spend listing the bucket; a big one is listed over ticks."
    )
    sensor_work_budget_s: float = Field(
        3.0,
        gt=0,
        description="Seconds a tick may spend hashing and registering new objects, taken in turn from each "
        "tenant; the rest waits for the next tick, so one tenant's bulk load delays another's upload by "
        "about a tick.",
    )
    run_batch_size: int = Field(
        100,
        ge=1,
        description="Documents per run when many arrive in one sensor tick (bulk loads); 1 = a run each. "
        "Each run costs its creation, plan, events and a wait for the next dequeue (docs/benchmarks.md).",
    )
    backfill_batch_size: int = Field(
        50,
        ge=1,
        description="Documents per run of a backfill launched from the UI. Smaller than a bulk load's runs: "
        "Dagster's backfill policy cannot make the number of runs a multiple of the run slots, and the run "
        "left alone at the end is shorter.",
    )
    run_spread: int = Field(
        2, ge=1, description="A bulk load is split into at least this many runs (the run slots of a tenant)."
    )
    reconcile_interval_s: int = Field(60, description="Seconds between reconciliation ticks.")
    stale_per_tick: int = Field(
        4, description="Re-processing runs kept in flight after a configuration change (not all at once)."
    )
    partition_retention_days: int | None = Field(
        None,
        ge=1,
        description="Partition retention: a document done or failed more than this many days ago leaves "
        "Dagster's dynamic partitions (its rows, chunks and runs stay; `docflow status` and the document "
        "report still find it, and processing it again adds its partition back). Unset: every document "
        "keeps its partition. See docs/operations.md, Partition retention.",
    )
    partition_retention_per_tick: int = Field(
        10_000, ge=1, description="Documents the partition_retention sensor archives per tick at most."
    )
    sensor_max_hash_bytes: int = Field(
        2 * 1024**3, description="Bytes the sensor may download per tick to hash objects lacking a sha256."
    )

    # --- HTTP API (docflow/api) --------------------------------------------------------------------
    api_key: SecretStr | None = Field(
        None, description="Development API key `make dev` registers for the default tenant; unset = new."
    )
    api_database_url: str | None = Field(
        None,
        description="Postgres URL the API connects as: a role subject to row-level security; "
        "unset = database_url with the user docflow_api (created by the migrations).",
    )
    api_fetch_timeout_s: float = Field(30.0, description="POST /v1/documents:fromUrl: download timeout.")
    api_fetch_max_redirects: int = 5
    api_fetch_allow_networks: tuple[str, ...] = Field(
        (),
        description='CIDRs fromUrl and webhooks may reach although private/loopback, e.g. ["10.0.0.0/8"].',
    )
    api_docs_per_day: int = Field(
        10_000,
        description="Default quota: new documents per tenant per UTC day, whatever their entrance (API, "
        "bucket, docflow run); a tenant's own limit (docflow.tenants) overrides it.",
    )
    api_bytes_per_day: int = Field(
        10 * 1024**3, description="Default quota: new bytes per tenant per UTC day, at every entrance."
    )
    api_requests_per_minute: int = Field(
        6000,
        ge=0,
        description="Requests per minute per API key, per API process (a token bucket); over it the API "
        "answers 429 with Retry-After. 0 = no limit.",
    )
    api_request_burst: int = Field(
        1000, ge=1, description="Requests an API key may send at once before api_requests_per_minute applies."
    )
    api_spool_dir: Path | None = Field(
        None,
        description="Uploads up to 1 MiB are acknowledged once fsync'd here and written to the bucket right "
        "after (default <home>/api-spool); must be a durable disk. 'off' = write the bucket before the 202.",
    )
    webhook_timeout_s: float = 10.0
    webhook_retries: int = Field(5, description="Passthrough webhook attempts per sensor tick (backoff).")
    webhook_give_up_s: int = Field(
        3600, description="Passthrough: after this long undelivered, the results are deleted anyway."
    )
    webhook_max_attempts: int = Field(
        8, description="Completion webhooks: attempts per delivery before it is dead-lettered."
    )
    webhook_backoff_s: float = Field(
        60.0, description="Completion webhooks: wait before the 2nd attempt, doubled after each (jittered)."
    )
    webhook_max_backoff_s: float = Field(6 * 3600.0, description="Completion webhooks: longest wait.")
    webhook_tick_budget_s: float = Field(
        20.0, description="Completion webhooks: time one sensor tick may spend posting; the rest waits."
    )
    webhook_keep_days: int = Field(
        30, description="Completion webhooks: delivered and dead deliveries older than this are deleted."
    )

    @property
    def embedded_db(self) -> bool:
        return not self.database_url

    @property
    def embedded_s3(self) -> bool:
        return not self.s3_endpoint_url


def get_settings() -> Settings:
    """The settings as the environment (and `.env`) says now. An entry point (the CLI, the API server, the
    Dagster definitions) reads them once and passes them down; nothing keeps a copy, so there is no cache
    to clear when the environment changes."""
    return Settings()


def data_dir() -> Path:
    """The package's data folder (rules, schemas, samples): `data/` at the repository root."""
    return Path(__file__).resolve().parent.parent / "data"
