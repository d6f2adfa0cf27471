"""OCR (Mistral's format) and segmentation (the gateway's) over plain HTTP, and every
media route under each prefix; pages and images billed."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import openai
import pytest

from tests.contract.media.helpers import (
    assert_billed,
    post,
)
from tests.support.media_stack import wait_for_media_row
from tests.support.mock_upstreams.openai_media import PIXEL_PNG
from tests.support.sdk_stack import last_received
from tests.support.stack import SplitStack

pytestmark = pytest.mark.integration


# -- OCR and segmentation ----------------------------------------------------------------


def test_ocr_pages_from_the_answer(stack: SplitStack) -> None:
    since = time.time()
    document = {"type": "document_url", "document_url": "https://example.com/reports/q3-3-pages.pdf"}
    response = post(stack, "/v1/ocr", {"model": "ocr-model", "document": document})
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
    response = post(
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
    response = post(stack, prefix + path, body)
    assert response.status_code == 200, response.text
    assert last_received(stack)["path"] == "/v1" + path
