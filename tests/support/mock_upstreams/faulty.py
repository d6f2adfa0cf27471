"""A controllable OpenAI-format mock upstream for the governance tests (routing,
failover, breakers, limits): it can be told to fail, throttle, stall or drop, per
upstream model name, and it counts what it received.

Rules are set per upstream model name with `PUT /_admin/rules/<model>` (a JSON object,
every field optional) and removed with `DELETE /_admin/rules[/<model>]`:

  status          answer this HTTP status with an OpenAI error body (500, 503, 429, 400 ...)
  retry_after     seconds, sent as Retry-After on error answers
  stall_ms        wait this long before the response headers (the gateway times out)
  drop            close the connection without answering
  drop_stream     streams: send 200 and the headers, then close before the first chunk
  stall_stream_ms streams: send 200 and the headers, then wait before the first chunk
  fail_first      the failure modes above apply only to the first N calls after the
                  rule was set (then the model answers normally); absent = every call
  throttle_after  calls after the first N get 429 (with retry_after)
  abort_stream_after  streams: close the connection after N content chunks (mid-stream)
  latency_ms      wait this long before answering, on every call (least_latency routing)
  prompt_tokens / completion_tokens   the usage figures to report (default: word counts)

Without a rule, model names still choose behaviour: "error-<status>", "slow-<ms>",
"drop"; anything else echoes the last user message ("echo: <text>").

Counters: `GET /_admin/calls` -> {"calls": {model: n, "<tag>/<model>": n},
"max_inflight": {model: n}}; `DELETE /_admin/calls` resets them. The tag is the
`x-mock-tag` request header, which a provider's `headers:` config can set, so calls can
be told apart per provider even for the same upstream model name.

Run: python -m tests.support.mock_upstreams.faulty --port N
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, fields
from typing import Any

import httpx
from aiohttp import web

__all__ = ["FaultyControl", "Rule", "make_app"]


@dataclass
class Rule:
    status: int | None = None
    retry_after: float | None = None
    stall_ms: float = 0.0
    drop: bool = False
    drop_stream: bool = False
    stall_stream_ms: float = 0.0
    fail_first: int | None = None
    throttle_after: int | None = None
    abort_stream_after: int | None = None
    latency_ms: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Rule:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown rule fields: {sorted(unknown)}")
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}


class State:
    def __init__(self) -> None:
        self.rules: dict[str, Rule] = {}
        # Calls seen since the model's rule was set (fail_first / throttle_after count these).
        self.rule_calls: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.inflight: Counter[str] = Counter()
        self.max_inflight: Counter[str] = Counter()

    def rule_for(self, model: str) -> Rule:
        rule = self.rules.get(model)
        if rule is not None:
            return rule
        if model.startswith("error-") and model[6:].isdigit():
            return Rule(status=int(model[6:]))
        if model.startswith("slow-") and model[5:].isdigit():
            return Rule(latency_ms=float(model[5:]))
        if model == "drop":
            return Rule(drop=True)
        return Rule()


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _error(status: int, retry_after: float | None, message: str) -> web.Response:
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    kind = "rate_limit_error" if status == 429 else "mock_error"
    body = {"error": {"message": message, "type": kind, "code": f"mock_{status}"}}
    return web.json_response(body, status=status, headers=headers)


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def _stream(
    request: web.Request, model: str, text: str, usage: dict[str, int], rule: Rule, failing: bool
) -> web.StreamResponse:
    include_usage = bool((request["body"].get("stream_options") or {}).get("include_usage"))
    response = web.StreamResponse(status=200, headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    if failing and rule.drop_stream:
        _abort(request)
        return response
    if failing and rule.stall_stream_ms:
        await asyncio.sleep(rule.stall_stream_ms / 1000)
    base = {
        "id": "chatcmpl-faulty",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    pieces = ["echo:", *text.split()]
    await response.write(
        _sse(
            {
                **base,
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                ],
            }
        )
    )
    for i, piece in enumerate(pieces):
        if rule.abort_stream_after is not None and i >= rule.abort_stream_after:
            _abort(request)
            return response
        content = piece if i == 0 else " " + piece
        await response.write(
            _sse({**base, "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]})
        )
    await response.write(_sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    if include_usage:
        await response.write(_sse({**base, "choices": [], "usage": usage}))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def _answer(request: web.Request, kind: str) -> web.StreamResponse:
    state: State = request.app["state"]
    try:
        body = await request.json()
    except ValueError:
        return _error(400, None, "body is not JSON")
    request["body"] = body
    model = str(body.get("model", ""))
    tag = request.headers.get("x-mock-tag")
    state.calls[model] += 1
    if tag:
        state.calls[f"{tag}/{model}"] += 1
    state.rule_calls[model] += 1
    n = state.rule_calls[model]
    rule = state.rule_for(model)
    failing = rule.fail_first is None or n <= rule.fail_first
    state.inflight[model] += 1
    state.max_inflight[model] = max(state.max_inflight[model], state.inflight[model])
    try:
        if rule.latency_ms:
            await asyncio.sleep(rule.latency_ms / 1000)
        if failing and rule.drop:
            _abort(request)
            return web.Response(status=500)
        if failing and rule.stall_ms:
            await asyncio.sleep(rule.stall_ms / 1000)
        if rule.throttle_after is not None and n > rule.throttle_after:
            return _error(429, rule.retry_after, f"mock upstream throttled {model}")
        if failing and rule.status is not None:
            return _error(rule.status, rule.retry_after, f"mock upstream error {rule.status}")
        if kind == "embeddings":
            inputs = body.get("input")
            items = inputs if isinstance(inputs, list) else [inputs]
            tokens = rule.prompt_tokens or sum(len(str(i).split()) for i in items)
            data = [
                {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(len(items))
            ]
            return web.json_response(
                {
                    "object": "list",
                    "data": data,
                    "model": model,
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                }
            )
        text = _last_user_text(body.get("messages") or [])
        words = ["echo:", *text.split()]
        prompt = rule.prompt_tokens if rule.prompt_tokens is not None else max(1, len(text.split()))
        completion = rule.completion_tokens if rule.completion_tokens is not None else len(words)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if body.get("stream"):
            return await _stream(request, model, text, usage, rule, failing)
        return web.json_response(
            {
                "id": "chatcmpl-faulty",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"echo: {text}"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
        )
    finally:
        state.inflight[model] -= 1


async def chat(request: web.Request) -> web.StreamResponse:
    return await _answer(request, "chat")


async def embeddings(request: web.Request) -> web.StreamResponse:
    return await _answer(request, "embeddings")


async def models(_request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": "faulty-mock", "object": "model"}]})


async def put_rule(request: web.Request) -> web.Response:
    state: State = request.app["state"]
    model = request.match_info["model"]
    try:
        rule = Rule.parse(await request.json())
    except (ValueError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    state.rules[model] = rule
    state.rule_calls[model] = 0
    return web.json_response({"model": model, "rule": rule.as_dict()})


async def delete_rules(request: web.Request) -> web.Response:
    state: State = request.app["state"]
    model = request.match_info.get("model")
    if model is None:
        state.rules.clear()
        state.rule_calls.clear()
    else:
        state.rules.pop(model, None)
        state.rule_calls.pop(model, None)
    return web.Response(status=204)


async def calls(request: web.Request) -> web.Response:
    state: State = request.app["state"]
    if request.method == "DELETE":
        state.calls.clear()
        state.max_inflight.clear()
        return web.Response(status=204)
    return web.json_response({"calls": dict(state.calls), "max_inflight": dict(state.max_inflight)})


def make_app() -> web.Application:
    app = web.Application()
    app["state"] = State()
    for prefix in ("", "/v1"):
        app.router.add_post(prefix + "/chat/completions", chat)
        app.router.add_post(prefix + "/embeddings", embeddings)
    app.router.add_get("/v1/models", models)
    app.router.add_put("/_admin/rules/{model}", put_rule)
    app.router.add_delete("/_admin/rules/{model}", delete_rules)
    app.router.add_delete("/_admin/rules", delete_rules)
    app.router.add_get("/_admin/calls", calls)
    app.router.add_delete("/_admin/calls", calls)
    return app


class FaultyControl:
    """The test side: set rules and read counters of a running faulty mock."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def rule(self, model: str, **rule: Any) -> None:
        response = httpx.put(f"{self.base}/_admin/rules/{model}", json=rule, timeout=5)
        response.raise_for_status()

    def clear(self, model: str | None = None) -> None:
        path = "/_admin/rules" if model is None else f"/_admin/rules/{model}"
        httpx.delete(self.base + path, timeout=5).raise_for_status()

    def calls(self) -> dict[str, int]:
        response = httpx.get(f"{self.base}/_admin/calls", timeout=5)
        response.raise_for_status()
        return dict(response.json()["calls"])

    def count(self, name: str) -> int:
        """Calls received for an upstream model name, or "<tag>/<model>"."""
        return self.calls().get(name, 0)

    def max_inflight(self, model: str) -> int:
        response = httpx.get(f"{self.base}/_admin/calls", timeout=5)
        response.raise_for_status()
        return int(response.json()["max_inflight"].get(model, 0))

    def reset_counts(self) -> None:
        httpx.delete(f"{self.base}/_admin/calls", timeout=5).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.mock_upstreams.faulty")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    web.run_app(make_app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
