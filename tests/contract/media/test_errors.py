"""Media calls the gateway refuses, in OpenAI's error shape, without calling upstream;
and an upstream refusal passed on."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.contract.media.helpers import (
    NOTES,
    PNG_FILE,
    WAV_FILE,
    assert_openai_error,
    post,
)
from tests.support.sdk_stack import received
from tests.support.stack import APP_KEY, NARROW_KEY, SplitStack

pytestmark = pytest.mark.integration


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
    response = post(stack, "/v1/ocr", {"model": "ocr-model", "document": {}}, key=NARROW_KEY)
    assert_openai_error(response, 403)
    assert received(stack) == []


def test_media_on_an_anthropic_provider_is_unsupported(client: openai.OpenAI, stack: SplitStack) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.generate(model="img-claude", prompt="x")
    assert raised.value.code == "unsupported_operation"
    assert received(stack) == []


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
