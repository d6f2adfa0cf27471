"""The embedded stack's local state folder (`./.switchyard/` by default).

It keeps what a developer needs across restarts of `switchyard up`: the SQLite file,
the secret key that encrypts provider credentials, the generated admin password and
the quickstart API key. Files holding secrets are created readable by the owner only.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from switchyard_common.secrets import generate_api_key

DEFAULT_ADMIN_EMAIL = "admin@switchyard.local"


@dataclass(frozen=True)
class AdminCredentials:
    email: str
    password: str


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.root / 'switchyard.db'}"

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        gitignore = self.root / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text("*\n")

    def secret_key(self, configured: str | None) -> str:
        if configured:
            return configured
        path = self.root / "secret.key"
        if not path.exists():
            _write_private(path, secrets.token_urlsafe(32))
        return path.read_text().strip()

    def admin_credentials(self, email: str | None, password: str | None) -> AdminCredentials:
        """Environment wins; otherwise a password generated once and kept here."""
        path = self.root / "admin.json"
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        creds = AdminCredentials(
            email=email or stored.get("email") or DEFAULT_ADMIN_EMAIL,
            password=password or stored.get("password") or secrets.token_urlsafe(12),
        )
        if stored != {"email": creds.email, "password": creds.password}:
            _write_private(path, json.dumps({"email": creds.email, "password": creds.password}))
        return creds

    def stored_admin_credentials(self) -> AdminCredentials | None:
        path = self.root / "admin.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return AdminCredentials(email=data["email"], password=data["password"])

    def quickstart_key(self) -> str:
        """The key printed in the quickstart curl, stable across restarts."""
        path = self.root / "quickstart.key"
        if not path.exists():
            _write_private(path, generate_api_key())
        return path.read_text().strip()
