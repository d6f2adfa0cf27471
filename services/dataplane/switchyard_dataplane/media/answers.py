"""The billable units in a media answer (pure). Each reader takes the upstream's
success body and returns what the call is metered by; anything it cannot find falls
back to what the request said, marked estimated.

- image: the images in `data` (gpt-image answers also report tokens: billed too);
- asr: `usage.seconds` (`usage.type == "duration"`), else verbose_json's `duration`, else
  the upload's own duration; an answer with token usage (`usage.type == "tokens"`,
  gpt-4o-transcribe) is billed by its tokens, the seconds are kept for reporting;
- ocr: Mistral's `usage_info.pages_processed`, else the pages returned;
- vision-segment: the input images; tts: the input characters (both from the request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ..protocols.checks import wire_int
from ..protocols.ir import TokenUsage
from ..providers.base import Operation
from .requests import MediaCall

__all__ = ["MediaUnits", "token_usage", "units_of_answer"]


@dataclass(frozen=True, slots=True)
class MediaUnits:
    images: int = 0
    pages: int = 0
    audio_seconds: float = 0.0
    characters: int = 0
    # Tokens the answer reported (gpt-image, gpt-4o-transcribe), else None.
    usage: TokenUsage | None = None
    # Some unit was not in the answer and came from the request.
    estimated: bool = False


def _json(body: bytes, content_type: str | None) -> Any:
    if content_type is not None and "json" not in content_type.lower():
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def token_usage(usage: Any) -> TokenUsage | None:
    """OpenAI's media usage object (input_tokens / output_tokens), if it has tokens."""
    if not isinstance(usage, dict) or ("input_tokens" not in usage and "output_tokens" not in usage):
        return None
    return TokenUsage(
        input_tokens=wire_int(usage.get("input_tokens")), output_tokens=wire_int(usage.get("output_tokens"))
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


def _images(call: MediaCall, answer: Any) -> MediaUnits:
    data = answer.get("data") if isinstance(answer, dict) else None
    usage = token_usage(answer.get("usage")) if isinstance(answer, dict) else None
    if isinstance(data, list):
        return MediaUnits(images=len(data), usage=usage)
    return MediaUnits(images=call.expected.images, usage=usage, estimated=True)


def _transcription(call: MediaCall, answer: Any) -> MediaUnits:
    usage = answer.get("usage") if isinstance(answer, dict) else None
    if isinstance(usage, dict) and usage.get("type") == "duration":
        seconds = _number(usage.get("seconds"))
        if seconds is not None:
            return MediaUnits(audio_seconds=seconds)
    tokens = token_usage(usage)
    duration = _number(answer.get("duration")) if isinstance(answer, dict) else None
    if duration is not None:
        return MediaUnits(audio_seconds=duration, usage=tokens)
    # The upload's own duration, as the gateway measured it: billed only when the
    # answer reports no tokens, and then estimated (not the upstream's figure).
    return MediaUnits(audio_seconds=call.audio_seconds, usage=tokens, estimated=tokens is None)


def _ocr(call: MediaCall, answer: Any) -> MediaUnits:
    if isinstance(answer, dict):
        info = answer.get("usage_info")
        pages = _number(info.get("pages_processed")) if isinstance(info, dict) else None
        if pages is not None:
            return MediaUnits(pages=int(pages))
        listed = answer.get("pages")
        if isinstance(listed, list):
            return MediaUnits(pages=len(listed))
    return MediaUnits(pages=call.expected.pages, estimated=True)


def units_of_answer(call: MediaCall, body: bytes, content_type: str | None) -> MediaUnits:
    """What a successful, whole (non-streamed) answer to `call` is billed for."""
    operation = call.operation
    if operation == Operation.SEGMENTATIONS:
        return MediaUnits(images=call.input_images)
    if operation == Operation.AUDIO_SPEECH:
        return MediaUnits(characters=call.characters)
    answer = _json(body, content_type)
    if operation in (Operation.AUDIO_TRANSCRIPTIONS, Operation.AUDIO_TRANSLATIONS):
        return _transcription(call, answer)
    if operation == Operation.OCR:
        return _ocr(call, answer)
    return _images(call, answer)
