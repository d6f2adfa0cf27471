"""Meters of relayed (streamed) media answers: they see each chunk as it passes and hold
a few KiB at most, whatever the answer's size.

- Speech audio and streamed transcripts are billed by what the request measured
  (characters of `input`, the upload's duration).
- Streamed image generation and edits (gpt-image-1 `stream: true`) are billed by the
  images completed (`image_generation.completed` / `image_edit.completed` events) and the
  tokens of each completed event's `usage` (it comes at the event's end, after the image;
  summed over the images of a call with `n` > 1).
"""

from __future__ import annotations

from typing import Protocol

import orjson

from ..protocols.ir import TokenUsage
from ..providers.base import Operation
from .answers import MediaUnits, token_usage
from .requests import MediaCall

__all__ = ["ImageStreamMeter", "StreamMeter", "stream_meter_for"]

_COMPLETED = (b"image_generation.completed", b"image_edit.completed")
# The event type is in its first bytes (`event:` line, or the data's leading "type").
_HEAD_BYTES = 256
# The usage object ends the completed event; a few hundred bytes in practice.
_TAIL_BYTES = 4096


class StreamMeter(Protocol):
    def feed(self, chunk: bytes) -> None: ...

    def units(self) -> MediaUnits: ...


class RequestMeter:
    """Billed by what the request measured, whatever the stream carries."""

    def __init__(self, call: MediaCall) -> None:
        if call.operation == Operation.AUDIO_SPEECH:
            self._units = MediaUnits(characters=call.characters)
        else:
            self._units = MediaUnits(audio_seconds=call.audio_seconds, estimated=True)

    def feed(self, chunk: bytes) -> None:
        pass

    def units(self) -> MediaUnits:
        return self._units


class ImageStreamMeter:
    """Counts the completed images of an OpenAI image stream (SSE, events end with a
    blank line) and keeps the usage of the last one."""

    def __init__(self) -> None:
        self.images = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self._reported = False
        self._head = b""
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        start = 0
        if self._tail.endswith(b"\n") and chunk.startswith(b"\n"):
            self._end_event()  # the blank line was split across chunks
            start = 1
        while True:
            end = chunk.find(b"\n\n", start)
            if end < 0:
                self._append(chunk[start:])
                return
            self._append(chunk[start:end])
            self._end_event()
            start = end + 2

    def _append(self, data: bytes) -> None:
        if len(self._head) < _HEAD_BYTES:
            self._head += data[: _HEAD_BYTES - len(self._head)]
        self._tail = (self._tail + data[-_TAIL_BYTES:])[-_TAIL_BYTES:]

    def _end_event(self) -> None:
        if any(marker in self._head for marker in _COMPLETED):
            self.images += 1
            tokens = token_usage(_usage_object(self._tail))
            if tokens is not None:
                self._reported = True
                self.input_tokens += tokens.input_tokens
                self.output_tokens += tokens.output_tokens
        self._head = self._tail = b""

    def units(self) -> MediaUnits:
        if not self._reported:
            return MediaUnits(images=self.images)
        usage = TokenUsage(input_tokens=self.input_tokens, output_tokens=self.output_tokens)
        return MediaUnits(images=self.images, usage=usage)


def _usage_object(tail: bytes) -> object:
    """The JSON object after the last `"usage":` of `tail`, or None."""
    at = tail.rfind(b'"usage"')
    start = tail.find(b"{", at) if at >= 0 else -1
    if start < 0:
        return None
    depth = 0
    for i in range(start, len(tail)):
        byte = tail[i]
        if byte == 0x7B:  # {
            depth += 1
        elif byte == 0x7D:  # }
            depth -= 1
            if depth == 0:
                try:
                    return orjson.loads(tail[start : i + 1])
                except orjson.JSONDecodeError:
                    return None
    return None


def stream_meter_for(call: MediaCall) -> StreamMeter:
    if call.operation in (Operation.IMAGES_GENERATIONS, Operation.IMAGES_EDITS):
        return ImageStreamMeter()
    return RequestMeter(call)
