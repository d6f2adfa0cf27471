"""Caller input a codec cannot understand is an InvalidRequest (a 400), never a crash."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from switchyard_common.errors import InvalidRequest
from switchyard_dataplane.protocols.translate import translate_request

from .golden import FIXTURES, OTHER, load_json

OPENAI_OK = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
ANTHROPIC_OK = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}

BAD: list[tuple[str, Any]] = [
    ("openai", []),
    ("openai", "text"),
    ("openai", {"model": "m"}),
    ("openai", {"model": 3, "messages": [{"role": "user", "content": "x"}]}),
    ("openai", {"model": "m", "messages": []}),
    ("openai", {"model": "m", "messages": {"role": "user"}}),
    ("openai", {"model": "m", "messages": [{"role": "wizard", "content": "x"}]}),
    ("openai", {"model": "m", "messages": [{"role": "user", "content": 5}]}),
    ("openai", {"model": "m", "messages": [{"role": "user", "content": [{"type": "audio"}]}]}),
    ("openai", {"model": "m", "messages": [{"role": "system", "content": "only a system prompt"}]}),
    ("openai", {"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
    ("openai", {**OPENAI_OK, "tools": [{"type": "function", "function": {"name": "f", "parameters": "{}"}}]}),
    ("openai", {**OPENAI_OK, "tools": [{"type": "function", "function": {"parameters": {}}}]}),
    (
        "openai",
        {
            **OPENAI_OK,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}],
        },
    ),
    ("openai", {**OPENAI_OK, "tools": [{"type": "web_search"}]}),
    ("openai", {**OPENAI_OK, "tool_choice": "sometimes"}),
    ("openai", {**OPENAI_OK, "max_tokens": "10"}),
    ("openai", {**OPENAI_OK, "max_tokens": 0}),
    ("openai", {**OPENAI_OK, "temperature": "hot"}),
    ("openai", {**OPENAI_OK, "stream": "yes"}),
    ("openai", {**OPENAI_OK, "stop": [1]}),
    ("openai", {**OPENAI_OK, "reasoning_effort": "extreme"}),
    ("openai", {**OPENAI_OK, "stream_options": []}),
    (
        "openai",
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}],
                }
            ],
        },
    ),
    (
        "openai",
        {
            "model": "m",
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}],
                }
            ],
        },
    ),
    ("anthropic", None),
    ("anthropic", {"model": "m", "messages": [{"role": "user", "content": "x"}]}),
    ("anthropic", {"model": "m", "max_tokens": 10}),
    ("anthropic", {**ANTHROPIC_OK, "messages": [{"role": "system", "content": "x"}]}),
    ("anthropic", {**ANTHROPIC_OK, "messages": [{"role": "user", "content": [{"type": "video"}]}]}),
    (
        "anthropic",
        {
            **ANTHROPIC_OK,
            "messages": [
                {"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}]}
            ],
        },
    ),
    (
        "anthropic",
        {
            **ANTHROPIC_OK,
            "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}],
        },
    ),
    ("anthropic", {**ANTHROPIC_OK, "tools": [{"name": "f"}]}),
    ("anthropic", {**ANTHROPIC_OK, "tools": [{"name": "f", "input_schema": {"type": "array"}}]}),
    ("anthropic", {**ANTHROPIC_OK, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
    ("anthropic", {**ANTHROPIC_OK, "tool_choice": {"type": "maybe"}}),
    ("anthropic", {**ANTHROPIC_OK, "tool_choice": {"type": "tool"}}),
    ("anthropic", {**ANTHROPIC_OK, "thinking": {"type": "enabled"}}),
    ("anthropic", {**ANTHROPIC_OK, "system": [{"type": "image"}]}),
    ("anthropic", {**ANTHROPIC_OK, "stop_sequences": "END"[0:0] or 7}),
    ("anthropic", {**ANTHROPIC_OK, "metadata": "u"}),
]


@pytest.mark.parametrize(("src", "payload"), BAD, ids=[f"{s}-{i}" for i, (s, _) in enumerate(BAD)])
def test_malformed_request_is_invalid_request(src: str, payload: Any) -> None:
    with pytest.raises(InvalidRequest) as info:
        translate_request(src, OTHER[src], payload, "up")
    assert info.value.status == 400


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


SOURCES = [
    (src, load_json(path)) for src in OTHER for path in sorted((FIXTURES / src).glob("request_*.json"))
]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_mutation_of_a_valid_request_translates_or_is_invalid(data: st.DataObject) -> None:
    src, original = data.draw(st.sampled_from(SOURCES))
    payload = copy.deepcopy(original)
    path = data.draw(st.sampled_from(_paths(payload)[1:]))
    target = payload
    for key in path[:-1]:
        target = target[key]
    if data.draw(st.booleans()):
        target[path[-1]] = data.draw(_JSON)
    else:
        del target[path[-1]]
    with contextlib.suppress(InvalidRequest):
        translate_request(src, OTHER[src], payload, "up")
