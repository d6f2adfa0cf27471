"""What the media contract tests share: the files they upload and their assertions on
ledger rows and errors."""

from __future__ import annotations

import hashlib
import io
import wave
from typing import Any

import httpx
import pytest

from tests.support.media_stack import CURRENCIES, PRICES
from tests.support.mock_upstreams.openai_media import PIXEL_PNG
from tests.support.stack import APP_KEY, SplitStack

SILENCE_SECONDS = 2.5


def silence_wav(seconds: float = SILENCE_SECONDS, rate: int = 16_000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(2 * int(seconds * rate)))
    return out.getvalue()


WAV = silence_wav()
WAV_FILE = ("silence.wav", WAV, "audio/wav")
PNG_FILE = ("pixel.png", PIXEL_PNG, "image/png")
NOTES = ("notes.txt", b"not audio", "text/plain")
SPOKEN = "Grüße from the switchyard, all aboard! 🚂"  # 40 Unicode characters


def described(name: str, data: bytes, content_type: str) -> dict[str, Any]:
    """How the mock records an uploaded file."""
    return {
        "filename": name,
        "content_type": content_type,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def assert_billed(row: dict[str, Any], model: str, **units: float) -> None:
    """The row's cost is exactly `units` at the model's prices (per million units)."""
    expected = sum(PRICES[model][unit] * amount for unit, amount in units.items()) / 1e6
    assert row["cost"] == pytest.approx(expected, rel=1e-12, abs=0), row
    assert row["currency"] == CURRENCIES.get(model, "USD")
    assert row["unpriced"] is False, row
    assert row["status"] == 200 and row["error_type"] is None


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert "type" in error and "code" in error and "param" in error
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


def post(stack: SplitStack, path: str, body: Any, key: str = APP_KEY) -> httpx.Response:
    return httpx.post(
        f"{stack.dp_url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=20
    )
