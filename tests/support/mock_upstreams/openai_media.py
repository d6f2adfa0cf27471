"""OpenAI media endpoints in the real wire formats: images (generations, edits,
variations) and audio (transcriptions, translations, speech); plus Mistral OCR
(`.../ocr`) and the gateway's segmentation format (`.../vision/segmentations`), answered
by documents.py; requests are read by media_forms.py. Azure
deployment paths (`/openai/deployments/{d}/images/generations?api-version=...`) answer
the same, the deployment standing in for a missing `model`.

A multipart request is recorded as its form fields plus, per file field, each file's
name, content type, size and SHA-256, never its bytes (`MediaRequest.recorded`).

Answers are deterministic:
  images      one 1x1 PNG per item (`b64_json`, or a URL on this mock); `revised_prompt`
              for dall-e-3*; gpt-image* always b64_json, with token `usage` (input: prompt
              words + 85 per input image; output: per image, by quality and size)
  transcribe  "transcript of <file> (<duration> s)"; the duration is read from a WAV
              header (stdlib `wave`), else size / 16,000 B/s; json usage by duration (whole
              seconds, rounded up), or by tokens for gpt-4o* (10 audio tokens per second);
              translations carry no usage, as OpenAI's do
  speech      `speech_audio(input, format)`: 50 ms of audio per character, relayed in
              chunks of `SPEECH_CHUNK` bytes
  ocr         one page per entry of `pages`, else N for a URL naming "...-N-pages...",
              else 1 for an image and 2 for a document
  segment     per input image, one mask per point, else per comma-separated prompt label
  no-usage*   no usage / usage_info
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import mimetypes
import struct
import time
import wave
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from .behaviour import IMAGE_PROMPT_TOKENS, MockInvalid, word_count
from .documents import ocr, segmentations
from .media_forms import (
    KINDS,
    PIXEL_PNG,
    MediaRequest,
    Upload,
    field_bool,
    field_choice,
    field_int,
    field_number,
    field_strings,
    field_text,
    kind_of,
    read,
)

__all__ = [
    "KINDS",
    "PIXEL_PNG",
    "SPEECH_CHUNK",
    "MediaRequest",
    "audio_duration",
    "kind_of",
    "read",
    "respond",
    "speech_audio",
]

_MULTIPART_KINDS = frozenset(
    {"images/edits", "images/variations", "audio/transcriptions", "audio/translations"}
)
_IMAGE_SIZES = ("256x256", "512x512", "1024x1024", "1792x1024", "1024x1792", "1536x1024", "1024x1536", "auto")
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
# gpt-image-1 output tokens per 1024x1024 image; the oblong sizes cost 1.5 times as much.
_GPT_IMAGE_TOKENS = {"low": 272, "medium": 1056, "high": 4160}
_AUDIO_EXTENSIONS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
_TRANSCRIPT_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
ASSUMED_BYTES_PER_SECOND = 16_000  # a 128 kbit/s upload, for audio `wave` cannot read
AUDIO_TOKENS_PER_SECOND = 10
_LANGUAGES = {"en": "english", "fr": "french", "de": "german", "es": "spanish", "it": "italian"}
SPEECH_RATE = 24_000
SECONDS_PER_CHARACTER = 0.05
SPEECH_CHUNK = 4096
SPEECH_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


async def respond(media: MediaRequest, *, azure_deployment: str | None, base_url: str) -> Response:
    if media.kind in _MULTIPART_KINDS and not media.multipart:
        content_type = media.content_type or "none"
        raise MockInvalid(f"Invalid Content-Type header ({content_type}), expected multipart/form-data.")
    if media.error:
        raise MockInvalid(media.error)
    if media.kind not in _MULTIPART_KINDS and (media.multipart or not isinstance(media.body, dict)):
        raise MockInvalid("The request body must be a JSON object.")
    model = media.model(azure_deployment)
    if not model:
        raise MockInvalid("you must provide a model parameter")
    return _HANDLERS[media.kind](media, model, base_url)


# -- images ------------------------------------------------------------------------------


def _check_image(name: str, upload: Upload) -> None:
    mime = upload.content_type
    if not mime or mime == "application/octet-stream":
        mime = mimetypes.guess_type(upload.filename)[0] or mime
    if mime not in _IMAGE_TYPES:
        raise MockInvalid(
            f"Invalid file '{name}': unsupported mimetype ('{mime}'). "
            f"Supported file formats are {', '.join(repr(t) for t in _IMAGE_TYPES)}."
        )
    if not upload.data:
        raise MockInvalid(f"Invalid file '{name}': the file is empty.")


def _input_images(media: MediaRequest) -> int:
    images = [*media.files.get("image", []), *media.files.get("image[]", [])]
    if not images:
        raise MockInvalid("Missing required parameter: 'image'.")
    if media.kind == "images/variations" and len(images) > 1:
        raise MockInvalid("Invalid 'image': a variation takes exactly one image.")
    for upload in images:
        _check_image("image", upload)
    for upload in media.files.get("mask", []):
        _check_image("mask", upload)
    return len(images)


def _images(media: MediaRequest, model: str, base_url: str) -> Response:
    body = media.body
    prompt = None if media.kind == "images/variations" else field_text(body, "prompt", required=True)
    input_images = 0 if media.kind == "images/generations" else _input_images(media)
    stream = field_bool(body, "stream")
    if stream and (not model.startswith("gpt-image") or media.kind == "images/variations"):
        raise MockInvalid("Streaming is only supported for GPT image models.")
    n = field_int(body, "n", 1, 1, 10)
    size = field_choice(body, "size", _IMAGE_SIZES, "1024x1024")
    gpt_image = model.startswith("gpt-image")
    response_format = field_choice(body, "response_format", ("url", "b64_json"), "url")
    if gpt_image:
        response_format = "b64_json"  # GPT image models always answer base64
    data: list[dict[str, Any]] = []
    for index in range(n):
        item: dict[str, Any] = (
            {"b64_json": base64.b64encode(PIXEL_PNG).decode()}
            if response_format == "b64_json"
            else {"url": f"{base_url}_images/pixel.png?item={index}"}
        )
        if model.startswith("dall-e-3") and prompt is not None:
            item["revised_prompt"] = f"revised: {prompt}"
        data.append(item)
    answer: dict[str, Any] = {"created": int(time.time()), "data": data}
    if gpt_image:
        quality = field_text(body, "quality") or "auto"
        quality = "medium" if quality in ("auto", "standard") else quality
        size = "1024x1024" if size == "auto" else size
        answer.update(
            background=field_text(body, "background") or "opaque",
            output_format=field_text(body, "output_format") or "png",
            quality=quality,
            size=size,
        )
        if not model.startswith("no-usage"):
            per_image = _GPT_IMAGE_TOKENS.get(quality, _GPT_IMAGE_TOKENS["medium"])
            if size in ("1536x1024", "1024x1536"):
                per_image = per_image * 3 // 2
            text_tokens = max(1, word_count(prompt or ""))
            image_tokens = IMAGE_PROMPT_TOKENS * input_images
            output_tokens = per_image * n
            answer["usage"] = {
                "input_tokens": text_tokens + image_tokens,
                "output_tokens": output_tokens,
                "total_tokens": text_tokens + image_tokens + output_tokens,
                "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
                "output_tokens_details": {"image_tokens": output_tokens, "text_tokens": 0},
            }
    if stream:
        partials = field_int(body, "partial_images", 0, 0, 3)
        event = "image_edit" if media.kind == "images/edits" else "image_generation"
        return StreamingResponse(_image_events(answer, event, partials), media_type="text/event-stream")
    return JSONResponse(answer)


async def _image_events(answer: dict[str, Any], event: str, partials: int) -> AsyncIterator[bytes]:
    """OpenAI's image stream: per image, `partials` partial images then the completed one,
    whose `usage` (this image's share of the call's) comes last, after the image."""
    n = len(answer["data"])
    usage = answer.get("usage")
    settings: dict[str, Any] = {
        k: answer[k] for k in ("background", "output_format", "quality", "size") if k in answer
    }
    for item in answer["data"]:
        for index in range(partials):
            partial = {
                "type": f"{event}.partial_image",
                "b64_json": item["b64_json"],
                "created_at": answer["created"],
                **settings,
                "partial_image_index": index,
            }
            yield f"event: {event}.partial_image\ndata: {json.dumps(partial)}\n\n".encode()
            await asyncio.sleep(0)
        completed: dict[str, Any] = {
            "type": f"{event}.completed",
            "b64_json": item["b64_json"],
            "created_at": answer["created"],
            **settings,
        }
        if usage is not None:
            completed["usage"] = {
                "input_tokens": usage["input_tokens"] // n,
                "output_tokens": usage["output_tokens"] // n,
                "total_tokens": (usage["input_tokens"] + usage["output_tokens"]) // n,
                "input_tokens_details": {"text_tokens": 0, "image_tokens": 0},
            }
        yield f"event: {event}.completed\ndata: {json.dumps(completed)}\n\n".encode()


# -- audio in ----------------------------------------------------------------------------


def audio_duration(data: bytes) -> float:
    """Seconds of audio in `data`: exact for a WAV file, else estimated from its size."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            return round(wav.getnframes() / wav.getframerate(), 3)
    except (wave.Error, EOFError, ZeroDivisionError):
        return round(max(len(data), 1) / ASSUMED_BYTES_PER_SECOND, 3)


def _stamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _segment(text: str, duration: float) -> dict[str, Any]:
    return {
        "id": 0,
        "seek": 0,
        "start": 0.0,
        "end": duration,
        "text": text,
        "tokens": [50364 + i for i in range(word_count(text))],
        "temperature": 0.0,
        "avg_logprob": -0.25,
        "compression_ratio": 1.0,
        "no_speech_prob": 0.05,
    }


def _words(text: str, duration: float) -> list[dict[str, Any]]:
    words = text.split()
    step = duration / max(len(words), 1)
    return [
        {"word": word, "start": round(i * step, 3), "end": round((i + 1) * step, 3)}
        for i, word in enumerate(words)
    ]


def _transcribe(media: MediaRequest, model: str, _base_url: str) -> Response:
    body = media.body
    translate = media.kind == "audio/translations"
    uploads = media.files.get("file")
    if not uploads:
        raise MockInvalid("Missing required parameter: 'file'.")
    upload = uploads[0]
    extension = upload.filename.rsplit(".", 1)[-1].lower() if "." in upload.filename else ""
    if extension not in _AUDIO_EXTENSIONS:
        raise MockInvalid(f"Invalid file format. Supported formats: {list(_AUDIO_EXTENSIONS)}")
    if not upload.data:
        raise MockInvalid("Audio file might be corrupted or unsupported")
    response_format = field_choice(body, "response_format", _TRANSCRIPT_FORMATS, "json")
    field_number(body, "temperature", 0.0, 1.0)
    by_tokens = model.startswith("gpt-4o") and not translate
    if by_tokens and response_format not in ("json", "text"):
        raise MockInvalid(
            f"response_format '{response_format}' is not compatible with model '{model}'. "
            "Use 'json' or 'text' instead."
        )
    duration = audio_duration(upload.data)
    prompt = field_text(body, "prompt") or ""
    verb = "translation" if translate else "transcript"
    text = f"{verb} of {upload.filename} ({duration:g} s)" + (f" [prompt: {prompt}]" if prompt else "")
    language = "english" if translate else _LANGUAGES.get(field_text(body, "language") or "en", "english")
    with_usage = not model.startswith("no-usage") and not translate

    if response_format == "text":
        return PlainTextResponse(text + "\n")
    if response_format in ("srt", "vtt"):
        separator = "," if response_format == "srt" else "."
        cue = f"{_stamp(0, separator)} --> {_stamp(duration, separator)}\n{text}\n\n"
        return PlainTextResponse("1\n" + cue if response_format == "srt" else "WEBVTT\n\n" + cue)
    answer: dict[str, Any] = {"text": text}
    if response_format == "verbose_json":
        answer = {
            "task": "translate" if translate else "transcribe",
            "language": language,
            "duration": duration,
            "text": text,
            "segments": [_segment(text, duration)],
        }
        granularities = [
            *field_strings(body, "timestamp_granularities[]"),
            *field_strings(body, "timestamp_granularities"),
        ]
        if "word" in granularities and not translate:
            answer["words"] = _words(text, duration)
    if with_usage and by_tokens:
        audio_tokens = math.ceil(duration * AUDIO_TOKENS_PER_SECOND)
        text_tokens = word_count(prompt)
        output_tokens = word_count(text)
        answer["usage"] = {
            "type": "tokens",
            "input_tokens": audio_tokens + text_tokens,
            "output_tokens": output_tokens,
            "total_tokens": audio_tokens + text_tokens + output_tokens,
            "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": text_tokens},
        }
    elif with_usage:
        answer["usage"] = {"type": "duration", "seconds": math.ceil(duration)}
    return JSONResponse(answer)


# -- audio out ---------------------------------------------------------------------------


def _samples(text: str) -> bytes:
    """16-bit little-endian mono PCM at SPEECH_RATE: a tone per character."""
    per_character = int(SPEECH_RATE * SECONDS_PER_CHARACTER)
    samples: list[int] = []
    for character in text or " ":
        pitch = 200 + 10 * (ord(character) % 50)
        step = 2 * math.pi * pitch / SPEECH_RATE
        samples.extend(int(8000 * math.sin(step * i)) for i in range(per_character))
    return struct.pack(f"<{len(samples)}h", *samples)


def _mp3(seconds: float) -> bytes:
    """MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz, 417 bytes, 1152 samples each)."""
    frames = math.ceil(seconds * 44_100 / 1152)
    return (b"\xff\xfb\x90\x64" + bytes(413)) * frames


def speech_audio(text: str, response_format: str = "mp3") -> bytes:
    """The audio the mock speaks for `text`: 50 ms per character (length proportional
    to the input), in `response_format`."""
    pcm = _samples(text)
    seconds = len(pcm) / 2 / SPEECH_RATE
    if response_format == "pcm":
        return pcm
    if response_format == "wav":
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(SPEECH_RATE)
            wav.writeframes(pcm)
        return out.getvalue()
    if response_format == "mp3":
        return _mp3(seconds)
    magic = {"opus": b"OggS", "aac": b"\xff\xf1", "flac": b"fLaC"}[response_format]
    return magic + pcm[: len(pcm) // 4]


async def _chunks(audio: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(audio), SPEECH_CHUNK):
        yield audio[start : start + SPEECH_CHUNK]
        await asyncio.sleep(0)


def _speech(media: MediaRequest, _model: str, _base_url: str) -> Response:
    body = media.body
    text = field_text(body, "input", required=True) or ""
    if len(text) > 4096:
        raise MockInvalid("Invalid 'input': string too long. Expected a string with maximum length 4096.")
    voice = body.get("voice")
    if not (isinstance(voice, str) and voice) and not (isinstance(voice, dict) and voice.get("id")):
        raise MockInvalid("Missing required parameter: 'voice'.")
    response_format = field_choice(body, "response_format", tuple(SPEECH_TYPES), "mp3")
    field_number(body, "speed", 0.25, 4.0)
    audio = speech_audio(text, response_format)
    return StreamingResponse(_chunks(audio), media_type=SPEECH_TYPES[response_format])


_HANDLERS: dict[str, Callable[[MediaRequest, str, str], Response]] = {
    "images/generations": _images,
    "images/edits": _images,
    "images/variations": _images,
    "audio/transcriptions": _transcribe,
    "audio/translations": _transcribe,
    "audio/speech": _speech,
    "ocr": ocr,
    "vision/segmentations": segmentations,
}
