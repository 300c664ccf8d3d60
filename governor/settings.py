"""Service configuration, read from ``GOVERNOR_*`` environment variables.

One object describes a Governor installation so that the server, its worker processes and the
admin CLI all find the same home folder, metadata database and encryption key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GOVERNOR_", extra="ignore")

    home: Path = Path("~/.governor")
    # Both may carry secrets (a password in the URL, the key itself): kept out of reprs and logs.
    database_url: str | None = Field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=1, le=65535)
    secret_key: str | None = Field(default=None, repr=False)
    workers: int = Field(default=2, ge=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    executor: Literal["local", "procrastinate"] = "local"
    # Seconds after which a silent ``governor worker`` is lost and its runs fail (or are retried).
    worker_timeout: float = Field(default=60.0, ge=1, le=3600)

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        # Resolved once here so that every process of an installation agrees on the same folder.
        return value.expanduser().resolve()

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def effective_database_url(self) -> str:
        """The metadata database: the configured URL, or the embedded SQLite file in the home."""
        return self.database_url or f"sqlite:///{self.home / 'governor.db'}"

    @property
    def secret_key_file(self) -> Path:
        """Where a generated encryption key lives when ``GOVERNOR_SECRET_KEY`` is unset."""
        return self.home / "secret.key"
