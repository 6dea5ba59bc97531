"""Deployment settings, read from CAREVAULT_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAREVAULT_", extra="ignore")

    home: Path = Field(default=Path("./carevault-data"))
    """The data folder: SQLite database, key store, blobs and logs."""

    database_url: str | None = None
    """A PostgreSQL URL; when unset, SQLite in the data folder."""

    maintenance_database_url: str | None = None
    """The maintenance role's URL (audit purge, `db grant-app-role`); when unset, the
    database URL. On PostgreSQL the application's role cannot delete audit entries."""

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

    policy_profile: str = "default"
    """The privacy policy profile (policies/NAME.yaml) the deployment follows."""
    policy_file: Path | None = None
    """A policy file of the deployment's own; when set, it is used instead of the profile."""

    public_origin: str = "http://localhost:8000"
    """Where people reach this deployment: the WebAuthn origin and the base of emailed links."""

    # Notifications (messaging/): with no smtp_host, messages stay pending in the outbox.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "carevault@localhost"
    """The envelope and From address; the tenant's name is its display name."""
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = 10.0
    notifications_poll_seconds: float = 5.0
    """How often (real time) the sender thread of `carevault serve` looks for due messages."""

    deid_notes_model: Path | None = None
    """A trained notes model (`carevault deid train-notes`) that de-identification exports
    add to the free-text rules; when unset, the rules alone."""

    # Snooping sentinel (privacy/oversight/): reads the audit chain after the fact.
    retention_run_hours: float = 24.0
    """How often `carevault serve` runs the retention job for every tenant; 0: never."""
    snooping_scan_seconds: float = 30.0
    """How often (real time) `carevault serve` scans every tenant's new audit entries; 0: never."""
    snooping_volume_multiplier: float = 3.0
    snooping_volume_floor: int = 25
    snooping_volume_window_days: int = 30
    """A user's day is "far above usual" past max(multiplier * median, floor) distinct patients,
    the median over their active days in the previous window."""

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'carevault.db').resolve()}"

    @property
    def resolved_maintenance_url(self) -> str:
        return self.maintenance_database_url or self.resolved_database_url

    @property
    def resolved_keystore_path(self) -> Path:
        return self.keystore_path or self.home / "keys" / "keystore.db"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"
