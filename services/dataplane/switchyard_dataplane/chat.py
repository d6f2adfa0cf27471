"""Chat calls, for OpenAI callers (`POST /v1/chat/completions`) and Anthropic callers
(`POST /v1/messages`): route, call the targets with failover (each attempt passes the
body through or translates it, per the target's protocol), relay the answer (streams
event by event) and record the call."""

from __future__ import annotations

from typing import Any, ClassVar

from .asgi_io import Receive, Send, read_body
from .call_handler import CallHandler, Incoming, not_ready
from .chat_request import parse_chat_body, parse_messages_body
from .exchange import estimate_input_tokens, read_answer, stream_relay_for, upstream_request
from .image_inline import AddressGuard, ImageFetcher, public_hosts_only
from .index import SnapshotIndex, Target
from .providers.base import ChatCall, UpstreamRequest, Wire
from .upstream import UpstreamResponse
from .usage_events import CallRecord

__all__ = ["ChatHandler", "not_ready"]


class ChatHandler(CallHandler):
    route_names: ClassVar[dict[str, str]] = {Wire.OPENAI: "chat_completions", Wire.ANTHROPIC: "messages"}

    def __init__(self, *, image_guard: AddressGuard = public_hosts_only, **common: Any) -> None:
        super().__init__(**common)
        # Which hosts caller-given image URLs may be downloaded from (Gemini targets).
        self._image_guard = image_guard

    def _parse(self, raw: bytes, incoming: Incoming) -> ChatCall:
        if self.protocol == Wire.ANTHROPIC:
            return parse_messages_body(raw, incoming.forward_headers)
        return parse_chat_body(raw)

    async def _handle(
        self, index: SnapshotIndex, record: CallRecord, incoming: Incoming, receive: Receive, send: Send
    ) -> None:
        raw = await read_body(receive, self._max_body)
        if record.audit is not None:
            record.audit.request(raw)
        call = self._parse(raw, incoming)
        record.stream = call.stream
        route = await self._route_and_admit(
            index, record, call.model, call.payload, lambda: estimate_input_tokens(call)
        )
        images = ImageFetcher(self._upstream, self._image_guard)
        target, request, response, attempt_started = await self._call_targets(
            call, record, index, route, lambda t: upstream_request(call, t, images)
        )
        if request.stream:
            await self._relay_stream(call, record, target, request, response, receive, send, attempt_started)
        else:
            await self._relay_body(call, record, target, request, response, send, attempt_started)

    async def _relay_body(
        self,
        call: ChatCall,
        record: CallRecord,
        target: Target,
        request: UpstreamRequest,
        response: UpstreamResponse,
        send: Send,
        attempt_started: float,
    ) -> None:
        body = await self._read_body(record, target, response, attempt_started)
        body, record.usage = read_answer(call, target, request, body)
        headers = [(b"content-type", b"application/json")]
        if not request.translated:
            headers = [(b"content-type", (response.content_type or "application/json").encode())]
            if response.content_encoding:
                headers.append((b"content-encoding", response.content_encoding.encode()))
        await self._send_body(record, send, response.status, headers, body)

    async def _relay_stream(
        self,
        call: ChatCall,
        record: CallRecord,
        target: Target,
        request: UpstreamRequest,
        response: UpstreamResponse,
        receive: Receive,
        send: Send,
        attempt_started: float,
    ) -> None:
        relay = stream_relay_for(call, target, request)
        content_type = b"text/event-stream"
        if not request.translated and response.content_type:
            content_type = response.content_type.encode()
        await self._start_stream(record, send, response.status, content_type)
        outcome = await self._pump(record, response, receive, send, relay.feed)
        tail = relay.finish()
        # A stream cut short is billed for what the upstream produced until the gateway
        # stopped reading, counted locally where the upstream had not reported it.
        record.usage = relay.usage(complete=outcome == "ok" and relay.error is None)
        if outcome == "ok" and relay.error is not None:
            # The upstream failed after its 200: the caller got the error event (in its
            # protocol) under that status, which is what the record keeps; the error
            # type tells billing and audit the answer is not a complete one.
            outcome = "error"
            record.error_type = "upstream_stream_error"
        await self._end_stream(record, send, target, outcome, attempt_started, response.status, tail)
