"""Media requests and answers, without a server: multipart parsing and the model
rewrite, validation, what each call reserves, and the units read from each answer."""

from __future__ import annotations

import orjson
import pytest
from switchyard_common.errors import InvalidRequest
from switchyard_dataplane.media.answers import units_of_answer
from switchyard_dataplane.media.audio_duration import ESTIMATE_BITS_PER_SECOND, audio_seconds
from switchyard_dataplane.media.multipart import boundary_of, parse_form
from switchyard_dataplane.media.requests import parse_media
from switchyard_dataplane.media.streams import ImageStreamMeter, stream_meter_for
from switchyard_dataplane.metering import CallUnits
from switchyard_dataplane.providers.base import Operation

from .media_wire import BOUNDARY, CONTENT_TYPE, form, wav_bytes

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\r\n--not-a-boundary\r\n" * 3


def test_form_fields_files_and_the_model_rewrite_keep_every_other_byte() -> None:
    body = form({"model": "public", "prompt": "a cat", "n": "2"}, {"image": ("cat.png", "image/png", PNG)})
    parsed = parse_form(body, CONTENT_TYPE)
    assert parsed.fields() == {"model": "public", "prompt": "a cat", "n": "2"}
    [image] = parsed.files()
    assert (image.name, image.filename, image.content_type, parsed.data(image)) == (
        "image",
        "cat.png",
        "image/png",
        PNG,
    )
    rewritten = parsed.with_text("model", "dall-e-2")
    assert rewritten == body.replace(b"\r\n\r\npublic\r\n", b"\r\n\r\ndall-e-2\r\n")
    again = parse_form(rewritten, CONTENT_TYPE)
    assert again.text("model") == "dall-e-2" and again.data(again.files()[0]) == PNG


def test_quoted_boundaries_padding_and_preamble_are_read() -> None:
    assert boundary_of('multipart/form-data; charset=utf-8; boundary="a b:c"') == "a b:c"
    assert boundary_of("application/json") is None
    assert boundary_of("multipart/form-data") is None
    body = b"preamble\r\n" + form({"model": "m"}, {}).replace(
        f"--{BOUNDARY}\r\n".encode(), f"--{BOUNDARY}  \r\n".encode()
    )
    assert parse_form(body, CONTENT_TYPE).fields() == {"model": "m"}


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"{}", "application/json", "invalid_content_type"),
        (b"--other\r\n\r\nx\r\n--other--", CONTENT_TYPE, "invalid_multipart"),
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\nm'.encode(),
            CONTENT_TYPE,
            "invalid_multipart",
        ),
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"'.encode(),
            CONTENT_TYPE,
            "invalid_multipart",
        ),
        (f"--{BOUNDARY}garbage".encode(), CONTENT_TYPE, "invalid_multipart"),
    ],
)
def test_malformed_forms_are_400s(body: bytes, content_type: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_form(body, content_type)
    assert raised.value.code == code and raised.value.status == 400


def test_json_media_calls_reserve_what_they_ask_for() -> None:
    images = parse_media(
        Operation.IMAGES_GENERATIONS,
        orjson.dumps({"model": "img", "prompt": "a cat", "n": 3}),
        "application/json",
    )
    assert (images.capability, images.expected, images.stream) == ("image", CallUnits(images=3), False)
    assert orjson.loads(images.body_for("dall-e-3"))["model"] == "dall-e-3"
    speech = parse_media(
        Operation.AUDIO_SPEECH, orjson.dumps({"model": "tts", "input": "héllo wörld", "voice": "alloy"}), ""
    )
    assert (speech.capability, speech.characters, speech.stream) == ("tts", 11, True)
    assert speech.expected == CallUnits(characters=11)
    ocr = parse_media(Operation.OCR, orjson.dumps({"model": "ocr", "document": {"type": "document_url"}}), "")
    assert (ocr.capability, ocr.expected) == ("ocr", CallUnits(pages=1))
    paged = parse_media(Operation.OCR, orjson.dumps({"model": "ocr", "document": {}, "pages": [0, 1, 4]}), "")
    assert paged.expected == CallUnits(pages=3)
    one = parse_media(Operation.SEGMENTATIONS, orjson.dumps({"model": "seg", "image": "https://x/1.png"}), "")
    many = parse_media(Operation.SEGMENTATIONS, orjson.dumps({"model": "seg", "images": ["a", "b"]}), "")
    assert (one.capability, one.input_images, many.input_images) == ("vision-segment", 1, 2)


@pytest.mark.parametrize(
    ("operation", "payload", "param", "code"),
    [
        (Operation.IMAGES_GENERATIONS, {"prompt": "x"}, "model", "missing_required_parameter"),
        (Operation.IMAGES_GENERATIONS, {"model": "m"}, "prompt", "missing_required_parameter"),
        (Operation.IMAGES_GENERATIONS, {"model": "m", "prompt": "x", "n": 0}, "n", "invalid_type"),
        (Operation.IMAGES_GENERATIONS, {"model": "m", "prompt": "x", "n": "2"}, "n", "invalid_type"),
        (Operation.AUDIO_SPEECH, {"model": "m", "input": ""}, "input", "invalid_type"),
        (Operation.OCR, {"model": "m", "document": "https://x"}, "document", "invalid_type"),
        (Operation.OCR, {"model": "m", "document": {}, "pages": 3}, "pages", "invalid_type"),
        (Operation.SEGMENTATIONS, {"model": "m"}, "image", "missing_required_parameter"),
        (Operation.SEGMENTATIONS, {"model": "m", "images": []}, "images", "invalid_type"),
    ],
)
def test_json_media_validation(
    operation: Operation, payload: dict[str, object], param: str, code: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_media(operation, orjson.dumps(payload), "application/json")
    assert (raised.value.param, raised.value.code) == (param, code)


def test_transcriptions_measure_the_upload_and_edits_need_an_image() -> None:
    body = form({"model": "asr", "response_format": "text"}, {"file": ("a.wav", "audio/wav", wav_bytes(2.5))})
    call = parse_media(Operation.AUDIO_TRANSCRIPTIONS, body, CONTENT_TYPE)
    assert (call.capability, call.audio_seconds, call.seconds_measured) == ("asr", 2.5, True)
    assert call.expected == CallUnits(audio_seconds=2.5)
    rewritten = parse_form(call.body_for("whisper-1"), CONTENT_TYPE)
    assert rewritten.fields()["model"] == "whisper-1" and rewritten.fields()["response_format"] == "text"
    audit = orjson.loads(call.audit_body())
    assert audit["files"] == {
        "file": {"filename": "a.wav", "content_type": "audio/wav", "size": len(wav_bytes(2.5))}
    }
    assert audit["model"] == "asr"
    streamed = form({"model": "asr", "stream": "true"}, {"file": ("a.wav", "audio/wav", wav_bytes(1))})
    assert parse_media(Operation.AUDIO_TRANSCRIPTIONS, streamed, CONTENT_TYPE).stream is True

    for operation, body, param in (
        (Operation.AUDIO_TRANSCRIPTIONS, form({"model": "asr"}, {}), "file"),
        (Operation.AUDIO_TRANSLATIONS, form({"model": "asr", "file": "not a file"}, {}), "file"),
        (Operation.AUDIO_TRANSCRIPTIONS, form({}, {"file": ("a.wav", "audio/wav", b"x")}), "model"),
        (Operation.IMAGES_EDITS, form({"model": "img", "prompt": "x"}, {}), "image"),
        (Operation.IMAGES_EDITS, form({"model": "img"}, {"image[]": ("a.png", "image/png", PNG)}), "prompt"),
        (
            Operation.IMAGES_VARIATIONS,
            form({"model": "img", "n": "many"}, {"image": ("a.png", "image/png", PNG)}),
            "n",
        ),
    ):
        with pytest.raises(InvalidRequest) as raised:
            parse_media(operation, body, CONTENT_TYPE)
        assert raised.value.param == param, (operation, raised.value)
    edit = parse_media(
        Operation.IMAGES_EDITS,
        form({"model": "img", "prompt": "x", "n": "4"}, {"image[]": ("a.png", "image/png", PNG)}),
        CONTENT_TYPE,
    )
    assert edit.expected == CallUnits(images=4)


def test_audio_duration_from_the_header_else_estimated_from_the_size() -> None:
    assert audio_seconds(wav_bytes(1.25, rate=8000)) == (1.25, True)
    unknown = b"\x1aE\xdf\xa3" + b"\x00" * 5999  # a WebM-like start mutagen cannot read
    assert audio_seconds(unknown) == (round(6000 * 8 / ESTIMATE_BITS_PER_SECOND, 3), False)


def _call(operation: Operation, payload: dict[str, object]) -> object:
    return parse_media(operation, orjson.dumps(payload), "application/json")


def test_units_read_from_each_answer() -> None:
    images = parse_media(
        Operation.IMAGES_GENERATIONS, orjson.dumps({"model": "m", "prompt": "x", "n": 3}), ""
    )
    two = orjson.dumps({"created": 1, "data": [{"url": "u1"}, {"url": "u2"}]})
    assert units_of_answer(images, two, "application/json").images == 2  # what came back, not n
    tokens = orjson.dumps(
        {
            "created": 1,
            "data": [{"b64_json": "x"}],
            "usage": {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210},
        }
    )
    units = units_of_answer(images, tokens, "application/json")
    assert units.images == 1 and units.usage is not None
    assert (units.usage.input_tokens, units.usage.output_tokens) == (50, 4160)
    unreadable = units_of_answer(images, b"not json", "application/json")
    assert (unreadable.images, unreadable.estimated) == (3, True)

    ocr = parse_media(Operation.OCR, orjson.dumps({"model": "m", "document": {}}), "")
    answer = {"pages": [{"index": 0}, {"index": 1}], "usage_info": {"pages_processed": 5}}
    assert units_of_answer(ocr, orjson.dumps(answer), "application/json").pages == 5
    del answer["usage_info"]
    assert units_of_answer(ocr, orjson.dumps(answer), "application/json").pages == 2

    seg = parse_media(Operation.SEGMENTATIONS, orjson.dumps({"model": "m", "images": ["a", "b", "c"]}), "")
    assert units_of_answer(seg, b"{}", "application/json").images == 3
    speech = parse_media(Operation.AUDIO_SPEECH, orjson.dumps({"model": "m", "input": "abc"}), "")
    assert stream_meter_for(speech).units().characters == 3


@pytest.mark.parametrize(
    ("answer", "content_type", "seconds", "tokens", "estimated"),
    [
        ({"text": "hi", "usage": {"type": "duration", "seconds": 3}}, "application/json", 3.0, None, False),
        ({"text": "hi", "duration": 2.75, "segments": []}, "application/json", 2.75, None, False),
        (
            {
                "text": "hi",
                "usage": {"type": "tokens", "input_tokens": 14, "output_tokens": 45, "total_tokens": 59},
            },
            "application/json",
            2.5,
            (14, 45),
            False,
        ),
        ("hi there", "text/plain", 2.5, None, True),
        ({"text": "hi"}, "application/json", 2.5, None, True),
    ],
)
def test_transcription_seconds_come_from_the_answer_else_the_upload(
    answer: object, content_type: str, seconds: float, tokens: tuple[int, int] | None, estimated: bool
) -> None:
    body = form({"model": "asr"}, {"file": ("a.wav", "audio/wav", wav_bytes(2.5))})
    call = parse_media(Operation.AUDIO_TRANSCRIPTIONS, body, CONTENT_TYPE)
    raw = answer.encode() if isinstance(answer, str) else orjson.dumps(answer)
    units = units_of_answer(call, raw, content_type)
    assert (units.audio_seconds, units.estimated) == (seconds, estimated)
    got = (units.usage.input_tokens, units.usage.output_tokens) if units.usage is not None else None
    assert got == tokens


def _image_event(kind: str, usage: dict[str, int] | None = None) -> bytes:
    data: dict[str, object] = {"type": f"image_generation.{kind}", "b64_json": "A" * 20_000}
    if usage is not None:
        data["usage"] = {**usage, "input_tokens_details": {"text_tokens": 1, "image_tokens": 0}}
    return f"event: image_generation.{kind}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


@pytest.mark.parametrize("piece", [1, 7, 4096, 1 << 20])
def test_image_streams_count_completed_images_and_sum_their_usage_in_any_chunking(piece: int) -> None:
    stream = (
        _image_event("partial_image")
        + _image_event("completed", {"input_tokens": 10, "output_tokens": 200})
        + _image_event("partial_image")
        + _image_event("completed", {"input_tokens": 11, "output_tokens": 300})
    )
    meter = ImageStreamMeter()
    for i in range(0, len(stream), piece):
        meter.feed(stream[i : i + piece])
    units = meter.units()
    assert units.images == 2 and units.usage is not None
    assert (units.usage.input_tokens, units.usage.output_tokens) == (21, 500)
    # Memory stays bounded whatever the image size.
    assert len(meter._head) <= 256 and len(meter._tail) <= 4096


def test_an_image_stream_cut_short_bills_the_images_completed_so_far() -> None:
    meter = ImageStreamMeter()
    meter.feed(_image_event("completed") + _image_event("partial_image")[:100])
    units = meter.units()
    assert (units.images, units.usage) == (1, None)
    streamed = parse_media(
        Operation.IMAGES_GENERATIONS, orjson.dumps({"model": "m", "prompt": "x", "stream": True}), ""
    )
    assert streamed.stream and isinstance(stream_meter_for(streamed), ImageStreamMeter)
