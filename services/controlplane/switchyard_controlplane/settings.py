"""The control plane's one settings class; nothing else in this package reads the environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ControlPlaneSettings"]


class ControlPlaneSettings(BaseSettings):
    """Settings read from `SWITCHYARD_*` environment variables.

    database_url           SQLite (embedded) or postgresql:// (split mode, psycopg 3)
    secret_key             encrypts provider credentials; the data plane decrypts with the same value
    admin_email/password   bootstrap admin, created (or its password updated) at start
    controlplane_host/port admin REST API
    grpc_host/port         ControlPlane gRPC service the data planes watch
    snapshot_poll_interval seconds between reads of config_state.version
    session_ttl_seconds    lifetime of login session tokens
    auto_migrate           run Alembic migrations at start
    redis_url/redis_prefix the data planes' Redis and key prefix, read for breaker and budget
                           state (empty url: embedded mode, state read from this process)
    """

    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_", extra="ignore")

    database_url: str = "sqlite:///.switchyard/switchyard.db"
    secret_key: str = Field(default="", repr=False)
    admin_email: str = ""
    admin_password: str = Field(default="", repr=False)
    controlplane_host: str = "127.0.0.1"
    controlplane_port: int = 8081
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    snapshot_poll_interval: float = Field(default=0.2, gt=0)
    session_ttl_seconds: int = Field(default=12 * 3600, gt=0)
    auto_migrate: bool = True
    redis_url: str = ""
    redis_prefix: str = "sy:"
    # Seconds between runs of the audit retention purge; 0 disables it in this replica.
    audit_purge_interval: float = Field(default=3600.0, ge=0)
