from __future__ import annotations

import orjson
from switchyard_dataplane.jsonsplice import insert_first_member, replace_top_level_string


def test_replaces_only_the_top_level_member() -> None:
    body = (
        b'{ "messages": [{"role": "user", "content": "say \\"model\\": \\"m\\""}],'
        b' "tools": [{"x": {"model": "m"}}], "model" : "m", "temperature": 0.5 }'
    )
    out = replace_top_level_string(body, "model", "m", "upstream-m")
    assert out == body.replace(b'"model" : "m"', b'"model" : "upstream-m"')
    assert orjson.loads(out)["tools"][0]["x"]["model"] == "m"


def test_ambiguous_duplicate_keys_return_none() -> None:
    assert replace_top_level_string(b'{"model":"a","model":"a","messages":[]}', "model", "a", "b") is None


def test_escaped_values_are_matched_by_meaning() -> None:
    body = b'{"model":"caf\\u00e9","messages":[]}'
    out = replace_top_level_string(body, "model", "caf\u00e9", "x")
    assert out == b'{"model":"x","messages":[]}'


def test_insert_first_member() -> None:
    out = insert_first_member(b'  {"model":"a"}', "stream_options", b'{"include_usage":true}')
    assert out == b'  {"stream_options":{"include_usage":true},"model":"a"}'
    assert insert_first_member(b"{}", "k", b"1") is None
