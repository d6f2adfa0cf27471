"""Settings of the CLI itself (where the control plane is, how to authenticate)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class CliSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_", extra="ignore")

    controlplane_url: str = "http://127.0.0.1:8081"
    admin_token: str | None = None
    admin_email: str | None = None
    admin_password: str | None = None
    secret_key: str | None = None
    state_dir: str = ".switchyard"
