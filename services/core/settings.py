"""The one settings class, read once and passed down, and where its values come from. Highest first: values passed
in (the command-line options), environment variables `KGRANK_<FIELD>`, the config file `kgrank.toml`, the defaults."""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from services.core.errors import ConfigError

ENV_PREFIX = "KGRANK_"
CONFIG_FILE = "kgrank.toml"
CONFIG_ENV = "KGRANK_CONFIG"

# A path in kgrank.toml never passes through a shell, so `~` is expanded here.
HomePath = Annotated[Path, AfterValidator(Path.expanduser)]

# `kgrank serve` had these option names before every setting became an option: scripts keep working, and messages
# that ask for these settings name the short option.
SHORT_OPTIONS = {"dataset_dir": "--data", "model_dir": "--model", "retriever_dir": "--retriever"}


class Settings(BaseSettings):
    """Runtime configuration. Every field can be set as `KGRANK_<FIELD>` (e.g. `KGRANK_NEO4J_URI`), as `<field>` at
    the top of kgrank.toml, and as a `kgrank serve` option `--<field>`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    neo4j_uri: str | None = Field(
        default=None,
        description="Neo4j URI: bolt:// for one server, neo4j:// to route across a cluster (+s/+ssc: TLS); unset "
        "means the embedded graph.",
        examples=["bolt://127.0.0.1:7687"],
    )
    neo4j_user: str = Field(default="neo4j", description="Neo4j user name.")
    neo4j_password: SecretStr | None = Field(
        default=None, description="Password of the Neo4j user.", examples=["replace-with-the-password"]
    )
    neo4j_database: str = Field(
        default="neo4j", description="The Neo4j database that holds the graph (Neo4j Enterprise can hold several)."
    )
    neo4j_timeout_s: float = Field(default=10.0, gt=0, description="Connection and query timeout.")
    neo4j_import_command: str = Field(
        default="neo4j-admin database import full",
        description="Runs Neo4j's offline importer for `kgrank graph load --bulk` (the server must be stopped "
        "while it runs; `deploy/neo4j/neo4j.sh import` stops and restarts the local one around it).",
    )

    # Models.
    cache_dir: HomePath = Field(
        default=Path("~/.cache/kgrank"),
        validate_default=True,
        description="Where `kgrank base-model fetch` keeps converted base models (base-models/NAME).",
    )
    device: str | None = Field(
        default=None,
        description="Torch device for language models (cpu, cuda, cuda:N); unset: the GPU if any.",
        examples=["cpu"],
    )

    threads: int | None = Field(
        default=None,
        ge=1,
        description="CPU threads torch computes with in each API process (unset: torch's default, one per core); "
        "with --workers N, about cores / N.",
        examples=[2],
    )

    # Serving (`kgrank serve`).
    dataset_dir: HomePath | None = Field(
        default=None, description="Processed dataset folder (`kgrank data prepare`).", examples=["data/ml"]
    )
    model_dir: HomePath | None = Field(
        default=None, description="Ranker checkpoint (`kgrank train ranker`).", examples=["models/ranker"]
    )
    retriever_dir: HomePath | None = Field(
        default=None,
        description="Retriever run whose scores the ranker fuses with (`kgrank train retriever`); needed when the "
        "checkpoint chose a fusion weight on val, and to rank requests without candidates.",
        examples=["models/retriever"],
    )
    fusion: bool = Field(default=True, description="Fuse with the retriever at the weight the checkpoint chose on val.")
    graph_path: HomePath | None = Field(
        default=None,
        description="Embedded graph file when no Neo4j URI is set (default: DATASET_DIR/graph.sqlite).",
        examples=["data/ml/graph.sqlite"],
    )
    scorer: Literal["transformers", "vllm"] = Field(
        default="transformers", description="Scores the prompts in this process (transformers) or on vLLM servers."
    )
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
    redis_url: str | None = Field(
        default=None,
        description="Redis for the ranking cache; unset: in-process LRU.",
        examples=["redis://127.0.0.1:6379/0"],
    )
    redis_cluster: bool = Field(
        default=False, description="REDIS_URL names one node of a Redis Cluster; the client finds the others."
    )
    redis_timeout_s: float = Field(
        default=0.5,
        gt=0,
        description="Redis socket timeout: a slower Redis is treated as down and the request is answered uncached.",
    )
    cache_ttl_s: int = Field(default=3600, ge=1, description="How long a cached ranking lives.")
    cache_entries: int = Field(
        default=10_000, ge=1, description="Rankings the in-process cache (used without REDIS_URL) holds, per process."
    )
    explanations_per_item: int = Field(
        default=3, ge=0, le=20, description="Relation paths returned with each ranked item as its explanations."
    )
    max_body_bytes: int = Field(default=65_536, ge=1024, description="Larger request bodies get 413.")
    api_key: SecretStr | None = Field(
        default=None,
        description="When set, /rank and /interactions need it in header X-API-Key; unset, reads are open and writes "
        "are refused unless OPEN_WRITES.",
        examples=["replace-with-a-long-random-key"],
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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Later sources rank lower: the config file comes after the environment.
        config_file = ConfigFileSource(settings_cls, config_path())
        return init_settings, env_settings, dotenv_settings, file_secret_settings, config_file

    @field_validator("api_key")
    @classmethod
    def _real_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and (
            not key.get_secret_value().strip() or key.get_secret_value() != key.get_secret_value().strip()
        ):
            raise ValueError(
                f"{env_name('api_key')} is set but empty, blank or padded with spaces ({how_to_set('api_key')}): "
                "give a real key, or unset it (writes are then closed unless --open-writes)"
            )
        return key

    @model_validator(mode="after")
    def _open_or_keyed(self) -> Settings:
        if self.open_writes and self.api_key is not None:
            raise ValueError(
                f"open writes ({how_to_set('open_writes')}) and an API key ({how_to_set('api_key')}) are both set: "
                "writes are either open or keyed"
            )
        return self


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def option_name(field: str) -> str:
    return SHORT_OPTIONS.get(field, "--" + field.replace("_", "-"))


def how_to_set(field: str) -> str:
    """Every way to give a setting, for messages that ask for one: `--data, KGRANK_DATASET_DIR or dataset_dir in
    kgrank.toml`."""
    return f"{option_name(field)}, {env_name(field)} or {field} in {CONFIG_FILE}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when a known name is close to `word`, else nothing: typos get their fix."""
    close = difflib.get_close_matches(word.lower(), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def config_path() -> Path | None:
    """The config file to read: the one KGRANK_CONFIG names (set but empty: none), else ./kgrank.toml if present."""
    named = os.environ.get(CONFIG_ENV)
    if named is None:
        local = Path(CONFIG_FILE)
        return local if local.is_file() else None
    if not named.strip():
        return None
    path = Path(named).expanduser()
    if not path.is_file():
        raise ConfigError(f"{CONFIG_ENV} names {path}, which is not a file (unset it to read ./{CONFIG_FILE})")
    return path


def read_config(path: Path) -> dict[str, Any]:
    """The whole TOML document; a syntax error names the file, line and column."""
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text (byte {e.start})") from e
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from e


def file_settings(path: Path) -> dict[str, Any]:
    return settings_part(read_config(path), path)


def settings_part(document: dict[str, Any], path: Path) -> dict[str, Any]:
    """The settings a config file sets: its keys above the first table (the tables hold command option defaults,
    which the command line checks). An unknown key is refused, so that a typo does not go unnoticed."""
    known = Settings.model_fields
    unknown = [key for key, value in document.items() if key not in known and not isinstance(value, dict)]
    if unknown:
        names = ", ".join(f"{key!r}{did_you_mean(key, known)}" for key in unknown)
        raise ConfigError(
            f"{path}: unknown setting {names}; settings are the {ENV_PREFIX}* names in lower case without the prefix"
        )
    return {key: value for key, value in document.items() if key in known}


class ConfigFileSource(TomlConfigSettingsSource):
    """pydantic-settings' TOML source, reading the settings part of kgrank.toml through `file_settings`."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls, toml_file=path)

    def _read_file(self, file_path: Any) -> dict[str, Any]:  # the hook the source reads each file through
        return file_settings(Path(file_path))
