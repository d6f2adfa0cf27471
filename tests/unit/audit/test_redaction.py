"""Audit redaction, truncation and compression."""

from __future__ import annotations

import orjson
import pytest
from switchyard_common.audit import (
    REDACTED,
    compress,
    decompress,
    parse_json_path,
    redact_body,
    redact_headers,
    redact_secrets,
    truncate,
)


def test_credential_headers_are_redacted_and_others_kept() -> None:
    headers = redact_headers(
        [
            ("Authorization", "Bearer gk_" + "a" * 40),
            ("x-api-key", "gk_" + "b" * 40),
            ("Cookie", "session=1"),
            ("User-Agent", "OpenAI/Python 1.0"),
        ]
    )
    assert headers == {
        "authorization": REDACTED,
        "x-api-key": REDACTED,
        "cookie": REDACTED,
        "user-agent": "OpenAI/Python 1.0",
    }


@pytest.mark.parametrize(
    "secret",
    [
        "gk_" + "Z" * 40,
        "sk-" + "x" * 48,
        "sk-ant-api03-" + "y" * 40,
        "sk-proj-" + "q" * 30,
        "AIza" + "k" * 35,
        "AKIA" + "A" * 16,
        "Bearer abcdefghijklmnopqrstuvwx",
    ],
)
def test_secrets_inside_text_are_redacted(secret: str) -> None:
    out = redact_secrets(f"my key is {secret}, please keep it")
    assert secret not in out and REDACTED in out and out.startswith("my key is ")


def test_plain_text_is_left_alone() -> None:
    text = "the sky is blue; sk-short and gk_ are not keys"
    assert redact_secrets(text) == text


def test_json_paths_redact_members_indexes_and_wildcards() -> None:
    body = {
        "model": "m",
        "user": "alice@example.com",
        "messages": [{"role": "user", "content": "secret plan"}, {"role": "assistant", "content": "ok"}],
        "metadata": {"x-trace": "t1"},
    }
    paths = [parse_json_path(p) for p in ("$.messages[*].content", "$.user", "$['metadata']['x-trace']")]
    out = orjson.loads(redact_body(orjson.dumps(body), paths))
    assert out["messages"] == [
        {"role": "user", "content": REDACTED},
        {"role": "assistant", "content": REDACTED},
    ]
    assert out["user"] == REDACTED and out["metadata"]["x-trace"] == REDACTED and out["model"] == "m"
    only_first = orjson.loads(redact_body(orjson.dumps(body), [parse_json_path("$.messages[0].content")]))
    assert only_first["messages"][1]["content"] == "ok"


def test_paths_that_do_not_match_change_nothing_and_non_json_gets_secret_redaction() -> None:
    body = b'{"a": {"b": 1}}'
    assert orjson.loads(redact_body(body, [parse_json_path("$.x.y[3]")])) == {"a": {"b": 1}}
    assert redact_body(b"not json gk_" + b"c" * 40, [parse_json_path("$.a")]) == f"not json {REDACTED}"


@pytest.mark.parametrize("path", ["messages", "$", "$.a[", "$..a"])
def test_unsupported_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        parse_json_path(path)


def test_truncate_cuts_at_a_character_boundary() -> None:
    data = "héllo wörld".encode()
    cut, truncated = truncate(data, 2)  # would split the 2-byte 'é'
    assert truncated and cut == b"h"
    assert truncate(data, 100) == (data, False)


def test_compression_round_trips_and_shrinks_repetitive_bodies() -> None:
    text = '{"content": "' + "hello " * 2000 + '"}'
    packed = compress(text)
    assert packed is not None and len(packed) < len(text) / 10
    assert decompress(packed) == text
    assert compress(None) is None and decompress(None) is None
