"""Settings from the environment and an optional .env, loaded once by the composition root.

Core never sees this object: ``bot/`` hands it plain values.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.errors import ConfigError


class Settings(BaseSettings):
    """Every variable is documented in .env.example and in the README's table."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    data_dir: Path = Field(default=Path("./data"), alias="LOREKEEPER_DATA_DIR")
    database_url: str = Field(
        default="sqlite+aiosqlite:///./data/lorekeeper.db", alias="DATABASE_URL"
    )
    db_pool_size: int = Field(default=10, ge=1, le=200, alias="DB_POOL_SIZE")
    db_max_overflow: int = Field(default=20, ge=0, le=500, alias="DB_MAX_OVERFLOW")
    db_pool_recycle: int = Field(default=1800, ge=1, alias="DB_POOL_RECYCLE")
    db_pool_pre_ping: bool = Field(default=True, alias="DB_POOL_PRE_PING")

    milvus_uri: str = Field(default="./data/milvus.db", alias="MILVUS_URI")
    milvus_token: SecretStr | None = Field(default=None, alias="MILVUS_TOKEN")
    milvus_collection: str = Field(
        default="lorekeeper_chunks",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$",
        alias="MILVUS_COLLECTION",
    )
    embedding_model: str = Field(default="all-MiniLM-L6-v2", alias="EMBEDDING_MODEL")
    embedding_backend: Literal["auto", "torch", "torch-bf16", "onnx-int8"] = Field(
        default="auto", alias="EMBEDDING_BACKEND"
    )
    embedding_batch_size: int = Field(default=16, ge=1, le=4096, alias="EMBEDDING_BATCH_SIZE")
    embedding_trace: bool = Field(default=True, alias="EMBEDDING_TRACE")
    # Built model variants (the int8 ONNX model); unset: <data dir>/models.
    embedding_cache_dir: Path | None = Field(default=None, alias="EMBEDDING_CACHE_DIR")
    chunk_size: int = Field(default=1000, ge=100, le=20000, alias="CHUNK_SIZE")
    chunk_overlap: int = Field(default=200, ge=0, le=10000, alias="CHUNK_OVERLAP")
    max_upload_mb: float = Field(default=20.0, gt=0, le=1024, alias="MAX_UPLOAD_MB")
    max_text_chars: int = Field(default=5_000_000, ge=1000, alias="MAX_TEXT_CHARS")
    # Files are read in worker processes, each within these limits (docs/operations.md).
    extract_workers: int = Field(default=2, ge=1, le=64, alias="EXTRACT_WORKERS")
    extract_timeout: float = Field(default=60.0, gt=0, le=3600, alias="EXTRACT_TIMEOUT")
    extract_memory_mb: int = Field(default=1024, ge=256, le=65536, alias="EXTRACT_MEMORY_MB")
    extract_max_pages: int = Field(default=2_000, ge=1, alias="EXTRACT_MAX_PAGES")
    extract_max_paragraphs: int = Field(default=100_000, ge=1, alias="EXTRACT_MAX_PARAGRAPHS")
    extract_max_elements: int = Field(default=1_000_000, ge=1, alias="EXTRACT_MAX_ELEMENTS")
    extract_max_json_values: int = Field(default=1_000_000, ge=1, alias="EXTRACT_MAX_JSON_VALUES")
    answer_threshold: float | None = Field(default=None, ge=0, le=1, alias="ANSWER_THRESHOLD")
    retrieval_top_k: int = Field(default=5, ge=1, le=50, alias="RETRIEVAL_TOP_K")
    # questions per user per window ("30/5m"; "off" for none)
    question_rate_limit: str = Field(default="30/5m", alias="QUESTION_RATE_LIMIT")
    # autoanswer channels: the gate's estimate an unasked question needs (default: core's) and
    # answers per channel per window ("5/10m"; "off" for no limit)
    autoanswer_threshold: float | None = Field(
        default=None, ge=0, le=1, alias="AUTOANSWER_THRESHOLD"
    )
    autoanswer_rate_limit: str = Field(default="5/10m", alias="AUTOANSWER_RATE_LIMIT")

    groq_api_key: SecretStr | None = Field(default=None, alias="GROQ_API_KEY")
    groq_model: str = Field(default="llama-3.3-70b-versatile", alias="GROQ_MODEL")
    groq_base_url: str | None = Field(default=None, alias="GROQ_BASE_URL")
    groq_timeout: float = Field(default=30.0, gt=0, le=600, alias="GROQ_TIMEOUT")
    llm_prices: str | None = Field(default=None, alias="LLM_PRICES")
    llm_context_tokens: int = Field(default=6000, ge=500, alias="LLM_CONTEXT_TOKENS")

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    slack_port: int = Field(default=3000, ge=0, le=65535, alias="SLACK_PORT")
    slack_admin_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="SLACK_ADMIN_IDS"
    )
    # answers stream through Slack's chat.startStream/appendStream/stopStream (docs/slack.md)
    slack_native_streaming: bool = Field(default=True, alias="SLACK_NATIVE_STREAMING")

    discord_token: SecretStr | None = Field(default=None, alias="DISCORD_TOKEN")
    discord_api_url: str = Field(default="https://discord.com", alias="DISCORD_API_URL")
    discord_gateway_url: str | None = Field(default=None, alias="DISCORD_GATEWAY_URL")
    discord_guild_id: int | None = Field(default=None, alias="DISCORD_GUILD_ID")
    discord_admin_role: str | None = Field(default=None, alias="DISCORD_ADMIN_ROLE")

    # One organisation shares its namespaces across these workspaces; "workspace" keeps every
    # workspace a tenant of its own (core/organisation.py).
    tenancy: Literal["organisation", "workspace"] = Field(default="organisation", alias="TENANCY")
    slack_team_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="SLACK_TEAM_IDS"
    )
    discord_guild_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="DISCORD_GUILD_IDS"
    )

    http_port: int = Field(default=8080, ge=0, le=65535, alias="HTTP_PORT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", alias="LOG_LEVEL"
    )
    log_json: bool = Field(default=False, alias="LOG_JSON")
    retention_hour_utc: int = Field(default=3, ge=0, le=23, alias="RETENTION_HOUR_UTC")
    # 0: each job at its time of day; else every job this often, at the same instants in
    # every replica (drills and tests)
    job_interval_seconds: float = Field(default=0, ge=0, alias="JOB_INTERVAL_SECONDS")
    # "weekly": every Monday at 09:00 UTC each namespace owner who ran `/lore digest on` gets
    # their namespaces' gaps by DM; "off": nobody does
    gap_digest: Literal["off", "weekly"] = Field(default="weekly", alias="GAP_DIGEST")
    # how long a replica's claim on a platform event lasts before a retry may take it over
    event_lease_seconds: float = Field(default=90, gt=0, le=3600, alias="EVENT_LEASE_SECONDS")

    @field_validator("slack_admin_ids", "slack_team_ids", "discord_guild_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("embedding_cache_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        from core.db.engine import parse_database_url

        try:
            parse_database_url(value)
        except ConfigError as exc:
            raise ValueError(exc.user_message.removeprefix("DATABASE_URL ")) from None
        return value

    @field_validator("question_rate_limit", "autoanswer_rate_limit")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("llm_prices")
    @classmethod
    def _check_prices(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            table = json.loads(value)
            for model, pair in table.items():
                if not isinstance(model, str) or len(pair) != 2:
                    raise ValueError
                [Decimal(str(x)) for x in pair]
        except (ValueError, TypeError, AttributeError, ArithmeticError) as exc:
            raise ValueError(
                'must be JSON like {"model": [input_usd_per_million, output_usd_per_million]}'
            ) from exc
        return value

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, value: int, info: object) -> int:
        size = getattr(info, "data", {}).get("chunk_size", 1000)
        if value >= size:
            raise ValueError(f"must be smaller than CHUNK_SIZE ({size})")
        return value

    @property
    def question_rate(self) -> tuple[int, timedelta] | None:
        """(questions, window) of the per-user rate limit, or None when it is off."""
        return parse_rate(self.question_rate_limit)

    @property
    def organisation_guilds(self) -> frozenset[str]:
        """The Discord servers of the organisation (DISCORD_GUILD_ID counts as one)."""
        guilds = set(self.discord_guild_ids)
        if self.discord_guild_id:
            guilds.add(str(self.discord_guild_id))
        return frozenset(guilds)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def model_cache_dir(self) -> Path:
        """Where built model variants (the int8 ONNX model) are kept."""
        return self.embedding_cache_dir or self.data_dir / "models"

    @classmethod
    def secret_fields(cls) -> tuple[str, ...]:
        """The settings held as ``SecretStr``: tokens, keys and signing secrets."""
        return tuple(
            name
            for name, field in cls.model_fields.items()
            if field.annotation is SecretStr or SecretStr in get_args(field.annotation)
        )

    def secret(self, name: str) -> str | None:
        """The value of the secret setting ``name``, or None when it is not set."""
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else None

    def secret_values(self) -> list[str]:
        """The values of every secret setting that is set: what no log line may show."""
        return [value for name in self.secret_fields() if (value := self.secret(name))]


_RATE = re.compile(r"^\s*(\d{1,6})\s*/\s*(\d{1,5})\s*([smh])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_rate(value: str) -> tuple[int, timedelta] | None:
    """ "30/5m" is 30 questions in any 5 minutes; "off" (or "0") turns the limit off."""
    if value.strip().lower() in ("off", "0", "none", ""):
        return None
    match = _RATE.match(value)
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ValueError('must look like "30/5m" (questions per window in s, m or h) or "off"')
    seconds = int(match.group(2)) * _UNITS[match.group(3)]
    return int(match.group(1)), timedelta(seconds=seconds)


def load_settings(env_file: str | None = ".env") -> Settings:
    """Load settings or raise ConfigError with one line naming the variable and the problem."""
    try:
        settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc") or ("?",)
        field = str(loc[0])
        alias = Settings.model_fields[field].alias if field in Settings.model_fields else field
        msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        raise ConfigError(f"{(alias or field).upper()}: {msg}") from None
    return settings
