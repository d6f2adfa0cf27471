"""How the media mock reads a request: the JSON body or a multipart form (fields, and
files recorded by name, type, size and SHA-256, never their bytes), and the field
readers every endpoint uses (JSON values, or form strings)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from .behaviour import MockInvalid

__all__ = [
    "KINDS",
    "PIXEL_PNG",
    "MediaRequest",
    "Upload",
    "field_bool",
    "field_choice",
    "field_int",
    "field_number",
    "field_strings",
    "field_text",
    "kind_of",
    "read",
]

PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
KINDS = (
    "images/generations",
    "images/edits",
    "images/variations",
    "audio/transcriptions",
    "audio/translations",
    "audio/speech",
    "ocr",
    "vision/segmentations",
)


def kind_of(path: str) -> str | None:
    """Which media endpoint `path` names (by its end), or None."""
    return next((kind for kind in KINDS if path.endswith("/" + kind)), None)


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes

    def describe(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": len(self.data),
            "sha256": hashlib.sha256(self.data).hexdigest(),
        }


@dataclass
class MediaRequest:
    """A media request as read: the JSON body, or a form's fields and files. `error` is
    set when it could not be read (answered 400 once the request is recorded)."""

    kind: str
    body: Any = None  # JSON body, or the form's text fields (repeated names -> lists)
    files: dict[str, list[Upload]] = field(default_factory=dict)
    multipart: bool = False
    raw: str = ""  # the JSON text ("" for a form)
    content_type: str = ""  # without its parameters
    error: str | None = None

    def recorded(self) -> Any:
        if not self.multipart:
            return self.body
        files = {
            name: uploads[0].describe() if len(uploads) == 1 else [u.describe() for u in uploads]
            for name, uploads in self.files.items()
        }
        return {**self.body, "files": files}

    def model(self, azure_deployment: str | None) -> str:
        value = self.body.get("model") if isinstance(self.body, dict) else None
        return value if isinstance(value, str) and value else azure_deployment or ""


async def read(request: Request, kind: str) -> MediaRequest:
    """Read the body (never raises: a malformed one sets `error`)."""
    media = MediaRequest(kind, content_type=request.headers.get("content-type", "").split(";")[0].strip())
    if media.content_type.lower() == "multipart/form-data":
        media.multipart = True
        media.body = {}
        try:
            form = await request.form()
        except Exception as exc:  # Starlette's HTTPException or MultiPartException
            media.error = f"Could not parse multipart form: {getattr(exc, 'detail', None) or exc}"
            return media
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                upload = Upload(value.filename or "", value.content_type or "", await value.read())
                media.files.setdefault(name, []).append(upload)
            elif name in media.body:
                previous = media.body[name]
                media.body[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                media.body[name] = value
        await form.close()
        return media
    raw = await request.body()
    media.raw = raw.decode("utf-8", "replace")
    try:
        media.body = json.loads(raw) if raw else None
    except ValueError:
        media.error = "We could not parse the JSON body of your request."
    return media


def field_text(body: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise MockInvalid(f"Missing required parameter: '{key}'.")
        return None
    if not isinstance(value, str):
        raise MockInvalid(f"Invalid type for '{key}': expected a string.")
    if required and not value:
        raise MockInvalid(f"Invalid '{key}': empty string.")
    return value


def field_int(body: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MockInvalid(f"Invalid type for '{key}': expected an integer.")
    if not low <= value <= high:
        raise MockInvalid(f"Invalid '{key}': {value} is not between {low} and {high}.")
    return value


def field_number(body: dict[str, Any], key: str, low: float, high: float) -> None:
    value = body.get(key)
    if value is None:
        return
    try:
        number = float(value) if isinstance(value, str) else value
    except ValueError:
        number = None
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise MockInvalid(f"Invalid type for '{key}': expected a number.")
    if not low <= number <= high:
        raise MockInvalid(f"Invalid '{key}': {number} is not between {low} and {high}.")


def field_choice(body: dict[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = field_text(body, key) or default
    if value not in allowed:
        supported = ", ".join(allowed)
        raise MockInvalid(f"Invalid value for '{key}': '{value}'. Supported values are: {supported}.")
    return value


def field_bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key)
    if isinstance(value, str):
        return value.lower() == "true"
    return value is True


def field_strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]
