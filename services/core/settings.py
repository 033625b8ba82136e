"""The one settings class: environment variables with the prefix KGRANK_, read once and passed down."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration. Every field can be set as `KGRANK_<FIELD>` (e.g. `KGRANK_NEO4J_URI`)."""

    model_config = SettingsConfigDict(env_prefix="KGRANK_", extra="ignore")

    neo4j_uri: str | None = Field(
        default=None, description="Bolt URI of a Neo4j server; unset means the embedded graph."
    )
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr | None = None
    neo4j_database: str = "neo4j"
    neo4j_timeout_s: float = Field(default=10.0, gt=0, description="Connection and query timeout.")
