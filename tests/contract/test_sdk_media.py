"""The official OpenAI SDK against the gateway's media routes: image generation, edits
and variations; transcription, translation and speech (whole and streamed); OCR and
segmentation over plain HTTP. Through an OpenAI-format provider and, for images and
audio, an Azure deployment. Assertions are on the SDK's typed objects, on what the mock
upstream received (the upstream model spliced in, every other field and file intact),
on each call's ledger row (capability, units, cost = units x price, currency) and on the
OpenAI-shaped errors."""

from __future__ import annotations

import base64
import hashlib
import io
import time
import wave
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import openai
import pytest
from openai.types import Image, ImagesResponse
from openai.types.audio import Transcription, TranscriptionVerbose, Translation
from openai.types.audio.transcription import UsageDuration, UsageTokens

from tests.support.media_stack import (
    AZURE_API_VERSION,
    CURRENCIES,
    PRICES,
    UPSTREAM_KEYS,
    media_stack,
    wait_for_media_row,
)
from tests.support.mock_upstreams.openai_media import PIXEL_PNG, SPEECH_CHUNK, speech_audio
from tests.support.sdk_stack import clear_received, last_received, received
from tests.support.stack import APP_KEY, NARROW_KEY, SplitStack

pytestmark = pytest.mark.integration

SILENCE_SECONDS = 2.5


def silence_wav(seconds: float = SILENCE_SECONDS, rate: int = 16_000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(2 * int(seconds * rate)))
    return out.getvalue()


WAV = silence_wav()
WAV_FILE = ("silence.wav", WAV, "audio/wav")
PNG_FILE = ("pixel.png", PIXEL_PNG, "image/png")
NOTES = ("notes.txt", b"not audio", "text/plain")
SPOKEN = "Grüße from the switchyard, all aboard! 🚂"  # 40 Unicode characters


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, services: None) -> Iterator[SplitStack]:
    with media_stack(tmp_path_factory.mktemp("sdk-media")) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack: SplitStack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.dp_url}/v1", api_key=APP_KEY, max_retries=0, timeout=20)


@pytest.fixture(autouse=True)
def fresh(stack: SplitStack) -> None:
    clear_received(stack)


def described(name: str, data: bytes, content_type: str) -> dict[str, Any]:
    """How the mock records an uploaded file."""
    return {
        "filename": name,
        "content_type": content_type,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def assert_billed(row: dict[str, Any], model: str, **units: float) -> None:
    """The row's cost is exactly `units` at the model's prices (per million units)."""
    expected = sum(PRICES[model][unit] * amount for unit, amount in units.items()) / 1e6
    assert row["cost"] == pytest.approx(expected, rel=1e-12, abs=0), row
    assert row["currency"] == CURRENCIES.get(model, "USD")
    assert row["unpriced"] is False, row
    assert row["status"] == 200 and row["error_type"] is None


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert "type" in error and "code" in error and "param" in error
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


# -- images ------------------------------------------------------------------------------


@pytest.mark.parametrize("response_format", ["url", "b64_json"])
def test_generate_images(
    client: openai.OpenAI, stack: SplitStack, response_format: Literal["url", "b64_json"]
) -> None:
    since = time.time()
    prompt = "a lighthouse at dusk"
    result = client.images.generate(
        model="img-model", prompt=prompt, n=2, size="1024x1024", response_format=response_format
    )
    assert isinstance(result, ImagesResponse)
    assert result.data is not None and len(result.data) == 2
    for image in result.data:
        assert isinstance(image, Image)
        assert image.revised_prompt == f"revised: {prompt}"
        if response_format == "url":
            assert image.url is not None and image.b64_json is None
            assert httpx.get(image.url, timeout=10).content == PIXEL_PNG
        else:
            assert image.b64_json is not None and image.url is None
            assert base64.b64decode(image.b64_json) == PIXEL_PNG

    request = last_received(stack)
    assert request["path"] == "/v1/images/generations"
    assert request["headers"]["authorization"] == f"Bearer {UPSTREAM_KEYS['oa']}"
    assert request["body"] == {
        "model": "dall-e-3",
        "prompt": prompt,
        "n": 2,
        "size": "1024x1024",
        "response_format": response_format,
    }
    row = wait_for_media_row(stack, "img-model", since)
    assert row["capability"] == "image" and row["provider"] == "oa" and row["upstream_model"] == "dall-e-3"
    assert row["images"] == 2 and row["pages"] == 0 and row["characters"] == 0
    assert_billed(row, "img-model", image=2)


def test_gpt_image_answers_are_billed_by_their_tokens(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    result = client.images.generate(model="img-tokens", prompt="a red caboose", n=2, quality="low")
    assert result.data is not None and len(result.data) == 2
    assert all(image.b64_json and base64.b64decode(image.b64_json) == PIXEL_PNG for image in result.data)
    assert result.usage is not None
    assert result.usage.input_tokens == 3 and result.usage.output_tokens == 2 * 272
    assert result.quality == "low" and result.size == "1024x1024"
    assert last_received(stack)["body"]["model"] == "gpt-image-1"

    row = wait_for_media_row(stack, "img-tokens", since)
    assert row["images"] == 2 and row["tokens_estimated"] is False
    assert (row["input_tokens"], row["output_tokens"]) == (3, 544)
    assert_billed(row, "img-tokens", input_token=3, output_token=544)


def test_edit_an_image_uploads_the_file_and_mask_intact(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    mask = ("mask.png", PIXEL_PNG[:-1] + b"\x82", "image/png")  # other bytes than the image
    result = client.images.edit(
        model="img-model", image=PNG_FILE, mask=mask, prompt="add a hat", n=1, response_format="b64_json"
    )
    assert isinstance(result, ImagesResponse) and result.data is not None and len(result.data) == 1
    assert result.data[0].b64_json is not None and base64.b64decode(result.data[0].b64_json) == PIXEL_PNG

    request = last_received(stack)
    assert request["path"] == "/v1/images/edits"
    assert request["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert request["body"] == {
        "model": "dall-e-3",  # the public name rewritten, every other field as sent
        "prompt": "add a hat",
        "n": "1",
        "response_format": "b64_json",
        "files": {"image": described(*PNG_FILE), "mask": described(*mask)},
    }
    row = wait_for_media_row(stack, "img-model", since)
    assert row["capability"] == "image" and row["images"] == 1
    assert_billed(row, "img-model", image=1)


def test_edit_with_several_images(client: openai.OpenAI, stack: SplitStack) -> None:
    second = ("second.png", PIXEL_PNG + b"\x00", "image/png")
    result = client.images.edit(model="img-tokens", image=[PNG_FILE, second], prompt="merge them")
    assert result.data is not None and len(result.data) == 1
    assert result.usage is not None and result.usage.input_tokens_details.image_tokens == 2 * 85
    request = last_received(stack)
    assert request["body"]["model"] == "gpt-image-1" and request["body"]["prompt"] == "merge them"
    assert request["body"]["files"] == {"image[]": [described(*PNG_FILE), described(*second)]}


def test_image_variations(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    result = client.images.create_variation(model="img-model", image=PNG_FILE, n=2, response_format="url")
    assert result.data is not None and len(result.data) == 2
    assert all(isinstance(image, Image) and image.url for image in result.data)
    request = last_received(stack)
    assert request["path"] == "/v1/images/variations"
    assert request["body"] == {
        "model": "dall-e-3",
        "n": "2",
        "response_format": "url",
        "files": {"image": described(*PNG_FILE)},
    }
    row = wait_for_media_row(stack, "img-model", since)
    assert row["images"] == 2
    assert_billed(row, "img-model", image=2)


# -- audio in ----------------------------------------------------------------------------


def test_transcription_json_is_billed_by_the_upstreams_seconds(
    client: openai.OpenAI, stack: SplitStack
) -> None:
    since = time.time()
    result = client.audio.transcriptions.create(
        model="asr-model", file=WAV_FILE, response_format="json", language="en", prompt="a quiet room"
    )
    assert isinstance(result, Transcription)
    assert result.text == "transcript of silence.wav (2.5 s) [prompt: a quiet room]"
    assert isinstance(result.usage, UsageDuration) and result.usage.seconds == 3  # OpenAI rounds up

    request = last_received(stack)
    assert request["path"] == "/v1/audio/transcriptions"
    assert request["body"] == {
        "model": "whisper-1",
        "language": "en",
        "prompt": "a quiet room",
        "response_format": "json",
        "files": {"file": described(*WAV_FILE)},
    }
    row = wait_for_media_row(stack, "asr-model", since)
    assert row["capability"] == "asr" and row["upstream_model"] == "whisper-1"
    assert row["audio_seconds"] == 3.0 and row["tokens_estimated"] is False
    assert row["input_tokens"] == 0 and row["output_tokens"] == 0
    assert_billed(row, "asr-model", second=3)


def test_transcription_verbose_json(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    result = client.audio.transcriptions.create(
        model="asr-model", file=WAV_FILE, response_format="verbose_json", timestamp_granularities=["word"]
    )
    assert isinstance(result, TranscriptionVerbose)
    assert result.duration == SILENCE_SECONDS and result.language == "english"
    assert result.segments is not None and result.segments[0].end == SILENCE_SECONDS
    assert result.words is not None and [w.word for w in result.words] == result.text.split()
    assert last_received(stack)["body"]["timestamp_granularities[]"] == "word"
    row = wait_for_media_row(stack, "asr-model", since)
    assert row["audio_seconds"] == 3.0 and row["tokens_estimated"] is False  # usage.seconds first
    assert_billed(row, "asr-model", second=3)


def test_transcription_text_is_billed_by_the_measured_duration(
    client: openai.OpenAI, stack: SplitStack
) -> None:
    since = time.time()
    result = client.audio.transcriptions.create(model="asr-model", file=WAV_FILE, response_format="text")
    assert isinstance(result, str) and result.strip() == "transcript of silence.wav (2.5 s)"
    row = wait_for_media_row(stack, "asr-model", since)
    assert row["audio_seconds"] == SILENCE_SECONDS and row["tokens_estimated"] is True
    assert_billed(row, "asr-model", second=SILENCE_SECONDS)


def test_transcription_without_usage_is_measured_by_the_gateway(
    client: openai.OpenAI, stack: SplitStack
) -> None:
    since = time.time()
    result = client.audio.transcriptions.create(model="asr-nousage", file=WAV_FILE)
    assert isinstance(result, Transcription) and result.usage is None
    assert last_received(stack)["body"]["model"] == "no-usage-whisper"
    row = wait_for_media_row(stack, "asr-nousage", since)
    assert row["audio_seconds"] == SILENCE_SECONDS and row["tokens_estimated"] is True
    assert_billed(row, "asr-nousage", second=SILENCE_SECONDS)


def test_verbose_transcription_without_usage_is_billed_by_its_duration(
    client: openai.OpenAI, stack: SplitStack
) -> None:
    since = time.time()
    result = client.audio.transcriptions.create(
        model="asr-nousage", file=WAV_FILE, response_format="verbose_json"
    )
    assert isinstance(result, TranscriptionVerbose) and result.usage is None
    row = wait_for_media_row(stack, "asr-nousage", since)
    assert row["audio_seconds"] == SILENCE_SECONDS and row["tokens_estimated"] is False
    assert_billed(row, "asr-nousage", second=SILENCE_SECONDS)


def test_token_billed_transcription(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    result = client.audio.transcriptions.create(model="asr-tokens", file=WAV_FILE, prompt="two words")
    assert isinstance(result, Transcription) and isinstance(result.usage, UsageTokens)
    usage = result.usage
    assert usage.input_token_details is not None
    assert usage.input_token_details.audio_tokens == 25 and usage.input_token_details.text_tokens == 2
    assert usage.input_tokens == 27 and usage.output_tokens == len(result.text.split())
    assert last_received(stack)["body"]["model"] == "gpt-4o-transcribe"

    row = wait_for_media_row(stack, "asr-tokens", since)
    assert (row["input_tokens"], row["output_tokens"]) == (usage.input_tokens, usage.output_tokens)
    assert row["audio_seconds"] == SILENCE_SECONDS and row["tokens_estimated"] is False
    assert_billed(row, "asr-tokens", input_token=usage.input_tokens, output_token=usage.output_tokens)


def test_translation(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    result = client.audio.translations.create(model="asr-model", file=WAV_FILE)
    assert isinstance(result, Translation) and result.text == "translation of silence.wav (2.5 s)"
    request = last_received(stack)
    assert request["path"] == "/v1/audio/translations"
    assert request["body"] == {"model": "whisper-1", "files": {"file": described(*WAV_FILE)}}
    # OpenAI's translations report no usage: the gateway measures the upload.
    row = wait_for_media_row(stack, "asr-model", since)
    assert row["audio_seconds"] == SILENCE_SECONDS and row["tokens_estimated"] is True
    assert_billed(row, "asr-model", second=SILENCE_SECONDS)


# -- audio out ---------------------------------------------------------------------------


def test_speech(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    audio = client.audio.speech.create(model="tts-model", voice="alloy", input=SPOKEN, response_format="wav")
    expected = speech_audio(SPOKEN, "wav")
    assert audio.content == expected
    assert audio.response.headers["content-type"].startswith("audio/wav")
    with wave.open(io.BytesIO(audio.content)) as wav:
        assert wav.getnframes() == int(24_000 * 0.05) * len(SPOKEN)
    assert last_received(stack)["body"] == {
        "model": "tts-1",
        "voice": "alloy",
        "input": SPOKEN,
        "response_format": "wav",
    }
    row = wait_for_media_row(stack, "tts-model", since)
    assert row["capability"] == "tts" and row["characters"] == len(SPOKEN) == 40
    assert_billed(row, "tts-model", character=len(SPOKEN))


def test_speech_streamed_chunk_by_chunk(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    expected = speech_audio(SPOKEN, "mp3")
    assert len(expected) > 2 * SPEECH_CHUNK  # the mock sends it in several chunks
    with client.audio.speech.with_streaming_response.create(
        model="tts-model", voice="alloy", input=SPOKEN
    ) as response:
        assert response.headers["content-type"].startswith("audio/mpeg")
        chunks = list(response.iter_bytes())
    assert b"".join(chunks) == expected
    row = wait_for_media_row(stack, "tts-model", since)
    assert row["characters"] == len(SPOKEN)
    assert_billed(row, "tts-model", character=len(SPOKEN))


# -- OCR and segmentation ----------------------------------------------------------------


def _post(stack: SplitStack, path: str, body: Any, key: str = APP_KEY) -> httpx.Response:
    return httpx.post(
        f"{stack.dp_url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=20
    )


def test_ocr_pages_from_the_answer(stack: SplitStack) -> None:
    since = time.time()
    document = {"type": "document_url", "document_url": "https://example.com/reports/q3-3-pages.pdf"}
    response = _post(stack, "/v1/ocr", {"model": "ocr-model", "document": document})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [page["index"] for page in answer["pages"]] == [0, 1, 2]
    assert answer["usage_info"]["pages_processed"] == 3 and answer["model"] == "mistral-ocr-latest"
    assert last_received(stack)["body"] == {"model": "mistral-ocr-latest", "document": document}
    assert last_received(stack)["path"] == "/v1/ocr"
    row = wait_for_media_row(stack, "ocr-model", since)
    assert row["capability"] == "ocr" and row["pages"] == 3 and row["currency"] == "EUR"
    assert_billed(row, "ocr-model", page=3)


def test_ocr_without_usage_info_counts_the_pages_asked_for(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    image = "data:image/png;base64," + base64.b64encode(PIXEL_PNG).decode()
    body = {"model": "ocr-nousage", "document": {"type": "image_url", "image_url": image}, "pages": [0, 1, 4]}
    answer = client.post("/ocr", body=body, cast_to=httpx.Response).json()
    assert "usage_info" not in answer and [page["index"] for page in answer["pages"]] == [0, 1, 4]
    row = wait_for_media_row(stack, "ocr-nousage", since)
    assert row["pages"] == 3
    assert_billed(row, "ocr-nousage", page=3)


def test_segmentation_of_several_images(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    images = [f"http://127.0.0.1:{stack.mock_port}/_images/pixel.png", "data:image/png;base64,iVBORw0KGgo="]
    body = {"model": "seg-model", "images": images, "prompt": "cat, dog", "points": [[3, 4]], "labels": [1]}
    answer = client.post("/vision/segmentations", body=body, cast_to=httpx.Response).json()
    assert answer["object"] == "list" and answer["model"] == "sam-2"
    assert [item["index"] for item in answer["data"]] == [0, 1]
    assert answer["data"][0]["masks"][0]["label"] == "foreground"
    # Passed through with only the model replaced (prompt, points and labels included).
    assert last_received(stack)["body"] == {**body, "model": "sam-2"}
    row = wait_for_media_row(stack, "seg-model", since)
    assert row["capability"] == "vision-segment" and row["images"] == 2
    assert_billed(row, "seg-model", image=2)


def test_segmentation_of_one_image(stack: SplitStack) -> None:
    since = time.time()
    response = _post(
        stack, "/v1/vision/segmentations", {"model": "seg-model", "image": "https://x.test/a.png"}
    )
    assert response.status_code == 200, response.text
    assert [mask["label"] for mask in response.json()["data"][0]["masks"]] == ["object"]
    row = wait_for_media_row(stack, "seg-model", since)
    assert row["images"] == 1
    assert_billed(row, "seg-model", image=1)


@pytest.mark.parametrize(
    ("prefix", "path", "body"),
    [
        ("/openai/v1", "/images/generations", {"model": "img-model", "prompt": "x"}),
        ("/anthropic/v1", "/vision/segmentations", {"model": "seg-model", "image": "https://x.test/a.png"}),
        ("/openai/v1", "/audio/speech", {"model": "tts-model", "input": "hi", "voice": "alloy"}),
    ],
)
def test_media_routes_answer_under_every_prefix(
    stack: SplitStack, prefix: str, path: str, body: dict[str, Any]
) -> None:
    response = _post(stack, prefix + path, body)
    assert response.status_code == 200, response.text
    assert last_received(stack)["path"] == "/v1" + path


# -- Azure -------------------------------------------------------------------------------


def test_azure_image_generation_goes_to_the_deployment(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    result = client.images.generate(model="img-az", prompt="a signal box", response_format="b64_json")
    assert result.data is not None and len(result.data) == 1
    request = last_received(stack)
    assert request["path"] == "/openai/deployments/dall-e-3-deployment/images/generations"
    assert request["query"] == {"api-version": AZURE_API_VERSION}
    assert request["headers"]["api-key"] == UPSTREAM_KEYS["az"]
    assert "authorization" not in request["headers"]
    assert request["body"]["model"] == "dall-e-3-deployment" and request["body"]["prompt"] == "a signal box"
    row = wait_for_media_row(stack, "img-az", since)
    assert row["provider"] == "az" and row["images"] == 1
    assert_billed(row, "img-az", image=1)


def test_azure_transcription_goes_to_the_deployment(client: openai.OpenAI, stack: SplitStack) -> None:
    since = time.time()
    result = client.audio.transcriptions.create(model="asr-az", file=WAV_FILE)
    assert isinstance(result, Transcription) and isinstance(result.usage, UsageDuration)
    request = last_received(stack)
    assert request["path"] == "/openai/deployments/whisper-deployment/audio/transcriptions"
    assert request["query"] == {"api-version": AZURE_API_VERSION}
    assert request["headers"]["api-key"] == UPSTREAM_KEYS["az"]
    assert request["body"]["model"] == "whisper-deployment"
    assert request["body"]["files"] == {"file": described(*WAV_FILE)}
    row = wait_for_media_row(stack, "asr-az", since)
    assert row["provider"] == "az" and row["audio_seconds"] == 3.0
    assert_billed(row, "asr-az", second=3)


# -- errors ------------------------------------------------------------------------------


def test_unknown_model_is_404(client: openai.OpenAI, stack: SplitStack) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.images.generate(model="no-such-model", prompt="x")
    assert isinstance(raised.value.body, dict) and raised.value.body.get("message")
    with pytest.raises(openai.NotFoundError):
        client.audio.transcriptions.create(model="no-such-model", file=WAV_FILE)
    assert received(stack) == []


@pytest.mark.parametrize(
    ("route", "model"),
    [
        ("images", "asr-model"),
        ("transcriptions", "img-model"),
        ("speech", "chat-model"),
        ("ocr", "seg-model"),
    ],
)
def test_a_model_of_another_capability_is_400(
    client: openai.OpenAI, stack: SplitStack, route: str, model: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        if route == "images":
            client.images.generate(model=model, prompt="x")
        elif route == "transcriptions":
            client.audio.transcriptions.create(model=model, file=WAV_FILE)
        elif route == "speech":
            client.audio.speech.create(model=model, voice="alloy", input="hi")
        else:
            document = {"type": "document_url", "document_url": "https://x.test/a.pdf"}
            client.post("/ocr", body={"model": model, "document": document}, cast_to=httpx.Response)
    assert raised.value.code == "model_capability_mismatch" and raised.value.param == "model"
    assert received(stack) == []


def test_a_key_without_the_scope_is_403(stack: SplitStack) -> None:
    narrow = openai.OpenAI(base_url=f"{stack.dp_url}/v1", api_key=NARROW_KEY, max_retries=0, timeout=20)
    with pytest.raises(openai.PermissionDeniedError):
        narrow.images.generate(model="img-model", prompt="x")
    with pytest.raises(openai.PermissionDeniedError):
        narrow.audio.transcriptions.create(model="asr-model", file=WAV_FILE)
    response = _post(stack, "/v1/ocr", {"model": "ocr-model", "document": {}}, key=NARROW_KEY)
    assert_openai_error(response, 403)
    assert received(stack) == []


def test_media_on_an_anthropic_provider_is_unsupported(client: openai.OpenAI, stack: SplitStack) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.generate(model="img-claude", prompt="x")
    assert raised.value.code == "unsupported_operation"
    assert received(stack) == []


def test_streamed_image_generation_relays_events_and_bills_completed_images(
    client: openai.OpenAI, stack: SplitStack
) -> None:
    since = time.time()
    events = list(
        client.images.generate(model="img-tokens", prompt="a red pixel", n=2, partial_images=2, stream=True)
    )
    assert [e.type for e in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ] * 2
    completed = [e for e in events if e.type == "image_generation.completed"]
    assert base64.b64decode(completed[0].b64_json) == PIXEL_PNG
    row = wait_for_media_row(stack, "img-tokens", since)
    assert (row["images"], row["stream"]) == (2, True)
    tokens = [e.usage for e in completed]
    assert row["input_tokens"] == sum(u.input_tokens for u in tokens)
    assert row["output_tokens"] == sum(u.output_tokens for u in tokens) > 0
    assert row["unpriced"] is False and row["cost"] > 0


MALFORMED_FORMS: dict[str, tuple[str, dict[str, str], bytes]] = {
    # (path, headers, body)
    "no boundary": ("/v1/audio/transcriptions", {"content-type": "multipart/form-data"}, b"--x\r\n"),
    "truncated": (
        "/v1/audio/transcriptions",
        {"content-type": "multipart/form-data; boundary=xyz"},
        b'--xyz\r\nContent-Disposition: form-data; name="model"\r\n\r\nasr-model\r\n--xyz\r\nContent-Dispo',
    ),
    "json to a form route": (
        "/v1/images/edits",
        {"content-type": "application/json"},
        b'{"model": "img-model", "prompt": "x"}',
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED_FORMS))
def test_malformed_multipart_is_400(stack: SplitStack, case: str) -> None:
    path, headers, body = MALFORMED_FORMS[case]
    response = httpx.post(
        f"{stack.dp_url}{path}",
        content=body,
        headers={**headers, "Authorization": f"Bearer {APP_KEY}"},
        timeout=20,
    )
    assert_openai_error(response, 400)
    assert received(stack) == []


@pytest.mark.parametrize(
    ("path", "fields", "files", "param"),
    [
        ("/v1/audio/transcriptions", {"model": "asr-model"}, {"notes": NOTES}, "file"),
        ("/v1/images/edits", {"model": "img-model", "prompt": "x"}, {"mask": PNG_FILE}, "image"),
        ("/v1/audio/transcriptions", {"language": "en"}, {"file": WAV_FILE}, "model"),
        ("/v1/images/variations", {}, {"image": PNG_FILE}, "model"),
    ],
)
def test_missing_file_or_model_is_400(
    stack: SplitStack, path: str, fields: dict[str, str], files: dict[str, Any], param: str
) -> None:
    response = httpx.post(
        f"{stack.dp_url}{path}",
        data=fields,
        files=files,
        headers={"Authorization": f"Bearer {APP_KEY}"},
        timeout=20,
    )
    error = assert_openai_error(response, 400)
    assert error["param"] == param
    assert received(stack) == []


def test_json_media_request_without_a_model_is_400(client: openai.OpenAI, stack: SplitStack) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.generate(prompt="no model named")
    assert raised.value.param == "model"
    assert received(stack) == []


def test_upstream_429_surfaces_as_rate_limit_error(client: openai.OpenAI, stack: SplitStack) -> None:
    with pytest.raises(openai.RateLimitError) as raised:
        client.images.generate(model="img-429", prompt="x")
    assert isinstance(raised.value.body, dict) and raised.value.body.get("message")
    with pytest.raises(openai.RateLimitError):
        client.audio.transcriptions.create(model="asr-429", file=WAV_FILE)
    assert {r["path"] for r in received(stack)} == {"/v1/images/generations", "/v1/audio/transcriptions"}
    assert {r["body"]["model"] for r in received(stack)} == {"error-429"}
