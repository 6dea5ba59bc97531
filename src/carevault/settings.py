"""Deployment settings, read from CAREVAULT_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAREVAULT_", extra="ignore")

    home: Path = Field(default=Path("./carevault-data"))
    """The data folder: SQLite database, key store, blobs and logs."""

    database_url: str | None = None
    """A PostgreSQL URL; when unset, SQLite in the data folder."""

    keystore_path: Path | None = None
    """The key store file; kept apart from the database (default: HOME/keys/keystore.db)."""

    max_body_bytes: int = 4 * 1024 * 1024
    search_default_count: int = 20
    search_max_count: int = 100
    bundle_max_entries: int = 1000
    """How many entries a batch or transaction Bundle may carry (more: 413)."""
    warm_strict_validation: bool = True
    """`carevault serve` loads the strict R4 models ($validate) in the background at start."""
    commit_batch_max: int = 256
    """How many queued audit entries or changes one group commit may carry."""

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'carevault.db').resolve()}"

    @property
    def resolved_keystore_path(self) -> Path:
        return self.keystore_path or self.home / "keys" / "keystore.db"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"
