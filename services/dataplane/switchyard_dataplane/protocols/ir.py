"""The gateway's neutral representation of a chat call, shared by every protocol codec.

Translation between two wire protocols is always `codec A -> IR -> codec B`; no codec
knows another. The IR keeps what the protocols have in common and what a faithful
translation needs (thinking blocks with their signatures, tool-call ids, cached and
reasoning tokens); protocol-only extras survive in `extra` only when the caller and the
upstream speak the same protocol (and then the body is passed through anyway).

Conventions:
- Roles are "user" and "assistant". Tool results are `ToolResultPart`s in a user
  message (Anthropic's and Gemini's model); OpenAI `role: tool` messages map to that.
- Tool-call arguments are a JSON *string* (what OpenAI streams and sends); codecs that
  carry objects (Anthropic `input`, Gemini `args`) dump / load at their edge.
- System prompts are text parts outside the message list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

__all__ = [
    "ChatRequest",
    "ChatResponse",
    "Codec",
    "ErrorInfo",
    "ErrorKind",
    "ImagePart",
    "Message",
    "MessageStart",
    "Part",
    "Reasoning",
    "StopReason",
    "StreamDecoder",
    "StreamEncoder",
    "StreamEnd",
    "StreamEvent",
    "TextDelta",
    "TextPart",
    "ThinkingDelta",
    "ThinkingPart",
    "ThinkingSignature",
    "TokenUsage",
    "Tool",
    "ToolCallDelta",
    "ToolCallPart",
    "ToolCallStart",
    "ToolChoice",
    "ToolResultPart",
    "UsageUpdate",
]


# --- content -------------------------------------------------------------------------


@dataclass(slots=True)
class TextPart:
    text: str


@dataclass(slots=True)
class ImagePart:
    """An image by URL, or inline as base64 `data` with its `media_type`."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: str | None = None  # OpenAI's low / high / auto


@dataclass(slots=True)
class ToolCallPart:
    id: str
    name: str
    arguments: str  # JSON text


@dataclass(slots=True)
class ToolResultPart:
    tool_call_id: str
    content: list[TextPart | ImagePart]
    is_error: bool = False
    # Gemini answers a function call by name, not by id; codecs that need the name of
    # the call being answered find it here (filled from the earlier ToolCallPart).
    name: str | None = None


@dataclass(slots=True)
class ThinkingPart:
    """Model reasoning. `signature` must be sent back unchanged to Anthropic;
    `redacted_data` is Anthropic's encrypted `redacted_thinking`."""

    text: str
    signature: str | None = None
    redacted_data: str | None = None


Part = TextPart | ImagePart | ToolCallPart | ToolResultPart | ThinkingPart


@dataclass(slots=True)
class Message:
    role: str  # "user" | "assistant"
    parts: list[Part]


# --- request -------------------------------------------------------------------------


@dataclass(slots=True)
class Tool:
    name: str
    description: str | None
    parameters: dict[str, Any]  # JSON Schema of the arguments


@dataclass(slots=True)
class ToolChoice:
    mode: str  # "auto" | "none" | "required" | "tool"
    name: str | None = None  # with mode "tool"


@dataclass(slots=True)
class Reasoning:
    """Requested reasoning: OpenAI's `reasoning_effort`, Anthropic's `thinking` budget,
    Gemini's `thinkingConfig`. Codecs convert between effort and budget with
    `effort_to_budget` / `budget_to_effort` in translate.py."""

    enabled: bool = True
    effort: str | None = None  # "minimal" | "low" | "medium" | "high"
    budget_tokens: int | None = None


@dataclass(slots=True)
class ChatRequest:
    model: str
    messages: list[Message]
    system: list[TextPart] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    # The caller wants usage in the stream (OpenAI include_usage; always true for
    # Anthropic and Gemini callers, whose streams always carry usage).
    stream_usage: bool = False
    reasoning: Reasoning | None = None
    user: str | None = None
    # Fields of the caller's protocol with no IR equivalent, kept for same-protocol use.
    extra: dict[str, Any] = field(default_factory=dict)


# --- response ------------------------------------------------------------------------


class StopReason(StrEnum):
    END_TURN = "end_turn"
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"
    TOOL_USE = "tool_use"
    CONTENT_FILTER = "content_filter"
    PAUSE = "pause_turn"
    ERROR = "error"


@dataclass(slots=True)
class TokenUsage:
    input_tokens: int = 0  # all prompt tokens, cached ones included
    output_tokens: int = 0  # all completion tokens, reasoning ones included
    cached_tokens: int = 0  # prompt tokens read from cache
    cache_creation_tokens: int = 0  # prompt tokens written to cache (Anthropic)
    reasoning_tokens: int = 0
    estimated: bool = False  # counted by the gateway, not reported by the upstream


@dataclass(slots=True)
class ChatResponse:
    id: str
    model: str
    parts: list[Part]  # TextPart, ThinkingPart, ToolCallPart
    stop_reason: StopReason | None
    stop_sequence: str | None = None
    usage: TokenUsage | None = None
    created: int | None = None  # Unix seconds


# --- streaming -------------------------------------------------------------------------


@dataclass(slots=True)
class MessageStart:
    id: str
    model: str
    usage: TokenUsage | None = None  # input tokens when known up front (Anthropic)


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ThinkingDelta:
    text: str


@dataclass(slots=True)
class ThinkingSignature:
    signature: str


@dataclass(slots=True)
class ToolCallStart:
    index: int  # ordinal of the tool call within this response (0, 1, ...)
    id: str
    name: str


@dataclass(slots=True)
class ToolCallDelta:
    index: int
    arguments: str  # a fragment of the JSON text


@dataclass(slots=True)
class UsageUpdate:
    usage: TokenUsage  # cumulative, replaces any earlier figure


@dataclass(slots=True)
class StreamEnd:
    """The model stopped. A stream has exactly one; usage may still follow (OpenAI
    sends its usage chunk after the finish chunk)."""

    stop_reason: StopReason | None
    stop_sequence: str | None = None
    # Set when the upstream reported an error inside the stream (stop_reason ERROR);
    # encoders then end the caller's stream with an error in its protocol.
    error: ErrorInfo | None = None


StreamEvent = (
    MessageStart
    | TextDelta
    | ThinkingDelta
    | ThinkingSignature
    | ToolCallStart
    | ToolCallDelta
    | UsageUpdate
    | StreamEnd
)


# --- errors --------------------------------------------------------------------------


class ErrorKind(StrEnum):
    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    REQUEST_TOO_LARGE = "request_too_large"
    RATE_LIMIT = "rate_limit"
    OVERLOADED = "overloaded"
    TIMEOUT = "timeout"
    API_ERROR = "api_error"


@dataclass(slots=True)
class ErrorInfo:
    kind: ErrorKind
    message: str
    code: str | None = None


# --- the codec interface -------------------------------------------------------------


class StreamDecoder(Protocol):
    """Reads an upstream stream of this protocol as it arrives."""

    def feed(self, chunk: bytes) -> list[StreamEvent]: ...

    def finish(self) -> list[StreamEvent]: ...


class StreamEncoder(Protocol):
    """Writes IR events as this protocol's stream (SSE bytes) for the caller."""

    def encode(self, event: StreamEvent) -> bytes: ...

    def finish(self) -> bytes:
        """Closing bytes (OpenAI `data: [DONE]`, Anthropic `message_stop`, ...)."""
        ...


class Codec(Protocol):
    """One wire protocol, both directions. Pure functions over plain data: raise
    `switchyard_common.errors.InvalidRequest` for a request that cannot be understood."""

    name: str

    def parse_request(self, payload: dict[str, Any]) -> ChatRequest: ...

    def build_request(self, request: ChatRequest, upstream_model: str) -> dict[str, Any]: ...

    def parse_response(self, payload: dict[str, Any]) -> ChatResponse: ...

    def build_response(self, response: ChatResponse, model: str) -> dict[str, Any]: ...

    def stream_decoder(self) -> StreamDecoder: ...

    def stream_encoder(self, model: str, *, include_usage: bool) -> StreamEncoder: ...

    def parse_error(self, status: int, body: bytes) -> ErrorInfo: ...

    def build_error(self, status: int, error: ErrorInfo) -> dict[str, Any]: ...
