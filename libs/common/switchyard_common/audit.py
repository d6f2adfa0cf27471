"""Audit bodies: secret redaction, truncation and compression (pure functions).

The data plane redacts and truncates before a body leaves it (inside the usage event);
usage-ingest compresses what it stores. Nothing here does I/O.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

__all__ = [
    "REDACTED",
    "SENSITIVE_HEADERS",
    "compress",
    "decompress",
    "parse_json_path",
    "redact_body",
    "redact_headers",
    "redact_secrets",
    "truncate",
]

REDACTED = "[REDACTED]"

# Request headers that carry credentials, whatever the provider or client.
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
    }
)

# Credentials that show up inside bodies (a key pasted into a prompt, a tool argument):
# gateway keys, OpenAI / Anthropic / Google keys, bearer tokens, AWS access key ids.
_SECRET_PATTERNS = re.compile(
    r"gk_[A-Za-z0-9_\-]{16,}"
    r"|sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}"
    r"|sya_[A-Za-z0-9_\-]{16,}"
    r"|AIza[0-9A-Za-z_\-]{35}"
    r"|AKIA[0-9A-Z]{16}"
    r"|(?i:bearer)\s+[A-Za-z0-9_\-\.=]{16,}"
)


def redact_secrets(text: str) -> str:
    return _SECRET_PATTERNS.sub(REDACTED, text)


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header name (lower-case) -> value, credentials replaced."""
    out: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        out[lower] = REDACTED if lower in SENSITIVE_HEADERS else redact_secrets(value)
    return out


# One step of a JSON path: a key, an index, or "*" (every element or member).
_Step = str | int

_PATH_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_\-]*|\*)|\[(\d+|\*)\]|\[['\"]([^'\"]+)['\"]\]")


def parse_json_path(path: str) -> tuple[_Step, ...]:
    """`$.messages[*].content`, `$.metadata.user_id`, `$['x-y'][0]` -> steps.
    Only this subset of JSONPath (members, indexes, wildcards) is supported."""
    if not path.startswith("$"):
        raise ValueError(f"a JSON path starts with '$': {path!r}")
    steps: list[_Step] = []
    pos = 1
    while pos < len(path):
        match = _PATH_TOKEN.match(path, pos)
        if match is None:
            raise ValueError(f"unsupported JSON path syntax at {path[pos:]!r} in {path!r}")
        member, index, quoted = match.groups()
        if member is not None:
            steps.append(member)
        elif quoted is not None:
            steps.append(quoted)
        elif index == "*":
            steps.append("*")
        else:
            steps.append(int(index))
        pos = match.end()
    if not steps:
        raise ValueError(f"the JSON path {path!r} names the whole document")
    return tuple(steps)


def _redact_path(node: Any, steps: Sequence[_Step]) -> None:
    step, rest = steps[0], steps[1:]
    if isinstance(node, dict):
        names = list(node) if step == "*" else [step] if isinstance(step, str) and step in node else []
        for name in names:
            if rest:
                _redact_path(node[name], rest)
            else:
                node[name] = REDACTED
    elif isinstance(node, list):
        if step == "*":
            indexes = range(len(node))
        elif isinstance(step, int) and step < len(node):
            indexes = range(step, step + 1)
        else:
            indexes = range(0)
        for i in indexes:
            if rest:
                _redact_path(node[i], rest)
            else:
                node[i] = REDACTED


def redact_body(body: bytes | str, paths: Sequence[tuple[_Step, ...]] = ()) -> str:
    """The body as text with the configured JSON paths and every recognisable secret
    redacted. A body that is not JSON (or when no paths are configured) only gets the
    secret patterns replaced."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if paths:
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            document = None
        if isinstance(document, dict | list):
            for steps in paths:
                _redact_path(document, steps)
            text = orjson.dumps(document).decode()
    return redact_secrets(text)


def truncate(data: bytes, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes, cut at a UTF-8 character boundary; (data, was_truncated)."""
    if len(data) <= limit:
        return data, False
    cut = data[:limit]
    # Drop a partial multi-byte character at the end rather than store invalid UTF-8.
    return cut.decode("utf-8", "ignore").encode(), True


def compress(text: str | None) -> bytes | None:
    return None if text is None else zlib.compress(text.encode(), 6)


def decompress(data: bytes | None) -> str | None:
    return None if data is None else zlib.decompress(data).decode("utf-8", "replace")


def headers_from_scope(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Redacted request headers from an ASGI scope's header list."""
    return redact_headers((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)
