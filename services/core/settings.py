"""The one settings class: environment variables with the prefix KGRANK_, read once and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration. Every field can be set as `KGRANK_<FIELD>` (e.g. `KGRANK_NEO4J_URI`)."""

    model_config = SettingsConfigDict(env_prefix="KGRANK_", extra="ignore")

    neo4j_uri: str | None = Field(
        default=None,
        description="Neo4j URI: bolt:// for one server, neo4j:// to route across a cluster (+s/+ssc: TLS); unset "
        "means the embedded graph.",
    )
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr | None = None
    neo4j_database: str = "neo4j"
    neo4j_timeout_s: float = Field(default=10.0, gt=0, description="Connection and query timeout.")
    neo4j_import_command: str = Field(
        default="neo4j-admin database import full",
        description="Runs Neo4j's offline importer for `kgrank graph load --bulk` (the server must be stopped "
        "while it runs; `deploy/neo4j/neo4j.sh import` stops and restarts the local one around it).",
    )

    # Models.
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "kgrank",
        description="Where `kgrank base-model fetch` keeps converted base models (base-models/NAME).",
    )
    device: str | None = Field(
        default=None, description="Torch device for language models (cpu, cuda, cuda:N); unset: the GPU if any."
    )

    # Serving (`kgrank serve`).
    dataset_dir: Path | None = Field(default=None, description="Processed dataset folder (`kgrank data prepare`).")
    model_dir: Path | None = Field(default=None, description="Ranker checkpoint (`kgrank train ranker`).")
    retriever_dir: Path | None = Field(
        default=None, description="Retriever run whose scores the ranker fuses with (`kgrank train retriever`)."
    )
    fusion: bool = Field(default=True, description="Fuse with the retriever at the weight the checkpoint chose on val.")
    graph_path: Path | None = Field(
        default=None, description="Embedded graph file when no Neo4j URI is set (default: DATASET_DIR/graph.sqlite)."
    )
    scorer: Literal["transformers", "vllm"] = "transformers"
    vllm_url: str = Field(
        default="http://127.0.0.1:8000",
        description="vLLM base URL; several, comma-separated, are balanced round-robin and fail over to each other.",
    )
    vllm_model: str = Field(default="kgrank-ranker", description="The name vLLM serves the checkpoint under.")
    scorer_timeout_s: float = Field(default=10.0, gt=0, description="Longest wait for one scoring pass.")
    batch_size: int = Field(default=8, ge=1, le=256, description="Prompts per in-process forward pass.")
    batch_wait_ms: float = Field(
        default=2.0, ge=0, le=1000, description="How long a prompt waits for others to share its forward pass."
    )
    retry_after_s: float = Field(
        default=5.0, gt=0, le=300, description="After the graph or the scorer fails, how long to answer without it."
    )
    redis_url: str | None = Field(default=None, description="Redis for the ranking cache; unset: in-process LRU.")
    redis_cluster: bool = Field(
        default=False, description="REDIS_URL names one node of a Redis Cluster; the client finds the others."
    )
    redis_timeout_s: float = Field(default=0.5, gt=0, description="Redis socket timeout (cache is optional).")
    cache_ttl_s: int = Field(default=3600, ge=1, description="How long a cached ranking lives.")
    cache_entries: int = Field(default=10_000, ge=1, description="Capacity of the in-process cache.")
    explanations_per_item: int = Field(default=3, ge=0, le=20, description="Paths returned per ranked item.")
    max_body_bytes: int = Field(default=65_536, ge=1024, description="Larger request bodies get 413.")
    api_key: SecretStr | None = Field(
        default=None,
        description="When set, /rank and /interactions need it in header X-API-Key; unset, writes are refused "
        "unless OPEN_WRITES.",
    )
    open_writes: bool = Field(
        default=False, description="Accept POST /interactions without a key (a local demo only; never with a key)."
    )
    write_rate_per_s: float = Field(default=50.0, gt=0, description="Writes per second per caller (key or address).")
    write_burst: int = Field(default=100, ge=1, description="Writes a caller may send at once before the rate applies.")
    request_read_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="A client must send a request's headers and body within this."
    )
    max_connections: int = Field(
        default=1000, ge=1, description="Open connections (and requests in flight) one API process accepts."
    )

    @field_validator("api_key")
    @classmethod
    def _real_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and (
            not key.get_secret_value().strip() or key.get_secret_value() != key.get_secret_value().strip()
        ):
            raise ValueError(
                "KGRANK_API_KEY is set but empty, blank or padded with spaces: give a real key, or unset it "
                "(writes are then closed unless --open-writes)"
            )
        return key

    @model_validator(mode="after")
    def _open_or_keyed(self) -> Settings:
        if self.open_writes and self.api_key is not None:
            raise ValueError("KGRANK_OPEN_WRITES and KGRANK_API_KEY are both set: writes are either open or keyed")
        return self
