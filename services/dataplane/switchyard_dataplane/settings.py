"""The data plane's one settings class (env prefix `SWITCHYARD_`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DataPlaneSettings"]


class DataPlaneSettings(BaseSettings):
    """Everything the data plane reads from its environment.

    `credential_env` is the process environment captured when the settings are built:
    provider credentials named by `api_key_env` are looked up there, so domain code never
    reads `os.environ` itself.
    """

    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_", extra="ignore")

    dataplane_host: str = "127.0.0.1"
    dataplane_port: int = 8080
    controlplane_grpc: str = "127.0.0.1:50051"
    secret_key: str = ""
    state_dir: Path = Path(".switchyard")
    # Empty means `<state_dir>/snapshot.pb` / `<state_dir>/spool`.
    snapshot_cache: Path | None = None
    spool_dir: Path | None = None
    nats_url: str = "nats://127.0.0.1:4222"
    nats_stream: str = "SWITCHYARD_USAGE"
    usage_subject_prefix: str = "usage"
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    redis_url: str = ""
    # Prefix of every Redis key this data plane writes (limits, budgets, breakers).
    redis_prefix: str = "sy:"
    # Length of the "minute" of rpm/tpm limits; tests shorten it.
    rate_window_seconds: float = Field(default=60.0, gt=0)
    # Deadline of one Redis operation; after a failure Redis is skipped for a backoff.
    redis_timeout: float = Field(default=0.25, gt=0)
    # How often the breaker states are read from Redis into the hot path's view.
    breaker_refresh_seconds: float = Field(default=0.2, gt=0)
    # Keep-alive connections kept per upstream host (aiohttp TCPConnector limit_per_host).
    upstream_pool_size: int = Field(default=256, gt=0)
    # Timeout for connecting to the control plane; after it the cached snapshot is served.
    snapshot_connect_timeout: float = Field(default=1.5, gt=0)
    snapshot_backoff_initial: float = Field(default=0.5, gt=0)
    snapshot_backoff_max: float = Field(default=15.0, gt=0)
    # Identifies this data plane to the control plane; empty means host:pid.
    dataplane_id: str = ""
    # Let caller-given image URLs (downloaded for Gemini targets) resolve to private,
    # loopback or link-local addresses. Off: callers cannot reach the internal network.
    image_fetch_allow_private: bool = False
    # Comma-separated proxy addresses whose X-Forwarded-For is trusted; empty disables it.
    forwarded_allow_ips: str = ""

    _credential_env: dict[str, str] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._credential_env = dict(os.environ)

    @model_validator(mode="after")
    def _derive_paths(self) -> DataPlaneSettings:
        if self.snapshot_cache is None:
            self.snapshot_cache = self.state_dir / "snapshot.pb"
        if self.spool_dir is None:
            self.spool_dir = self.state_dir / "spool"
        return self

    @property
    def credential_env(self) -> dict[str, str]:
        return self._credential_env

    @property
    def snapshot_cache_path(self) -> Path:
        return self.snapshot_cache or self.state_dir / "snapshot.pb"

    @property
    def spool_path(self) -> Path:
        return self.spool_dir or self.state_dir / "spool"

    @property
    def resolved_dataplane_id(self) -> str:
        return self.dataplane_id or f"{os.uname().nodename}:{os.getpid()}"
