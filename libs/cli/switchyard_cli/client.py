"""A small client for the control plane's admin REST API."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from .settings import CliSettings
from .state import StateDir


class CliError(Exception):
    """An error to print for the user, with the process exit code."""

    def __init__(self, message: str, exit_code: int = 1, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.details = details


def config_error(issues: Iterable[object]) -> CliError:
    """One error listing every problem of a config document, one per line."""
    return CliError("invalid config:\n  " + "\n  ".join(str(i) for i in issues), exit_code=2)


def _error_message(response: httpx.Response) -> tuple[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:500]}", None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error), error
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"]), body
    return f"HTTP {response.status_code}: {body}", body


class ControlPlaneClient:
    def __init__(self, settings: CliSettings, *, timeout: float = 30.0) -> None:
        self._settings = settings
        self._http = httpx.Client(base_url=settings.controlplane_url.rstrip("/"), timeout=timeout)
        self._token: str | None = settings.admin_token

    def close(self) -> None:
        self._http.close()

    def _login(self) -> str:
        email, password = self._settings.admin_email, self._settings.admin_password
        if not (email and password):
            # `switchyard up` keeps the generated admin credentials in its state folder;
            # using them lets a developer run `switchyard usage` next to it with no setup.
            stored = StateDir(Path(self._settings.state_dir)).stored_admin_credentials()
            if stored is None:
                raise CliError(
                    "not authenticated: set SWITCHYARD_ADMIN_TOKEN, or SWITCHYARD_ADMIN_EMAIL and "
                    "SWITCHYARD_ADMIN_PASSWORD",
                    exit_code=2,
                )
            email, password = stored.email, stored.password
        response = self._send("POST", "/api/v1/auth/login", json={"email": email, "password": password})
        if response.status_code != 200:
            message, details = _error_message(response)
            raise CliError(f"login failed: {message}", exit_code=2, details=details)
        return str(response.json()["access_token"])

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(
                f"cannot reach the control plane at {self._settings.controlplane_url}: {exc}", exit_code=3
            ) from None

    def _authorized(self, method: str, path: str, accept: str, **kwargs: Any) -> httpx.Response:
        if self._token is None:
            self._token = self._login()
        headers = {"Authorization": f"Bearer {self._token}", "Accept": accept}
        response = self._send(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            message, details = _error_message(response)
            raise CliError(message, details=details)
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._authorized(method, path, "application/json", **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def request_text(self, method: str, path: str, *, accept: str, **kwargs: Any) -> str:
        """The body as text, for endpoints that render other formats (`text/csv`)."""
        return self._authorized(method, path, accept, **kwargs).text
