"""The media routes through the data plane app: bodies passed through with only the
model replaced (JSON and multipart), Azure deployment URLs, answers relayed as they
came (speech audio chunk by chunk), every call metered in its capability's unit and
priced, and the errors: wrong capability, a provider that cannot serve the route, a
key without the scope, upstream refusals."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
import pytest
from switchyard_common.proto.controlplane_pb2 import Snapshot
from switchyard_dataplane.media.multipart import parse_form

from .conftest import AUTH, Gateway, make_snapshot
from .media_wire import CONTENT_TYPE, form, wav_bytes

PNG = b"\x89PNG\r\n\x1a\n\x00\x00binary\r\n\xff"
# Public model -> (capability, upstream model, unit, per-million price).
MEDIA = {
    "img": ("image", "dall-e-3", "image", 40_000.0),
    "asr": ("asr", "whisper-1", "second", 100.0),
    # Priced by the tokens its answers report, not by seconds.
    "asr-tokens": ("asr", "gpt-4o-transcribe", "input_token", 2.5),
    "tts": ("tts", "tts-1", "character", 15.0),
    "ocr": ("ocr", "mistral-ocr-latest", "page", 1_000.0),
    "seg": ("vision-segment", "sam-2", "image", 2_000.0),
}


def media_snapshot(**kwargs: object) -> Snapshot:
    snap = make_snapshot(
        base_urls={"up": "http://upstream.test/v1", "az": "https://az.test", "an": "https://an.test"},
        formats={"az": "azure", "an": "anthropic"},
        **kwargs,  # type: ignore[arg-type]
    )
    key = snap.keys[0]
    key.scopes.extend(["image", "asr", "tts", "ocr", "vision-segment"])
    for name, (capability, upstream, unit, price) in MEDIA.items():
        model = snap.models.add(id=f"m-{name}", name=name, capability=capability)
        model.targets.add(provider_slug="up", upstream_model=upstream)
        key.models.append(name)
        snap.prices.add(model=name, unit=unit, per_million=price, currency="USD")
    snap.prices.add(model="asr-tokens", unit="output_token", per_million=10.0, currency="USD")
    azure = snap.models.add(id="m-az-img", name="az-img", capability="image")
    azure.targets.add(provider_slug="az", upstream_model="my-dalle")
    # The Anthropic target cannot draw; the OpenAI one behind it can.
    mixed = snap.models.add(id="m-mixed", name="mixed-img", capability="image")
    mixed.targets.add(provider_slug="an", upstream_model="claude", priority=0)
    mixed.targets.add(provider_slug="up", upstream_model="dall-e-2", priority=1)
    only_an = snap.models.add(id="m-an-img", name="an-img", capability="image")
    only_an.targets.add(provider_slug="an", upstream_model="claude")
    key.models.extend(["az-img", "mixed-img", "an-img"])
    return snap


def upstream(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path.endswith("/images/generations") or path.endswith("/images/edits"):
        n = 2
        return httpx.Response(
            200, json={"created": 1, "data": [{"url": f"https://img.test/{i}.png"} for i in range(n)]}
        )
    if path.endswith("/audio/transcriptions"):
        model = parse_form(request.content, request.headers["content-type"]).text("model")
        if model == "gpt-4o-transcribe":
            usage = {"type": "tokens", "input_tokens": 40, "output_tokens": 10, "total_tokens": 50}
            return httpx.Response(200, json={"text": "hello", "usage": usage})
        return httpx.Response(200, text="hello", headers={"content-type": "text/plain; charset=utf-8"})
    if path.endswith("/audio/speech"):
        return httpx.Response(200, content=b"ID3audio-bytes" * 100, headers={"content-type": "audio/mpeg"})
    if path.endswith("/ocr"):
        return httpx.Response(
            200,
            json={
                "pages": [{"index": 0, "markdown": "# A"}],
                "model": "m",
                "usage_info": {"pages_processed": 3},
            },
        )
    if path.endswith("/vision/segmentations"):
        return httpx.Response(
            200, json={"object": "list", "data": [{"index": 0, "masks": []}, {"index": 1, "masks": []}]}
        )
    return httpx.Response(
        404, json={"error": {"message": f"no route {path}", "type": "invalid_request_error"}}
    )


@pytest.fixture
def gw(make_gateway: Callable[..., Gateway]) -> Gateway:
    return make_gateway(upstream, media_snapshot())


async def test_image_generation_passes_through_and_bills_the_images_returned(gw: Gateway) -> None:
    body = orjson.dumps({"model": "img", "prompt": "a lighthouse", "n": 2, "size": "1024x1024"})
    response = await gw.client.post("/v1/images/generations", content=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert [d["url"] for d in response.json()["data"]] == ["https://img.test/0.png", "https://img.test/1.png"]
    [sent] = gw.upstream_requests
    assert str(sent.url) == "http://upstream.test/v1/images/generations"
    assert sent.headers["authorization"] == "Bearer sk-upstream-secret"
    assert orjson.loads(sent.content) == {
        "model": "dall-e-3",
        "prompt": "a lighthouse",
        "n": 2,
        "size": "1024x1024",
    }
    [event] = gw.events
    assert (event.capability, event.images, event.provider, event.upstream_model) == (
        "image",
        2,
        "up",
        "dall-e-3",
    )
    assert event.cost == pytest.approx(2 * 0.04) and not event.unpriced and not event.tokens_estimated


async def test_image_edit_rewrites_only_the_model_field_of_the_form(gw: Gateway) -> None:
    body = form({"model": "img", "prompt": "add a hat", "n": "2"}, {"image[]": ("cat.png", "image/png", PNG)})
    response = await gw.client.post(
        "/openai/v1/images/edits", content=body, headers={**AUTH, "content-type": CONTENT_TYPE}
    )
    assert response.status_code == 200, response.text
    [sent] = gw.upstream_requests
    assert str(sent.url) == "http://upstream.test/v1/images/edits"
    assert sent.headers["content-type"] == CONTENT_TYPE
    assert sent.content == body.replace(b"\r\n\r\nimg\r\n", b"\r\n\r\ndall-e-3\r\n")
    assert gw.events[0].images == 2


async def test_transcription_is_billed_by_the_seconds_of_the_upload_when_the_answer_has_none(
    gw: Gateway,
) -> None:
    body = form({"model": "asr", "response_format": "text"}, {"file": ("a.wav", "audio/wav", wav_bytes(2.5))})
    response = await gw.client.post(
        "/v1/audio/transcriptions", content=body, headers={**AUTH, "content-type": CONTENT_TYPE}
    )
    assert response.status_code == 200 and response.text == "hello"
    assert response.headers["content-type"].startswith("text/plain")
    [event] = gw.events
    assert (event.capability, event.audio_seconds, event.tokens_estimated) == ("asr", 2.5, True)
    assert event.cost == pytest.approx(2.5 * 100 / 1e6)


async def test_transcription_with_token_usage_is_billed_by_tokens(gw: Gateway) -> None:
    body = form({"model": "asr-tokens"}, {"file": ("a.wav", "audio/wav", wav_bytes(2.0))})
    response = await gw.client.post(
        "/v1/audio/transcriptions", content=body, headers={**AUTH, "content-type": CONTENT_TYPE}
    )
    assert response.status_code == 200, response.text
    [event] = gw.events
    assert (event.input_tokens, event.output_tokens, event.audio_seconds) == (40, 10, 2.0)
    assert event.cost == pytest.approx((40 * 2.5 + 10 * 10.0) / 1e6)  # seconds have no price here
    assert not event.unpriced and not event.tokens_estimated


async def test_speech_is_relayed_as_it_comes_and_billed_by_characters(gw: Gateway) -> None:
    body = orjson.dumps({"model": "tts", "input": "Bonjour à tous", "voice": "alloy"})
    async with gw.client.stream("POST", "/v1/audio/speech", content=body, headers=AUTH) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/mpeg"
        audio = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert audio == b"ID3audio-bytes" * 100
    [event] = gw.events
    assert (event.capability, event.characters, event.stream) == ("tts", 14, True)
    assert event.cost == pytest.approx(14 * 15 / 1e6)


async def test_ocr_pages_and_segmentation_images(gw: Gateway) -> None:
    ocr = await gw.client.post(
        "/v1/ocr",
        json={"model": "ocr", "document": {"type": "document_url", "document_url": "https://d.test/a.pdf"}},
        headers=AUTH,
    )
    assert ocr.status_code == 200, ocr.text
    seg = await gw.client.post(
        "/anthropic/v1/vision/segmentations",
        json={"model": "seg", "images": ["https://i.test/1.png", "https://i.test/2.png"], "prompt": "dogs"},
        headers=AUTH,
    )
    assert seg.status_code == 200, seg.text
    assert [str(r.url) for r in gw.upstream_requests] == [
        "http://upstream.test/v1/ocr",
        "http://upstream.test/v1/vision/segmentations",
    ]
    assert orjson.loads(gw.upstream_requests[1].content)["model"] == "sam-2"
    ocr_event, seg_event = gw.events
    assert (ocr_event.capability, ocr_event.pages, ocr_event.cost) == ("ocr", 3, pytest.approx(3 * 0.001))
    assert (seg_event.capability, seg_event.images, seg_event.cost) == (
        "vision-segment",
        2,
        pytest.approx(0.004),
    )


async def test_azure_deployment_url_and_failover_past_a_provider_that_cannot_draw(gw: Gateway) -> None:
    body = {"prompt": "x"}
    assert (
        await gw.client.post("/v1/images/generations", json={"model": "az-img", **body}, headers=AUTH)
    ).status_code == 200
    assert (
        await gw.client.post("/v1/images/generations", json={"model": "mixed-img", **body}, headers=AUTH)
    ).status_code == 200
    azure, openai = gw.upstream_requests
    assert (
        str(azure.url)
        == "https://az.test/openai/deployments/my-dalle/images/generations?api-version=2024-10-21"
    )
    assert azure.headers["api-key"] == "sk-upstream-secret"
    assert str(openai.url) == "http://upstream.test/v1/images/generations"
    assert orjson.loads(openai.content)["model"] == "dall-e-2"


@pytest.mark.parametrize(
    ("path", "payload", "status", "code"),
    [
        ("/v1/images/generations", {"model": "chat", "prompt": "x"}, 400, "model_capability_mismatch"),
        ("/v1/audio/speech", {"model": "img", "input": "x"}, 400, "model_capability_mismatch"),
        ("/v1/images/generations", {"model": "an-img", "prompt": "x"}, 400, "unsupported_operation"),
        ("/v1/images/generations", {"model": "nope", "prompt": "x"}, 404, None),
        ("/v1/ocr", {"model": "ocr"}, 400, "missing_required_parameter"),
    ],
)
async def test_media_errors_in_openai_shape(
    gw: Gateway, path: str, payload: dict[str, object], status: int, code: str | None
) -> None:
    response = await gw.client.post(path, json=payload, headers=AUTH)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    if code is not None:
        assert error["code"] == code
    assert not gw.upstream_requests


async def test_a_key_without_the_capability_scope_is_refused(make_gateway: Callable[..., Gateway]) -> None:
    snap = media_snapshot()
    snap.keys[0].scopes.remove("tts")
    gw = make_gateway(upstream, snap)
    response = await gw.client.post("/v1/audio/speech", json={"model": "tts", "input": "x"}, headers=AUTH)
    assert response.status_code == 403
    assert (
        response.json()["error"]["code"] == "missing_scope" and "tts" in response.json()["error"]["message"]
    )


async def test_upstream_refusals_reach_the_caller_with_their_retry_hint(
    make_gateway: Callable[..., Gateway],
) -> None:
    def throttled(request: httpx.Request) -> httpx.Response:
        error = {"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limit_exceeded"}}
        return httpx.Response(429, json=error, headers={"retry-after": "7"})

    gw = make_gateway(throttled, media_snapshot())
    body = form({"model": "asr"}, {"file": ("a.wav", "audio/wav", wav_bytes(0.5))})
    response = await gw.client.post(
        "/v1/audio/translations", content=body, headers={**AUTH, "content-type": CONTENT_TYPE}
    )
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert response.json()["error"]["message"] == "slow down"
    [event] = gw.events
    assert (event.status, event.audio_seconds, event.cost) == (
        429,
        0.0,
        0.0,
    )  # nothing answered, nothing billed


async def test_multipart_route_refuses_a_json_body(gw: Gateway) -> None:
    response = await gw.client.post("/v1/audio/transcriptions", json={"model": "asr"}, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_content_type"


@pytest.mark.timeout(60)
async def test_budgets_reserve_the_units_a_media_call_asks_for() -> None:
    """Admission reserves n images at the image price before the call, settlement keeps
    what the answer billed: a budget for 2.5 images admits n=2, then not one more."""
    from .governed import governed_gateway

    snap = media_snapshot()
    snap.keys[0].limits.budgets.add(amount=0.1, currency="USD", period="day")
    async with governed_gateway(snap, upstream=upstream) as gw:
        three = await gw.client.post(
            "/v1/images/generations", json={"model": "img", "prompt": "x", "n": 3}, headers=AUTH
        )
        assert three.status_code == 429 and three.json()["error"]["code"] == "insufficient_quota"
        two = await gw.client.post(
            "/v1/images/generations", json={"model": "img", "prompt": "x", "n": 2}, headers=AUTH
        )
        assert two.status_code == 200, two.text
        assert gw.events[-1].cost == pytest.approx(0.08)
        await gw.governor.drain()
        one = await gw.client.post(
            "/v1/images/generations", json={"model": "img", "prompt": "x"}, headers=AUTH
        )
        assert one.status_code == 429 and one.json()["error"]["code"] == "insufficient_quota"
        # Speech reserves its characters: 0.02 left buys 1,333 characters at $15 per million.
        cheap = await gw.client.post(
            "/v1/audio/speech", json={"model": "tts", "input": "x" * 1000}, headers=AUTH
        )
        assert cheap.status_code == 200
        await gw.governor.drain()
        dear = await gw.client.post(
            "/v1/audio/speech", json={"model": "tts", "input": "x" * 2000}, headers=AUTH
        )
        assert dear.status_code == 429


async def test_full_audit_keeps_form_fields_and_describes_files_and_audio(
    make_gateway: Callable[..., Gateway],
) -> None:
    snap = media_snapshot()
    snap.organizations[0].policy.audit = "full"
    gw = make_gateway(upstream, snap)
    body = form({"model": "img", "prompt": "add a hat"}, {"image": ("cat.png", "image/png", PNG)})
    edited = await gw.client.post(
        "/v1/images/edits", content=body, headers={**AUTH, "content-type": CONTENT_TYPE}
    )
    assert edited.status_code == 200
    speech = await gw.client.post("/v1/audio/speech", json={"model": "tts", "input": "hi"}, headers=AUTH)
    assert speech.status_code == 200
    edit_event, speech_event = gw.events
    assert orjson.loads(edit_event.request_body or "") == {
        "model": "img",
        "prompt": "add a hat",
        "files": {"image": {"filename": "cat.png", "content_type": "image/png", "size": len(PNG)}},
    }
    assert orjson.loads(edit_event.response_body or "")["data"][0]["url"] == "https://img.test/0.png"
    assert speech_event.response_body == f"[audio/mpeg, {len(b'ID3audio-bytes') * 100} bytes]"
