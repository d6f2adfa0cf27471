from __future__ import annotations

import pytest
from switchyard_common.errors import AuthenticationError, ConfigError, NotFound, PermissionDenied
from switchyard_common.secrets import SecretBox
from switchyard_dataplane.index import IndexHolder, build_index
from switchyard_dataplane.metrics import Metrics
from switchyard_dataplane.protocols.ir import TokenUsage
from switchyard_dataplane.snapshot_client import SnapshotClient

from .conftest import KEY, SECRET, UPSTREAM_KEY, make_snapshot


def test_builds_keys_routes_runtimes_and_prices() -> None:
    snap = make_snapshot(
        base_urls={"a": "https://api.deepseek.com", "b": "https://dashscope.test/compatible-mode/v1"},
        targets=[("b", "qwen-plus", 2), ("a", "deepseek-chat", 0)],
    )
    index = build_index(snap, secret_key=SECRET, env={})

    key = index.authenticate(f"Bearer {KEY}".encode(), now=0)
    assert (key.org_name, key.org_id, key.id) == ("acme", "org-1", "key-1")

    route = index.route_for(key, "chat")
    assert [t.upstream_model for t in route.targets] == ["deepseek-chat", "qwen-plus"]
    deepseek, dashscope = (t.runtime for t in route.targets)
    assert deepseek.url == "https://api.deepseek.com/v1/chat/completions"
    assert dashscope.url == "https://dashscope.test/compatible-mode/v1/chat/completions"
    headers = dict(deepseek.headers)
    assert headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert headers["x-extra"] == "1"
    assert (deepseek.timeout_seconds, deepseek.connect_timeout_seconds) == (5, 2)

    prices = index.prices_for("chat")
    assert prices.cost(TokenUsage(input_tokens=1_000_000, output_tokens=500_000)) == pytest.approx(2.0 + 5.0)


def test_explicit_api_path_and_env_credential() -> None:
    snap = make_snapshot()
    provider = snap.providers[0]
    provider.api_key_encrypted = ""
    provider.api_key_env = "UP_KEY"
    provider.api_path = "/openai/chat"
    index = build_index(snap, secret_key=SECRET, env={"UP_KEY": "from-env"})
    runtime = index.providers["up"]
    assert runtime.url == "http://upstream.test/v1/openai/chat"
    assert dict(runtime.headers)["authorization"] == "Bearer from-env"


def test_undecryptable_credential_is_refused() -> None:
    snap = make_snapshot()
    snap.providers[0].api_key_encrypted = SecretBox("another-key").encrypt("x")
    with pytest.raises(ConfigError, match="does not decrypt"):
        build_index(snap, secret_key=SECRET, env={})


def test_unknown_provider_in_target_is_refused() -> None:
    snap = make_snapshot(targets=[("nope", "m", 0)])
    with pytest.raises(ConfigError, match="unknown provider 'nope'"):
        build_index(snap, secret_key=SECRET, env={})


def test_refused_snapshot_keeps_previous_index(tmp_path) -> None:  # type: ignore[no-untyped-def]
    holder = IndexHolder()
    client = SnapshotClient(
        target="127.0.0.1:1",
        holder=holder,
        cache_path=tmp_path / "snapshot.pb",
        secret_key=SECRET,
        env={},
        metrics=Metrics(),
    )
    assert client.apply(make_snapshot(version=1)) is not None
    first = holder.current
    assert client.apply(make_snapshot(version=2, targets=[("ghost", "m", 0)])) is None
    assert holder.current is first
    assert first is not None and first.version == 1


@pytest.mark.parametrize(
    ("header", "kwargs", "code"),
    [
        (None, {}, "invalid_api_key"),
        (b"Basic abc", {}, "invalid_api_key"),
        (b"Bearer gk_wrong", {}, "invalid_api_key"),
        (f"Bearer {KEY}".encode(), {"key_revoked": True}, "revoked_api_key"),
        (f"Bearer {KEY}".encode(), {"key_expires_at": 100}, "expired_api_key"),
    ],
)
def test_authentication_failures(header: bytes | None, kwargs: dict[str, object], code: str) -> None:
    index = build_index(make_snapshot(**kwargs), secret_key=SECRET, env={})  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError) as info:
        index.authenticate(header, now=200)
    assert info.value.code == code


def test_model_permissions() -> None:
    index = build_index(make_snapshot(key_models=["chat"]), secret_key=SECRET, env={})
    key = index.authenticate(f"Bearer {KEY}".encode(), now=0)
    assert index.route_for(key, "chat").name == "chat"
    with pytest.raises(PermissionDenied):
        index.route_for(key, "echo")
    with pytest.raises(NotFound):
        index.route_for(key, "missing")
    assert [r.name for r in index.models_for(key)] == ["chat"]


def test_cost_with_cached_and_reasoning_prices() -> None:
    snap = make_snapshot()
    snap.prices.add(model="chat", unit="cached_input_token", per_million=1.0)
    index = build_index(snap, secret_key=SECRET, env={})
    usage = TokenUsage(input_tokens=1000, output_tokens=100, cached_tokens=400)
    assert index.prices_for("chat").cost(usage) == pytest.approx((600 * 2 + 400 * 1 + 100 * 10) / 1e6)


def test_auth_header_builds_the_credential_header() -> None:
    snap = make_snapshot()
    snap.providers[0].auth_header = "X-Api-Key"
    headers = dict(build_index(snap, secret_key=SECRET, env={}).providers["up"].headers)
    assert headers["x-api-key"] == UPSTREAM_KEY and "authorization" not in headers


def test_invalid_auth_header_is_refused() -> None:
    snap = make_snapshot()
    snap.providers[0].auth_header = "bad header"
    with pytest.raises(ConfigError, match="not a valid HTTP header name") as caught:
        build_index(snap, secret_key=SECRET, env={})
    assert caught.value.issues[0].path == "providers[up].auth_header"
