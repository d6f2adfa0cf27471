"""Provider adapters, chosen through a registry keyed by `api_format`."""

from __future__ import annotations

from .anthropic import AnthropicAdapter
from .azure import AzureOpenAIAdapter
from .base import ApiFormat, ProviderAdapter
from .gemini import GeminiAdapter
from .mock import MockAdapter
from .openai_compat import OpenAICompatAdapter

__all__ = ["ADAPTERS", "adapter_for"]

ADAPTERS: dict[str, ProviderAdapter] = {
    ApiFormat.OPENAI: OpenAICompatAdapter(),
    ApiFormat.AZURE: AzureOpenAIAdapter(),
    ApiFormat.ANTHROPIC: AnthropicAdapter(),
    ApiFormat.GEMINI: GeminiAdapter(),
    ApiFormat.MOCK: MockAdapter(),
}


def adapter_for(api_format: str) -> ProviderAdapter | None:
    return ADAPTERS.get(api_format)
