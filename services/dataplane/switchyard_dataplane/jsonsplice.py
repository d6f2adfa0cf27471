"""Byte-level edits of a JSON object body, so passthrough requests are not re-encoded.

The caller's body has already been parsed (so it is valid JSON); these helpers only
locate a top-level member and splice new bytes in. When the location is ambiguous they
return None and the caller falls back to re-encoding.
"""

from __future__ import annotations

import re

import orjson

__all__ = ["insert_first_member", "replace_top_level_string"]

# A JSON string, unrolled so the regex engine does not backtrack per character.
_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
_STRING_RE = re.compile(_STRING, re.DOTALL)


def _member_re(key: str) -> re.Pattern[bytes]:
    return re.compile(rb'"' + re.escape(key.encode()) + rb'"\s*:\s*(' + _STRING + rb")", re.DOTALL)


_MEMBER_RES: dict[str, re.Pattern[bytes]] = {}


def _depth(prefix: bytes) -> int | None:
    """Nesting depth at the end of `prefix`, or None if it ends inside a string."""
    bare = _STRING_RE.sub(b"", prefix)
    if b'"' in bare:
        return None
    return bare.count(b"{") + bare.count(b"[") - bare.count(b"}") - bare.count(b"]")


def replace_top_level_string(body: bytes, key: str, old: str, new: str) -> bytes | None:
    """Replace the value of the top-level member `key` (a string equal to `old`) by `new`.

    Returns None when there is not exactly one such member at depth 1.
    """
    pattern = _MEMBER_RES.get(key)
    if pattern is None:
        pattern = _MEMBER_RES[key] = _member_re(key)
    found: tuple[int, int] | None = None
    for match in pattern.finditer(body):
        start = match.start()
        if start > 0 and body[start - 1] == 0x5C:  # an escaped quote inside a string
            continue
        if orjson.loads(match.group(1)) != old:
            continue
        if _depth(body[:start]) != 1:
            continue
        if found is not None:
            return None
        found = match.span(1)
    if found is None:
        return None
    return body[: found[0]] + orjson.dumps(new) + body[found[1] :]


def insert_first_member(body: bytes, key: str, value_json: bytes) -> bytes | None:
    """Insert `"key": value` as the first member of a non-empty top-level object."""
    stripped = body.lstrip()
    if not stripped.startswith(b"{"):
        return None
    offset = len(body) - len(stripped) + 1
    rest = body[offset:].lstrip()
    if rest.startswith(b"}"):
        return None
    return body[:offset] + orjson.dumps(key) + b":" + value_json + b"," + body[offset:]
