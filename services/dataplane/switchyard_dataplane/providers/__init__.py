"""Provider adapters, chosen through a registry keyed by `api_format`."""

from __future__ import annotations

from .base import ApiFormat, ProviderAdapter
from .mock import MockAdapter
from .openai_compat import OpenAICompatAdapter

__all__ = ["ADAPTERS", "adapter_for"]

ADAPTERS: dict[str, ProviderAdapter] = {
    ApiFormat.OPENAI: OpenAICompatAdapter(),
    ApiFormat.MOCK: MockAdapter(),
}


def adapter_for(api_format: str) -> ProviderAdapter | None:
    return ADAPTERS.get(api_format)
