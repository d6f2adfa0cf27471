"""Type checks for caller payloads: every failure is an `InvalidRequest` naming the field.

Codecs read caller JSON only through these, so a wrong type can never surface as a
KeyError / TypeError (a 500) further down.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson
from switchyard_common.errors import InvalidRequest, UpstreamUnreachable

from .ir import ImagePart

__all__ = [
    "bad",
    "bad_upstream",
    "check_schema",
    "data_url",
    "dump_json",
    "load_arguments",
    "opt_bool",
    "opt_int",
    "opt_number",
    "opt_str",
    "req_dict",
    "req_list",
    "req_str",
    "parse_data_url",
    "stop_list",
    "wire_int",
]

_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w.+-]+=[^;,]*)*);base64,(.*)$", re.DOTALL)


def bad(message: str, param: str | None = None, code: str = "invalid_request") -> InvalidRequest:
    return InvalidRequest(message, code=code, param=param)


def bad_upstream(what: str) -> UpstreamUnreachable:
    """An upstream answer we cannot read: the caller gets a 502, not a 400."""
    return UpstreamUnreachable(f"upstream returned a malformed {what}")


def req_dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(f"'{where}' must be an object", where, "invalid_type")
    return value


def req_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise bad(f"'{where}' must be an array", where, "invalid_type")
    return value


def req_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise bad(f"'{where}' must be a string", where, "invalid_type")
    return value


def opt_str(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    return None if value is None else req_str(value, f"{where}.{key}" if where else key)


def opt_bool(obj: dict[str, Any], key: str, where: str = "") -> bool | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise bad(f"'{where + '.' if where else ''}{key}' must be a boolean", key, "invalid_type")
    return value


def opt_int(obj: dict[str, Any], key: str, minimum: int | None = None) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"'{key}' must be an integer", key, "invalid_type")
    if minimum is not None and value < minimum:
        raise bad(f"'{key}' must be at least {minimum}", key, "invalid_value")
    return value


def opt_number(obj: dict[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(f"'{key}' must be a number", key, "invalid_type")
    return float(value)


def stop_list(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    items = req_list(value, key)
    return [req_str(item, f"{key}[{i}]") for i, item in enumerate(items)]


def parse_data_url(url: str, where: str) -> ImagePart | None:
    """An inline image from a `data:<type>;base64,<data>` URL; None for other URLs."""
    if not url.startswith("data:"):
        return None
    match = _DATA_URL.match(url)
    if match is None:
        raise bad(f"'{where}' is a data URL that is not base64 encoded", where)
    data = match.group(3)
    try:
        base64.b64decode(data[:64] + "=" * (-len(data[:64]) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"'{where}' does not hold valid base64 data", where) from None
    return ImagePart(data=data, media_type=match.group(1) or "image/png")


def check_schema(schema: Any, where: str) -> dict[str, Any]:
    """A tool's JSON Schema: an object schema (a missing `type` means object)."""
    checked = req_dict(schema, where)
    if checked.get("type", "object") != "object":
        raise bad(f"'{where}' must be a JSON Schema with type 'object'", where, "invalid_value")
    return checked


def wire_int(value: Any) -> int:
    """A count field of an upstream's wire object; anything but an int (absent, null,
    bool) is 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def data_url(image: ImagePart) -> str:
    return f"data:{image.media_type or 'image/png'};base64,{image.data}"


def dump_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def load_arguments(arguments: str, where: str) -> dict[str, Any]:
    """Tool-call arguments (JSON text) as the object Anthropic and Gemini carry."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise bad(f"'{where}' is not valid JSON", where) from None
    if not isinstance(value, dict):
        raise bad(f"'{where}' must be a JSON object", where)
    return value
