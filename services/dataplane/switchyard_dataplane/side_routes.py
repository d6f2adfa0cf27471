"""The hot routes besides chat: OpenAI `POST /v1/embeddings` (passed through to
providers that serve embeddings) and Anthropic `POST /v1/messages/count_tokens`
(forwarded to an Anthropic upstream, counted locally otherwise)."""

from __future__ import annotations

from typing import ClassVar

import orjson
from switchyard_common.errors import InvalidRequest, SwitchyardError, UpstreamTimeout, UpstreamUnreachable

from .asgi_io import Receive, Send, read_body
from .call_handler import CallHandler, Incoming, retry_headers
from .chat_request import parse_count_tokens_body, parse_embeddings_body
from .exchange import estimate_input_tokens, upstream_failure
from .index import SnapshotIndex, Target
from .protocols.ir import TokenUsage
from .providers.base import ChatCall, Operation, UpstreamRequest, Wire
from .token_count import estimate_text_tokens
from .usage_events import CallRecord

__all__ = ["CountTokensHandler", "EmbeddingsHandler"]


def _embedding_input_tokens(call: ChatCall) -> int:
    given = call.payload.get("input")
    items = [given] if isinstance(given, str) else given if isinstance(given, list) else []
    # Token-id inputs are already tokens.
    return sum(
        estimate_text_tokens(item) if isinstance(item, str) else len(item) if isinstance(item, list) else 1
        for item in items
    )


class EmbeddingsHandler(CallHandler):
    route_names: ClassVar[dict[str, str]] = {Wire.OPENAI: "embeddings"}

    async def _handle(
        self, index: SnapshotIndex, record: CallRecord, incoming: Incoming, receive: Receive, send: Send
    ) -> None:
        raw = await read_body(receive, self._max_body)
        if record.audit is not None:
            record.audit.request(raw)
        call = parse_embeddings_body(raw)
        route = await self._route_and_admit(
            index, record, call.model, call.payload, lambda: _embedding_input_tokens(call)
        )

        def unsupported(target: Target) -> SwitchyardError:
            return InvalidRequest(
                f"the model '{call.model}' is served by provider '{target.runtime.slug}' "
                f"({target.runtime.api_format}), which cannot serve embeddings",
                code="unsupported_operation",
                param="model",
            )

        async def build(t: Target) -> UpstreamRequest | None:
            return t.runtime.adapter.side_request(t.runtime, Operation.EMBEDDINGS, call, t.upstream_model)

        target, _, response, attempt_started = await self._call_targets(
            call, record, index, route, build, unsupported
        )
        body = await self._read_body(record, target, response, attempt_started)
        usage = target.runtime.adapter.parse_response(body)
        record.usage = usage or TokenUsage(input_tokens=_embedding_input_tokens(call), estimated=True)
        await self._send_json(
            record, send, response.status, body, response.content_type or "application/json"
        )


class CountTokensHandler(CallHandler):
    route_names: ClassVar[dict[str, str]] = {Wire.ANTHROPIC: "count_tokens"}
    # Counting is free at Anthropic and not a model call: no usage event.
    emits_usage = False

    async def _handle(
        self, index: SnapshotIndex, record: CallRecord, incoming: Incoming, receive: Receive, send: Send
    ) -> None:
        call = parse_count_tokens_body(await read_body(receive, self._max_body), incoming.forward_headers)
        record.model = call.model
        route = index.route_for(record.key, call.model)
        # The model's first choice decides: its tokenizer is the one that will count.
        target = self._plan(index, record, route).targets[0]
        runtime = target.runtime
        request = runtime.adapter.side_request(runtime, Operation.COUNT_TOKENS, call, target.upstream_model)
        if request is not None:
            try:
                response = await self._send_upstream(record, target, request)
                body = await response.read()
            except (UpstreamTimeout, UpstreamUnreachable):
                pass  # an estimate beats no answer
            else:
                if response.status >= 400:
                    raise upstream_failure(call, runtime, response.status, body, retry_headers(response))
                await self._send_json(record, send, response.status, body, "application/json")
                return
        counted = orjson.dumps({"input_tokens": estimate_input_tokens(call)})
        await self._send_json(record, send, 200, counted, "application/json")
