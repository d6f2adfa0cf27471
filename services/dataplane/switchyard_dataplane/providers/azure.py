"""Azure OpenAI: the OpenAI wire protocol on deployment URLs, with an `api-key` header.

The deployment is the target's upstream model. `api_path` is the URL template after
`base_url` (`{deployment}` is replaced per call); the default is
`/openai/deployments/{deployment}/chat/completions?api-version=2024-10-21`. An `api_path`
that is only a query (`?api-version=2025-04-01-preview`) keeps the default path with that
API version. The v1 API (`/openai/v1/chat/completions`, model in the body) is an
`api_path` without `{deployment}`.
"""

from __future__ import annotations

from urllib.parse import quote

from .base import MEDIA_OPERATIONS, ApiFormat, Operation
from .openai_compat import OpenAICompatAdapter

__all__ = ["DEFAULT_API_VERSION", "AzureOpenAIAdapter"]

DEFAULT_API_VERSION = "2024-10-21"
_DEFAULT_PATH = "/openai/deployments/{deployment}/chat/completions"
_DEPLOYMENT = "{deployment}"
_AZURE_MEDIA = tuple(op for op in MEDIA_OPERATIONS if op not in (Operation.OCR, Operation.SEGMENTATIONS))


class AzureOpenAIAdapter(OpenAICompatAdapter):
    api_format: str = ApiFormat.AZURE
    default_auth: str = "api-key"

    def upstream_urls(self, base_url: str, api_path: str) -> dict[str, str]:
        base = base_url.rstrip("/")
        if not api_path or api_path.startswith("?"):
            query = api_path or f"?api-version={DEFAULT_API_VERSION}"
            chat = base + _DEFAULT_PATH + query
        else:
            chat = base + "/" + api_path.lstrip("/")
        path, sep, query = chat.partition("?")
        urls: dict[str, str] = {Operation.CHAT: chat}
        if path.endswith("/chat/completions"):
            root = path.removesuffix("chat/completions")
            urls[Operation.EMBEDDINGS] = root + "embeddings" + sep + query
            # Azure serves images and audio on the deployment; OCR and segmentation it does not.
            for operation in _AZURE_MEDIA:
                urls[operation] = root + operation.value + sep + query
        return urls

    def url_for(self, url: str, upstream_model: str) -> str:
        if _DEPLOYMENT not in url:
            return url
        return url.replace(_DEPLOYMENT, quote(upstream_model, safe=""))
