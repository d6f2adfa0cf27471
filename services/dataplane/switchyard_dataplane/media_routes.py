"""Media calls for OpenAI callers: image generation, edits and variations, audio
transcription, translation and speech, OCR (Mistral's wire format) and segmentation
(the gateway's own). Bodies pass through to OpenAI-protocol providers with only the
model replaced (media/requests.py); each call is metered in its capability's unit —
images, pages, seconds of audio, characters — read from the answer where the upstream
reports it (media/answers.py) and reserved against budgets beforehand at the most the
request can cost.

Whole answers (images, transcripts, OCR, segmentation) are read once to meter them;
speech audio, streamed transcripts and streamed images are relayed chunk by chunk,
metered as they pass with bounded memory (media/streams.py).
"""

from __future__ import annotations

from typing import Any, ClassVar

from switchyard_common.errors import InvalidRequest, SwitchyardError

from .asgi_io import Receive, Send, read_body
from .call_handler import CallHandler, Incoming
from .index import ModelRoute, SnapshotIndex, Target
from .media.answers import MediaUnits, units_of_answer
from .media.requests import CAPABILITY, MediaCall, parse_media
from .media.streams import stream_meter_for
from .protocols.ir import TokenUsage
from .providers.base import Operation, UpstreamRequest, Wire
from .upstream import UpstreamResponse
from .usage_events import CallRecord

__all__ = ["MediaHandler"]


def _no_prompt_tokens() -> int:
    """Media calls carry no prompt for token limits to count up front."""
    return 0


def _is_text(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.startswith("text/") or kind.endswith("json")


class MediaHandler(CallHandler):
    route_names: ClassVar[dict[str, str]] = {Wire.OPENAI: "media"}

    def __init__(self, *, operation: Operation, **common: Any) -> None:
        super().__init__(**common)
        self.operation = operation
        # Metrics label: images_generations, audio_speech, ocr, vision_segmentations, ...
        self.route = operation.value.replace("/", "_")

    def _check_route(self, route: ModelRoute) -> None:
        capability = CAPABILITY[self.operation]
        if route.capability != capability:
            raise InvalidRequest(
                f"the model '{route.name}' is a {route.capability} model; "
                f"/v1/{self.operation.value} serves {capability} models",
                code="model_capability_mismatch",
                param="model",
            )

    async def _handle(
        self, index: SnapshotIndex, record: CallRecord, incoming: Incoming, receive: Receive, send: Send
    ) -> None:
        raw = await read_body(receive, self._max_body)
        content_type = incoming.content_type.decode("latin-1") if incoming.content_type else ""
        call = parse_media(self.operation, raw, content_type)
        if record.audit is not None and record.audit.full:
            record.audit.request(call.audit_body())
        record.stream = call.stream
        route = await self._route_and_admit(
            index, record, call.model, call.payload, _no_prompt_tokens, call.expected
        )

        def unsupported(target: Target) -> SwitchyardError:
            return InvalidRequest(
                f"the model '{call.model}' is served by provider '{target.runtime.slug}' "
                f"({target.runtime.api_format}), which cannot serve /v1/{self.operation.value}",
                code="unsupported_operation",
                param="model",
            )

        async def build(t: Target) -> UpstreamRequest | None:
            runtime = t.runtime
            body = call.body_for(t.upstream_model)
            return runtime.adapter.media_request(
                runtime, self.operation, body, call.content_type, t.upstream_model, call.stream
            )

        target, _, response, attempt_started = await self._call_targets(
            call.as_call(), record, index, route, build, unsupported
        )
        if call.stream:
            await self._relay(call, record, target, response, receive, send, attempt_started)
            return
        body = await self._read_body(record, target, response, attempt_started)
        answer_type = response.content_type or "application/json"
        _meter(record, units_of_answer(call, body, answer_type))
        await self._send_body(record, send, response.status, [(b"content-type", answer_type.encode())], body)

    async def _relay(
        self,
        call: MediaCall,
        record: CallRecord,
        target: Target,
        response: UpstreamResponse,
        receive: Receive,
        send: Send,
        attempt_started: float,
    ) -> None:
        """Speech audio, a streamed transcript or streamed images, chunk by chunk as the
        upstream sends them, metered as they pass (media/streams.py)."""
        content_type = response.content_type or "application/octet-stream"
        text = _is_text(content_type)
        meter = stream_meter_for(call)
        size = 0

        def feed(chunk: bytes) -> bytes:
            nonlocal size
            size += len(chunk)
            meter.feed(chunk)
            return chunk

        await self._start_stream(record, send, response.status, content_type.encode())
        try:
            outcome = await self._pump(record, response, receive, send, feed, audit=text)
        finally:
            # What the upstream produced is billed, even if the caller left early.
            _meter(record, meter.units())
        if not text and record.audit is not None:
            # Audio is not kept in the audit log: what it was and how much of it.
            record.audit.response(f"[{content_type}, {size} bytes]".encode())
        await self._end_stream(record, send, target, outcome, attempt_started, response.status)


def _meter(record: CallRecord, units: MediaUnits) -> None:
    record.images = units.images
    record.pages = units.pages
    record.audio_seconds = units.audio_seconds
    record.characters = units.characters
    if units.usage is not None:
        record.usage = units.usage
    elif units.estimated:
        # No tokens; marks the event's units as the gateway's estimate, not the upstream's.
        record.usage = TokenUsage(estimated=True)
