"""The configuration `switchyard up` always applies: a default organization, the
built-in mock provider and model, the quickstart key, and the preset providers whose
API keys are present in the environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from switchyard_common.config_schema import ConfigDocument, parse_config

QUICKSTART_ORG = "default"
QUICKSTART_MODEL = "mock-chat"
QUICKSTART_KEY_NAME = "quickstart"

# OpenAI-compatible providers that only need their API key to become usable.
PRESETS: tuple[dict[str, Any], ...] = (
    {
        "env": "DEEPSEEK_API_KEY",
        "provider": {
            "slug": "deepseek",
            "api_format": "openai",
            "base_url": "https://api.deepseek.com/v1",
            "api_key_env": "DEEPSEEK_API_KEY",
            "models": ["deepseek-chat", "deepseek-reasoner"],
        },
    },
    {
        "env": "DASHSCOPE_API_KEY",
        "provider": {
            "slug": "dashscope",
            "api_format": "openai",
            "base_url": "https://dashscope.aliyuncs.com/compatible-mode/v1",
            "api_key_env": "DASHSCOPE_API_KEY",
            "models": ["qwen-plus", "qwen-max", "qwen-turbo"],
        },
    },
)


def default_document(quickstart_key: str, environ: Mapping[str, str]) -> ConfigDocument:
    providers: list[dict[str, Any]] = [{"slug": "mock", "api_format": "mock", "models": [QUICKSTART_MODEL]}]
    models: list[dict[str, Any]] = [
        {
            "name": QUICKSTART_MODEL,
            "capability": "llm",
            "targets": [{"provider": "mock", "model": QUICKSTART_MODEL}],
        }
    ]
    for preset in PRESETS:
        if not environ.get(preset["env"]):
            continue
        provider = preset["provider"]
        providers.append(provider)
        for name in provider["models"]:
            models.append({"name": name, "targets": [{"provider": provider["slug"], "model": name}]})
    document = {
        "organizations": [{"name": QUICKSTART_ORG}],
        "providers": providers,
        "models": models,
        "keys": [{"name": QUICKSTART_KEY_NAME, "org": QUICKSTART_ORG, "scopes": ["llm"]}],
    }
    doc = parse_config(document, file="<built-in defaults>")
    keys = [doc.keys[0].model_copy(update={"value": quickstart_key})]
    return doc.model_copy(update={"keys": keys})


def merge_documents(base: ConfigDocument, extra: ConfigDocument) -> ConfigDocument:
    """`extra` (the user's --config file) wins over the defaults on the same names."""

    def merged(section: str, key: str) -> list[Any]:
        items = {getattr(item, key): item for item in getattr(base, section)}
        for item in getattr(extra, section):
            items[getattr(item, key)] = item
        return list(items.values())

    keys = {(k.org, k.name): k for k in base.keys}
    keys.update({(k.org, k.name): k for k in extra.keys})
    prices = {(p.model, p.unit, p.effective_from): p for p in base.prices}
    prices.update({(p.model, p.unit, p.effective_from): p for p in extra.prices})
    return ConfigDocument(
        organizations=merged("organizations", "name"),
        providers=merged("providers", "slug"),
        models=merged("models", "name"),
        prices=list(prices.values()),
        keys=list(keys.values()),
    )
