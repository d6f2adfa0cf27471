"""Metering a relayed stream with bounded memory, for every way a stream can end.

A stream that completes with the upstream's usage is billed at that usage. Otherwise
(docs/billing.md, "Abnormal calls") the gateway bills what the upstream produced
until the gateway stopped reading: the caller went away, the upstream failed or went
silent mid-stream, or it never reported usage. The upstream's own figures are kept
where it sent them (an Anthropic stream reports its prompt at the start); what is
missing is counted locally from the stream's text and the usage is marked estimated.

To count locally the relay keeps the raw upstream bytes only up to `buffer_limit`;
past that it decodes them, counts their tokens and drops them, so a stream of any
length costs at most that much memory (plus the decoder's partial event). Streams
shorter than the limit that end normally are never decoded a second time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .protocols.ir import StreamDecoder, TextDelta, ThinkingDelta, TokenUsage, ToolCallDelta, ToolCallStart
from .protocols.translate import CODECS
from .providers.base import StreamRelay
from .token_count import estimate_text_tokens

__all__ = ["BUFFER_LIMIT", "MeteringRelay"]

log = logging.getLogger(__name__)

# Raw upstream bytes kept before they are counted and dropped. OpenAI-style SSE spends
# ~150 bytes per token, so most answers (< ~400 tokens) never need counting at all.
BUFFER_LIMIT = 64 * 1024


class MeteringRelay:
    """Wraps a StreamRelay (passthrough or translating) and meters its stream.

    `feed` / `finish` / `error` behave as the inner relay's; `usage(complete=...)` is
    the call's usage once the relay is done: `complete` is False when the stream was
    cut short (caller gone, upstream error event, timeout or reset mid-stream)."""

    __slots__ = (
        "_decoder",
        "_estimate_input",
        "_failed",
        "_inner",
        "_limit",
        "_output",
        "_pending",
        "_pending_bytes",
        "_reasoning",
        "_wire",
    )

    def __init__(
        self,
        inner: StreamRelay,
        wire: str,
        estimate_input: Callable[[], int],
        *,
        buffer_limit: int = BUFFER_LIMIT,
    ) -> None:
        self._inner = inner
        self._wire = wire
        # The prompt's tokens counted locally; only called when the upstream sent none.
        self._estimate_input = estimate_input
        self._limit = buffer_limit
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._decoder: StreamDecoder | None = None
        self._failed = False  # local counting failed once: stop trying, bill what is known
        self._output = 0  # output tokens counted locally so far (reasoning included)
        self._reasoning = 0

    @property
    def error(self) -> str | None:
        return self._inner.error

    @property
    def buffered_bytes(self) -> int:
        """Raw bytes held for local counting (never much more than the limit)."""
        return self._pending_bytes

    def feed(self, chunk: bytes) -> bytes:
        out = self._inner.feed(chunk)
        if not self._failed:
            self._pending.append(chunk)
            self._pending_bytes += len(chunk)
            if self._pending_bytes > self._limit:
                self._count_pending(final=False)
        return out

    def finish(self) -> bytes:
        return self._inner.finish()

    def usage(self, *, complete: bool) -> TokenUsage:
        """The usage to bill. Call after `finish` (or instead of it, when the upstream
        was abandoned); it releases the buffered bytes."""
        reported = self._inner.usage
        if complete and reported is not None:
            self._release()
            return reported
        self._count_pending(final=True)
        self._release()
        if reported is None:
            return TokenUsage(
                input_tokens=self._input_estimate(),
                output_tokens=self._output,
                reasoning_tokens=self._reasoning,
                estimated=True,
            )
        # Cut short after the upstream reported something (Anthropic's message_start,
        # Gemini's running totals): keep its figures, fill in what it had not reported.
        estimated = False
        input_tokens = reported.input_tokens
        if input_tokens == 0:
            input_tokens = self._input_estimate()
            estimated = True
        output_tokens = reported.output_tokens
        if self._output > output_tokens:
            output_tokens = self._output
            estimated = True
        return TokenUsage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_tokens=reported.cached_tokens,
            cache_creation_tokens=reported.cache_creation_tokens,
            reasoning_tokens=max(reported.reasoning_tokens, self._reasoning),
            estimated=estimated,
        )

    def _input_estimate(self) -> int:
        try:
            return self._estimate_input()
        except Exception:  # counting never fails a call
            log.warning("could not count the prompt tokens of a %s stream", self._wire, exc_info=True)
            return 0

    def _release(self) -> None:
        self._pending = []
        self._pending_bytes = 0
        self._decoder = None

    def _count_pending(self, *, final: bool) -> None:
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        if self._failed:
            return
        try:
            if self._decoder is None:
                self._decoder = CODECS[self._wire].stream_decoder()
            decoder = self._decoder
            text: list[str] = []
            thinking: list[str] = []
            events = [event for chunk in pending for event in decoder.feed(chunk)]
            if final:
                events.extend(decoder.finish())
            for event in events:
                if isinstance(event, ThinkingDelta):
                    thinking.append(event.text)
                elif isinstance(event, TextDelta):
                    text.append(event.text)
                elif isinstance(event, ToolCallDelta):
                    text.append(event.arguments)
                elif isinstance(event, ToolCallStart):
                    text.append(event.name)
        except Exception:
            # A stream the decoder cannot read (the relay passed it on regardless):
            # bill what was counted so far rather than fail or keep buffering.
            log.warning("could not read a %s stream to count its tokens", self._wire, exc_info=True)
            self._failed = True
            self._decoder = None
            return
        reasoning = estimate_text_tokens("".join(thinking))
        self._reasoning += reasoning
        self._output += reasoning + estimate_text_tokens("".join(text))
