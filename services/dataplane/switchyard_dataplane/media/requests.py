"""Media call requests (pure): validate what the gateway relies on, measure what the
call will be billed for at most, and give the body for each upstream model.

JSON routes (image generation, speech, OCR, segmentation) splice the model like chat;
multipart routes (image edits and variations, transcriptions, translations) rewrite the
`model` field and keep every other byte, files included. Everything else is the
upstream's to validate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from switchyard_common.errors import InvalidRequest

from ..chat_request import invalid_type, json_object, model_field, required_field
from ..jsonsplice import replace_top_level_string
from ..metering import CallUnits
from ..providers.base import ChatCall, Operation, Wire
from .audio_duration import audio_seconds
from .multipart import MultipartForm, parse_form

__all__ = ["CAPABILITY", "MediaCall", "parse_media"]

CAPABILITY: dict[str, str] = {
    Operation.IMAGES_GENERATIONS: "image",
    Operation.IMAGES_EDITS: "image",
    Operation.IMAGES_VARIATIONS: "image",
    Operation.AUDIO_TRANSCRIPTIONS: "asr",
    Operation.AUDIO_TRANSLATIONS: "asr",
    Operation.AUDIO_SPEECH: "tts",
    Operation.OCR: "ocr",
    Operation.SEGMENTATIONS: "vision-segment",
}
_MULTIPART = frozenset(
    {
        Operation.IMAGES_EDITS,
        Operation.IMAGES_VARIATIONS,
        Operation.AUDIO_TRANSCRIPTIONS,
        Operation.AUDIO_TRANSLATIONS,
    }
)
# Generous bound on `n`: the upstream enforces its own (OpenAI: 10); the gateway needs
# a number to reserve budget for.
_MAX_IMAGES = 128


@dataclass(frozen=True, slots=True)
class MediaCall:
    operation: str
    capability: str
    model: str
    # The JSON body, or the form's text fields.
    payload: dict[str, Any]
    body: bytes
    content_type: str
    form: MultipartForm | None
    # The answer is relayed chunk by chunk (speech audio, streamed transcriptions).
    stream: bool
    # The most the call can be billed for, in the capability's units (what admission reserves).
    expected: CallUnits
    # What the request itself meters: asr's upload duration (and whether a header gave
    # it), segmentation's input images, tts's characters.
    audio_seconds: float = 0.0
    seconds_measured: bool = False
    input_images: int = 0
    characters: int = 0

    def body_for(self, upstream_model: str) -> bytes:
        if upstream_model == self.model:
            return self.body
        if self.form is not None:
            return self.form.with_text("model", upstream_model)
        spliced = replace_top_level_string(self.body, "model", self.model, upstream_model)
        return spliced if spliced is not None else orjson.dumps({**self.payload, "model": upstream_model})

    def as_call(self) -> ChatCall:
        """The call as the attempt loop and error shaping see it (OpenAI protocol)."""
        return ChatCall(
            raw_body=self.body,
            payload=self.payload,
            model=self.model,
            stream=self.stream,
            has_stream_options=False,
            wants_usage=False,
            protocol=Wire.OPENAI,
        )

    def audit_body(self) -> bytes:
        """What the audit log keeps of the request: the JSON body, or a multipart form's
        text fields and a description of each file (never the file's bytes)."""
        if self.form is None:
            return self.body
        files = {
            part.name: {"filename": part.filename, "content_type": part.content_type, "size": part.size}
            for part in self.form.files()
        }
        return orjson.dumps({**self.payload, "files": files})


def _count(value: Any, param: str, *, form: bool = False) -> int:
    """`n` (a JSON number, or a form's text): how many images the call asks for."""
    if value is None:
        return 1
    if form and isinstance(value, str):
        value = int(value) if value.strip().isdigit() else value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_IMAGES:
        raise invalid_type(f"'{param}' must be an integer from 1 to {_MAX_IMAGES}", param)
    return value


def _text(payload: dict[str, Any], param: str) -> str:
    value = required_field(payload, param)
    if not isinstance(value, str) or not value:
        raise invalid_type(f"'{param}' must be a non-empty string", param)
    return value


def _json_call(operation: str, raw: bytes) -> MediaCall:
    payload = json_object(raw)
    model = model_field(payload)
    capability = CAPABILITY[operation]
    common: dict[str, Any] = {
        "operation": operation,
        "capability": capability,
        "model": model,
        "payload": payload,
        "body": raw,
        "content_type": "application/json",
        "form": None,
    }
    if operation == Operation.IMAGES_GENERATIONS:
        _text(payload, "prompt")
        n = _count(payload.get("n"), "n")
        # gpt-image-1 streams partial images; completed ones are counted as they pass.
        return MediaCall(**common, stream=payload.get("stream") is True, expected=CallUnits(images=n))
    if operation == Operation.AUDIO_SPEECH:
        characters = len(_text(payload, "input"))
        return MediaCall(
            **common, stream=True, expected=CallUnits(characters=characters), characters=characters
        )
    if operation == Operation.OCR:
        document = required_field(payload, "document")
        if not isinstance(document, dict):
            raise invalid_type("'document' must be an object", "document")
        pages = payload.get("pages")
        if pages is not None and not isinstance(pages, list):
            raise invalid_type("'pages' must be an array of page numbers", "pages")
        # Without a page list the page count is known only from the answer.
        return MediaCall(**common, stream=False, expected=CallUnits(pages=len(pages) if pages else 1))
    # Segmentation: one image, or several.
    images = payload.get("images")
    if images is None:
        _text(payload, "image")
        count = 1
    elif isinstance(images, list) and images and all(isinstance(i, str) and i for i in images):
        count = len(images)
    else:
        raise invalid_type("'images' must be a non-empty array of image URLs or data URIs", "images")
    return MediaCall(**common, stream=False, expected=CallUnits(images=count), input_images=count)


def _form_flag(fields: dict[str, str], name: str) -> bool:
    return fields.get(name, "").strip().lower() == "true"


def _form_call(operation: str, raw: bytes, content_type: str) -> MediaCall:
    form = parse_form(raw, content_type)
    fields = form.fields()
    model = model_field(fields)
    common: dict[str, Any] = {
        "operation": operation,
        "capability": CAPABILITY[operation],
        "model": model,
        "payload": fields,
        "body": raw,
        "content_type": content_type,
        "form": form,
    }
    if operation in (Operation.IMAGES_EDITS, Operation.IMAGES_VARIATIONS):
        images = [p for p in form.files() if p.name in ("image", "image[]")]
        if not images:
            raise InvalidRequest(
                "you must upload an image file in the 'image' field",
                code="missing_required_parameter",
                param="image",
            )
        if operation == Operation.IMAGES_EDITS:
            _text(fields, "prompt")
        n = _count(fields.get("n"), "n", form=True)
        stream = operation == Operation.IMAGES_EDITS and _form_flag(fields, "stream")
        return MediaCall(**common, stream=stream, expected=CallUnits(images=n))
    audio = form.part("file")
    if audio is None or audio.filename is None:
        raise InvalidRequest(
            "you must upload the audio in the 'file' field", code="missing_required_parameter", param="file"
        )
    seconds, measured = audio_seconds(form.data(audio))
    stream = _form_flag(fields, "stream")
    return MediaCall(
        **common,
        stream=stream,
        expected=CallUnits(audio_seconds=seconds),
        audio_seconds=seconds,
        seconds_measured=measured,
    )


def parse_media(operation: str, raw: bytes, content_type: str) -> MediaCall:
    """The validated media call of `operation` (InvalidRequest, 400, otherwise)."""
    if operation in _MULTIPART:
        return _form_call(operation, raw, content_type)
    return _json_call(operation, raw)
