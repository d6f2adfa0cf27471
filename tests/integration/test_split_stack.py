"""The three tiers as separate processes on Postgres + NATS: the OpenAI SDK against the
data plane, every error case, usage landing once per call, key revocation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.support.stack import APP_KEY, NARROW_KEY, SplitStack, split_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, services: None) -> Iterator[SplitStack]:
    with split_stack(tmp_path_factory.mktemp("split")) as running:
        yield running


def _client(stack: SplitStack, key: str = APP_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.dp_url}/v1", api_key=key, max_retries=0, timeout=20)


def _wait_for(predicate, timeout: float = 15.0, interval: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def test_openai_sdk_non_streaming(stack: SplitStack) -> None:
    completion = _client(stack).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hello there"}]
    )
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.usage is not None and completion.usage.prompt_tokens == 2


def test_openai_sdk_streaming(stack: SplitStack) -> None:
    stream = _client(stack).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    # The gateway asked the upstream for usage but the client did not: no usage chunk.
    assert all(c.choices for c in chunks)


def test_openai_sdk_streaming_with_usage_requested(stack: SplitStack) -> None:
    stream = _client(stack).chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "count me"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 2


def test_models_lists_what_the_key_may_use(stack: SplitStack) -> None:
    wide = {m.id for m in _client(stack).models.list()}
    narrow = {m.id for m in _client(stack, NARROW_KEY).models.list()}
    assert {"gpt-test", "broken", "slowpoke", "unreachable"} <= wide
    assert narrow == {"gpt-test"}


def _post(stack: SplitStack, body: bytes | dict, key: str | None = APP_KEY) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{stack.dp_url}/v1/chat/completions", content=content, headers=headers, timeout=20)


HELLO = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("key", "body", "status", "error_type"),
    [
        (None, HELLO, 401, "authentication_error"),
        ("gk_" + "Z" * 40, HELLO, 401, "authentication_error"),
        ("sk-not-a-gateway-key", HELLO, 401, "authentication_error"),
        (NARROW_KEY, {**HELLO, "model": "broken"}, 403, "permission_error"),
        (APP_KEY, {**HELLO, "model": "no-such-model"}, 404, "not_found_error"),
        (APP_KEY, b'{"model": "gpt-test", "messages": [', 400, "invalid_request_error"),
        (APP_KEY, {"model": "gpt-test"}, 400, "invalid_request_error"),
        (APP_KEY, {"messages": [{"role": "user", "content": "hi"}]}, 400, "invalid_request_error"),
        (APP_KEY, {"model": "gpt-test", "messages": "not a list"}, 400, "invalid_request_error"),
        (APP_KEY, {**HELLO, "messages": [{"role": "user", "content": "x" * 70_000}]}, 413, None),
        (APP_KEY, {**HELLO, "model": "unreachable"}, 502, None),
        (APP_KEY, {**HELLO, "model": "slowpoke"}, 504, None),
    ],
)
def test_error_cases_in_openai_format(
    stack: SplitStack, key: str | None, body: bytes | dict, status: int, error_type: str | None
) -> None:
    response = _post(stack, body, key)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    assert "type" in error and "code" in error
    if error_type:
        assert error["type"] == error_type


def test_upstream_error_body_is_passed_back(stack: SplitStack) -> None:
    response = _post(stack, {**HELLO, "model": "broken"})
    assert response.status_code == 500
    assert response.json()["error"]["message"] == "mock upstream error 500"
    response = _post(stack, {**HELLO, "model": "bad-request-upstream"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "mock upstream error 400"


def test_sdk_raises_typed_errors(stack: SplitStack) -> None:
    with pytest.raises(openai.AuthenticationError):
        _client(stack, "gk_" + "Q" * 40).chat.completions.create(**HELLO)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        _client(stack).chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.PermissionDeniedError):
        _client(stack, NARROW_KEY).chat.completions.create(
            model="broken", messages=[{"role": "user", "content": "x"}]
        )


def _settled_usage_count(stack: SplitStack) -> int:
    """The row count once events of earlier tests have stopped arriving."""
    last, stable_since = stack.usage_count(), time.monotonic()
    while time.monotonic() - stable_since < 1.5:
        time.sleep(0.1)
        current = stack.usage_count()
        if current != last:
            last, stable_since = current, time.monotonic()
    return last


def test_usage_lands_once_per_call_and_reads_back(stack: SplitStack) -> None:
    before = _settled_usage_count(stack)
    calls = 12
    for i in range(calls):
        _client(stack).chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": f"usage call {i}"}], stream=i % 2 == 0
        )
    assert _wait_for(lambda: stack.usage_count() >= before + calls)
    time.sleep(1.0)  # anything extra (a duplicate) would have landed by now
    assert stack.usage_count() == before + calls

    import psycopg

    with psycopg.connect(stack.pg_url) as conn:
        rows = conn.execute(
            "SELECT org, model, provider, upstream_model, status, input_tokens, output_tokens, stream, "
            "latency_ms, ttfb_ms, cost FROM usage_events WHERE model = 'gpt-test' AND stream = true "
            "ORDER BY ts DESC LIMIT 1"
        ).fetchall()
    org, model, provider, upstream_model, status, tokens_in, tokens_out, stream, latency, ttfb, cost = rows[0]
    assert (org, model, provider, upstream_model, status, stream) == (
        "acme",
        "gpt-test",
        "upstream",
        "echo-model",
        200,
        True,
    )
    assert tokens_in == 3 and tokens_out > 0  # taken from the upstream's usage chunk
    assert latency > 0 and ttfb is not None and ttfb <= latency
    assert cost == pytest.approx((tokens_in * 1.0 + tokens_out * 2.0) / 1e6)

    result = stack.cli("usage", "--output", "json", "--group-by", "model")
    rows_by_model = {row["model"]: row for row in json.loads(result.stdout)["rows"]}
    assert rows_by_model["gpt-test"]["requests"] >= calls


def test_failed_calls_are_metered_too(stack: SplitStack) -> None:
    import psycopg

    def count(model: str) -> int:
        with psycopg.connect(stack.pg_url) as conn:
            row = conn.execute("SELECT count(*) FROM usage_events WHERE model = %s", (model,)).fetchone()
            return int(row[0]) if row else 0

    before = count("unreachable")
    assert _post(stack, {**HELLO, "model": "unreachable"}).status_code == 502
    assert _wait_for(lambda: count("unreachable") == before + 1)


def test_revoked_key_is_refused_within_one_second(stack: SplitStack) -> None:
    created = json.loads(
        stack.cli("keys", "create", "--name", "short-lived", "--org", "acme", "--output", "json").stdout
    )
    key = created["key"]
    assert key.startswith("gk_") and len(key) >= 35
    assert _wait_for(lambda: _post(stack, HELLO, key).status_code == 200, timeout=5)

    listed = json.loads(stack.cli("keys", "list", "--output", "json").stdout)
    assert any(k["name"] == "short-lived" for k in listed)
    assert all("key" not in k for k in listed)

    stack.cli("keys", "revoke", "acme/short-lived")
    revoked_at = time.monotonic()
    while _post(stack, HELLO, key).status_code != 401:
        assert time.monotonic() - revoked_at < 1.0, "revoked key still accepted after 1 s"
        time.sleep(0.02)


def test_apply_is_idempotent_and_export_round_trips(stack: SplitStack) -> None:
    config = str(stack.root / "switchyard.yaml")
    second = stack.cli("apply", "-f", config)
    assert "no changes" in second.stdout
    exported = stack.cli("export", "--output", "json").stdout
    document = json.loads(exported)
    assert {p["slug"] for p in document["providers"]} >= {"upstream", "nowhere"}
    assert "sk-upstream-secret" not in exported
    bad = stack.root / "bad.yaml"
    bad.write_text("models:\n  - name: x\n    targets: [{provider: ghost, model: y}]\n    colour: blue\n")
    result = stack.cli("apply", "-f", str(bad), check=False)
    assert result.returncode != 0
    assert "bad.yaml" in result.stderr and "models[0].colour" in result.stderr
