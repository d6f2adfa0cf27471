"""The split stack configured for the media contract tests: an OpenAI and an Azure
provider on the every-protocol mock (`tests.support.mock_upstreams`, whose media routes
are in `openai_media.py`), an Anthropic one that cannot serve media, a public model of
each media capability with its price, and two keys: one with every media scope, one
with `llm` only. Plus reading a call's ledger row with its media units."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.sdk_stack import wait_for_row_since
from tests.support.stack import SplitStack, split_stack

UPSTREAM_KEYS = {"oa": "sk-oa-media", "az": "az-media-key", "an": "sk-ant-media"}
AZURE_API_VERSION = "2025-01-01-preview"

# Public model -> (provider, upstream model, capability).
MODELS: dict[str, tuple[str, str, str]] = {
    "chat-model": ("oa", "gpt-mock", "llm"),
    "img-model": ("oa", "dall-e-3", "image"),
    "img-tokens": ("oa", "gpt-image-1", "image"),
    "img-az": ("az", "dall-e-3-deployment", "image"),
    "img-429": ("oa", "error-429", "image"),
    "img-claude": ("an", "claude-mock", "image"),
    "asr-model": ("oa", "whisper-1", "asr"),
    "asr-tokens": ("oa", "gpt-4o-transcribe", "asr"),
    "asr-nousage": ("oa", "no-usage-whisper", "asr"),
    "asr-az": ("az", "whisper-deployment", "asr"),
    "asr-429": ("oa", "error-429", "asr"),
    "tts-model": ("oa", "tts-1", "tts"),
    "ocr-model": ("oa", "mistral-ocr-latest", "ocr"),
    "ocr-nousage": ("oa", "no-usage-ocr", "ocr"),
    "seg-model": ("oa", "sam-2", "vision-segment"),
}

# Public model -> {price unit: per million units} (USD unless CURRENCIES says otherwise).
PRICES: dict[str, dict[str, float]] = {
    "img-model": {"image": 40_000.0},  # $0.04 an image
    "img-az": {"image": 80_000.0},
    "img-tokens": {"input_token": 5.0, "output_token": 40.0},  # gpt-image: billed by tokens
    "asr-model": {"second": 100.0},  # $0.006 a minute
    "asr-tokens": {"input_token": 2.5, "output_token": 10.0},
    "asr-nousage": {"second": 100.0},
    "asr-az": {"second": 120.0},
    "tts-model": {"character": 15.0},
    "ocr-model": {"page": 1_000.0},
    "ocr-nousage": {"page": 1_000.0},
    "seg-model": {"image": 2_000.0},
}
CURRENCIES = {"ocr-model": "EUR", "ocr-nousage": "EUR"}


def media_config_yaml(mock_port: int, _closed_port: int) -> str:
    mock = f"http://127.0.0.1:{mock_port}"
    models = "\n".join(
        f"  - {{name: {name}, capability: {capability},"
        f" targets: [{{provider: {provider}, model: {upstream}}}]}}"
        for name, (provider, upstream, capability) in MODELS.items()
    )
    prices = "\n".join(
        f"  - {{model: {name}, unit: {unit}, per_million: {rate}, currency: {CURRENCIES.get(name, 'USD')}}}"
        for name, rates in PRICES.items()
        for unit, rate in rates.items()
    )
    head = textwrap.dedent(
        f"""
        organizations:
          - name: acme
        providers:
          - {{slug: oa, api_format: openai, base_url: {mock}/v1, api_key: {UPSTREAM_KEYS["oa"]}}}
          - slug: az
            api_format: azure
            base_url: {mock}
            api_path: "?api-version={AZURE_API_VERSION}"
            api_key: {UPSTREAM_KEYS["az"]}
          - {{slug: an, api_format: anthropic, base_url: {mock}, api_key: {UPSTREAM_KEYS["an"]}}}
        """
    )
    keys = textwrap.dedent(
        """
        keys:
          - name: media-app
            org: acme
            value_env: APP_KEY
            scopes: [llm, image, asr, tts, ocr, vision-segment]
          - name: chat-only
            org: acme
            value_env: NARROW_KEY
            scopes: [llm]
        """
    )
    return f"{head}models:\n{models}\nprices:\n{prices}\n{keys}"


@contextlib.contextmanager
def media_stack(root: Path) -> Iterator[SplitStack]:
    # Audio uploads are larger than the 64 KiB request cap the other stacks use.
    with split_stack(
        root,
        config=media_config_yaml,
        mock_module="tests.support.mock_upstreams",
        extra_env={"SWITCHYARD_MAX_BODY_BYTES": str(4 * 1024 * 1024)},
    ) as stack:
        yield stack


MEDIA_COLUMNS = (
    "capability",
    "model",
    "provider",
    "upstream_model",
    "status",
    "error_type",
    "input_tokens",
    "output_tokens",
    "tokens_estimated",
    "images",
    "pages",
    "audio_seconds",
    "characters",
    "cost",
    "currency",
    "unpriced",
    "stream",
)


def wait_for_media_row(stack: SplitStack, model: str, since: float, timeout: float = 15.0) -> dict[str, Any]:
    """The ledger row of the call to `model` received after `since`, with the media
    units and the bill."""
    return wait_for_row_since(stack, model, since, timeout, columns=MEDIA_COLUMNS)
