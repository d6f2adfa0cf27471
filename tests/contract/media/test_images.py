"""The OpenAI SDK's image calls through the gateway: generation (also streamed), edits
and variations, on an OpenAI-format provider and an Azure deployment; each call's
upstream request and ledger row."""

from __future__ import annotations

import base64
import time
from typing import Literal

import httpx
import openai
import pytest
from openai.types import Image, ImagesResponse

from tests.contract.media.helpers import (
    PNG_FILE,
    assert_billed,
    described,
)
from tests.support.media_stack import AZURE_API_VERSION, UPSTREAM_KEYS, wait_for_media_row
from tests.support.mock_upstreams.openai_media import PIXEL_PNG
from tests.support.sdk_stack import last_received
from tests.support.stack import SplitStack

pytestmark = pytest.mark.integration


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
