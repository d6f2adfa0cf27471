"""One upstream exchange seen from the caller's protocol: which request goes up, and
what comes back down (body, stream, error, usage).

Same protocol on both sides: the adapter splices the caller's body and its relay passes
the stream through; nothing is re-encoded. Different protocols: the caller's payload is
translated up (`translate_request`) and answers are translated down (codecs for bodies,
`StreamTranslator` for streams, event by event). Either way usage comes from the
upstream, or is counted locally and marked estimated when the upstream reports none.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from switchyard_common.errors import SwitchyardError, UpstreamError, UpstreamStatusError

from .image_inline import ImageFetcher
from .index import Target
from .protocols.ir import (
    TokenUsage,
)
from .protocols.translate import (
    CODECS,
    StreamTranslator,
    build_request,
    parse_request,
    translate_error,
    translate_request,
)
from .providers.base import ChatCall, ProviderRuntime, StreamRelay, UpstreamRequest, Wire
from .stream_metering import MeteringRelay
from .token_count import (
    approximate_payload_tokens,
    estimate_request_tokens,
    estimate_response_tokens,
)

__all__ = [
    "TranslatingRelay",
    "estimate_input_tokens",
    "read_answer",
    "stream_relay_for",
    "upstream_failure",
    "upstream_request",
]

log = logging.getLogger(__name__)


async def upstream_request(call: ChatCall, target: Target, images: ImageFetcher) -> UpstreamRequest:
    """The chat request for one attempt (each failover attempt builds its own: targets
    may speak different protocols). Images given by URL are downloaded and sent inline
    to Gemini (image_inline.py); `images` keeps them across the call's attempts."""
    runtime = target.runtime
    adapter = runtime.adapter
    if call.protocol == adapter.wire:
        return adapter.build_request(runtime, call, target.upstream_model)
    if adapter.wire == Wire.GEMINI:
        request = parse_request(call.protocol, call.payload)
        await images.inline(request)
        payload = build_request(adapter.wire, request, target.upstream_model)
    else:
        payload = translate_request(call.protocol, adapter.wire, call.payload, target.upstream_model)
    return adapter.build_request(runtime, call, target.upstream_model, payload)


def upstream_failure(
    call: ChatCall,
    runtime: ProviderRuntime,
    status: int,
    body: bytes,
    headers: tuple[tuple[str, str], ...] = (),
) -> UpstreamStatusError:
    """The upstream's error status and body, in the caller's protocol; `headers` (its
    retry hints) go to the caller as they are."""
    adapter = runtime.adapter
    message = f"provider '{runtime.slug}' answered HTTP {status}"
    if call.protocol == adapter.wire:
        return UpstreamStatusError(status, adapter.error_body(status, body), message, headers=headers)
    caller_status, payload = translate_error(adapter.wire, call.protocol, status, body)
    return UpstreamStatusError(caller_status, orjson.dumps(payload), message, headers=headers)


def read_answer(
    call: ChatCall, target: Target, request: UpstreamRequest, body: bytes
) -> tuple[bytes, TokenUsage]:
    """The caller's body for a successful non-streamed answer, and the call's usage."""
    adapter = target.runtime.adapter
    if not request.translated:
        usage = adapter.parse_response(body)
        if usage is None:
            usage = TokenUsage(
                input_tokens=estimate_input_tokens(call),
                output_tokens=_estimate_body_output(adapter.wire, body),
                estimated=True,
            )
        return body, usage
    try:
        parsed = CODECS[adapter.wire].parse_response(orjson.loads(body))
    except SwitchyardError:
        raise
    except Exception as exc:
        raise UpstreamError(
            f"provider '{target.runtime.slug}' answered with a body the gateway cannot read: {exc}",
            code="bad_upstream_response",
        ) from None
    answer = orjson.dumps(CODECS[call.protocol].build_response(parsed, call.model))
    usage = parsed.usage
    if usage is None:
        usage = TokenUsage(
            input_tokens=estimate_input_tokens(call),
            output_tokens=_estimate_response(parsed),
            estimated=True,
        )
    return answer, usage


class TranslatingRelay:
    """A StreamRelay over `StreamTranslator`: upstream events in, caller events out."""

    __slots__ = ("_translator",)

    def __init__(self, translator: StreamTranslator) -> None:
        self._translator = translator

    @property
    def usage(self) -> TokenUsage | None:
        return self._translator.usage

    @property
    def error(self) -> str | None:
        error = self._translator.error
        return None if error is None else error.message

    def feed(self, chunk: bytes) -> bytes:
        return self._translator.feed(chunk)

    def finish(self) -> bytes:
        return self._translator.finish()


def stream_relay_for(call: ChatCall, target: Target, request: UpstreamRequest) -> MeteringRelay:
    adapter = target.runtime.adapter
    inner: StreamRelay
    if request.translated:
        # Anthropic callers always get usage in their stream; OpenAI callers when asked.
        include_usage = call.wants_usage or call.protocol != Wire.OPENAI
        translator = StreamTranslator(
            adapter.wire,
            call.protocol,
            call.model,
            include_usage,
            # Anthropic clients read the prompt's size from message_start, which
            # upstreams that count only at the end cannot fill: they see an estimate.
            start_usage=(lambda: _start_usage(call)) if call.protocol == Wire.ANTHROPIC else None,
        )
        inner = TranslatingRelay(translator)
    else:
        inner = adapter.stream_relay(strip_usage=request.strip_usage)
    return MeteringRelay(inner, adapter.wire, lambda: estimate_input_tokens(call))


# --- local counting: never fails a call ----------------------------------------------


def estimate_input_tokens(call: ChatCall) -> int:
    """Prompt tokens of the caller's request, counted locally."""
    payload: dict[str, Any] = call.payload
    if call.protocol == Wire.ANTHROPIC and "max_tokens" not in payload:
        payload = {**payload, "max_tokens": 1}  # count_tokens bodies have none
    try:
        return estimate_request_tokens(CODECS[call.protocol].parse_request(payload))
    except Exception:
        log.warning("could not count the prompt tokens of a %s request", call.protocol, exc_info=True)
        return 0


def _start_usage(call: ChatCall) -> TokenUsage:
    # Computed before the caller's first byte: never the tokenizer (13 ms for a
    # 100k-token prompt on the event loop), a character-based figure instead.
    return TokenUsage(input_tokens=approximate_payload_tokens(call.payload), estimated=True)


def _estimate_response(response: Any) -> int:
    try:
        return estimate_response_tokens(response)
    except Exception:
        log.warning("could not count the tokens of an answer", exc_info=True)
        return 0


def _estimate_body_output(wire: str, body: bytes) -> int:
    try:
        parsed = CODECS[wire].parse_response(orjson.loads(body))
    except Exception:
        log.warning("could not read a %s answer to count its tokens", wire, exc_info=True)
        return 0
    return _estimate_response(parsed)
