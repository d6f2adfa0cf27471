"""The config-as-code document (design.md section 3), shared by `switchyard apply`,
`switchyard up --config` and the control plane's apply endpoint.

Validation is complete before anything is written: unknown fields, bad URLs and
dangling references are all reported, each with its path inside the document.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError, ConfigIssue

__all__ = [
    "API_FORMATS",
    "AUTH_HEADER_BEARER",
    "AUTH_HEADER_NONE",
    "CAPABILITIES",
    "BudgetSpec",
    "ConfigDocument",
    "KeyLimitsSpec",
    "KeySpec",
    "ModelSpec",
    "OrganizationSpec",
    "PriceSpec",
    "ProviderSpec",
    "TargetSpec",
    "load_config_file",
    "normalize_auth_header",
    "parse_config",
]

API_FORMATS = ("openai", "anthropic", "gemini", "azure", "mock")
# `ProviderSpec.auth_header` values with a meaning of their own; anything else non-empty
# is the name of the header that carries the raw credential.
AUTH_HEADER_BEARER = "bearer"
AUTH_HEADER_NONE = "none"
# RFC 9110 `token`: the characters a header field name may use.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Headers the HTTP client owns (framing, routing, body type): a credential there would
# break the request rather than authenticate it.
_RESERVED_HEADERS = frozenset({"host", "content-length", "content-type", "transfer-encoding", "connection"})
CAPABILITIES = ("llm", "embedding", "image", "asr", "tts", "ocr", "vision-segment")
PRICE_UNITS = (
    "input_token",
    "output_token",
    "cached_input_token",
    "reasoning_token",
    "request",
    "image",
    "page",
    "second",
    "character",
)


def normalize_auth_header(value: str) -> str:
    """The canonical form of a provider's `auth_header` ("bearer" and "none" lower-case,
    header names as written); ValueError when it is neither those nor a usable header name."""
    value = value.strip()
    if value.lower() in (AUTH_HEADER_BEARER, AUTH_HEADER_NONE):
        return value.lower()
    if value and not _HEADER_NAME.fullmatch(value):
        raise ValueError(
            f"not a valid HTTP header name: {value!r} (use '{AUTH_HEADER_BEARER}', "
            f"'{AUTH_HEADER_NONE}' or a header name such as X-Api-Key)"
        )
    if value.lower() in _RESERVED_HEADERS:
        raise ValueError(f"{value!r} cannot carry the credential")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrganizationSpec(_Strict):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    policy: dict[str, str] = Field(default_factory=dict)


class ProviderSpec(_Strict):
    slug: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    api_format: Literal["openai", "anthropic", "gemini", "azure", "mock"]
    base_url: str = ""
    api_path: str = ""
    api_key: str | None = None
    api_key_env: str | None = None
    # Empty: the api_format's own header; "bearer": `Authorization: Bearer <key>`;
    # "none": no credential sent; otherwise a header name carrying the raw key.
    auth_header: str = Field(default="", max_length=100)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=600.0, gt=0)
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    models: list[str] = Field(default_factory=list)

    @field_validator("auth_header")
    @classmethod
    def _auth_header(cls, value: str) -> str:
        return normalize_auth_header(value)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value:
            return value
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value.rstrip("/")


class TargetSpec(_Strict):
    provider: str
    model: str
    priority: int = 0
    weight: int = Field(default=1, ge=0)


class ModelSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    capability: Literal["llm", "embedding", "image", "asr", "tts", "ocr", "vision-segment"] = "llm"
    targets: list[TargetSpec] = Field(min_length=1)


class PriceSpec(_Strict):
    model: str
    unit: Literal[
        "input_token",
        "output_token",
        "cached_input_token",
        "reasoning_token",
        "request",
        "image",
        "page",
        "second",
        "character",
    ]
    per_million: float = Field(ge=0)
    currency: str = Field(default="USD", min_length=3, max_length=3)


class BudgetSpec(_Strict):
    amount: float = Field(gt=0)
    period: Literal["day", "week", "month", "total"] = "month"


class KeyLimitsSpec(_Strict):
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    budget: BudgetSpec | None = None


class KeySpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    org: str
    value_env: str | None = None
    # Filled in by the applying client from value_env; never written in files.
    value: str | None = None
    scopes: list[str] = Field(default_factory=lambda: ["llm"])
    models: list[str] = Field(default_factory=list)
    limits: KeyLimitsSpec = Field(default_factory=KeyLimitsSpec)
    revoked: bool = False


class ConfigDocument(_Strict):
    organizations: list[OrganizationSpec] = Field(default_factory=list)
    providers: list[ProviderSpec] = Field(default_factory=list)
    models: list[ModelSpec] = Field(default_factory=list)
    prices: list[PriceSpec] = Field(default_factory=list)
    keys: list[KeySpec] = Field(default_factory=list)

    def reference_issues(
        self,
        *,
        known_orgs: set[str] = frozenset(),  # type: ignore[assignment]
        known_providers: set[str] = frozenset(),  # type: ignore[assignment]
        known_models: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> list[ConfigIssue]:
        """Dangling references and duplicates, given what already exists in the store."""
        issues: list[ConfigIssue] = []
        orgs = known_orgs | {o.name for o in self.organizations}
        providers = known_providers | {p.slug for p in self.providers}
        models = known_models | {m.name for m in self.models}
        for section, attr in (
            ("organizations", "name"),
            ("providers", "slug"),
            ("models", "name"),
        ):
            seen: set[str] = set()
            for i, item in enumerate(getattr(self, section)):
                value = getattr(item, attr)
                if value in seen:
                    issues.append(ConfigIssue(f"{section}[{i}].{attr}", f"duplicate {attr} {value!r}"))
                seen.add(value)
        seen_keys: set[tuple[str, str]] = set()
        for i, key in enumerate(self.keys):
            if (key.org, key.name) in seen_keys:
                issues.append(
                    ConfigIssue(f"keys[{i}].name", f"duplicate key {key.name!r} in org {key.org!r}")
                )
            seen_keys.add((key.org, key.name))
        seen_prices: set[tuple[str, str]] = set()
        for i, price in enumerate(self.prices):
            if (price.model, price.unit) in seen_prices:
                issues.append(
                    ConfigIssue(f"prices[{i}]", f"duplicate price for {price.model!r} {price.unit}")
                )
            seen_prices.add((price.model, price.unit))
        for i, provider in enumerate(self.providers):
            if provider.api_format != "mock" and not provider.base_url:
                issues.append(ConfigIssue(f"providers[{i}].base_url", "required for this api_format"))
            if provider.api_key and provider.api_key_env:
                issues.append(ConfigIssue(f"providers[{i}]", "give api_key or api_key_env, not both"))
        for i, model in enumerate(self.models):
            for j, target in enumerate(model.targets):
                if target.provider not in providers:
                    issues.append(
                        ConfigIssue(
                            f"models[{i}].targets[{j}].provider", f"unknown provider {target.provider!r}"
                        )
                    )
        for i, price in enumerate(self.prices):
            if price.model not in models:
                issues.append(ConfigIssue(f"prices[{i}].model", f"unknown model {price.model!r}"))
        for i, key in enumerate(self.keys):
            if key.org not in orgs:
                issues.append(ConfigIssue(f"keys[{i}].org", f"unknown organization {key.org!r}"))
            for j, name in enumerate(key.models):
                if name not in models:
                    issues.append(ConfigIssue(f"keys[{i}].models[{j}]", f"unknown model {name!r}"))
            if key.value is not None and not key.value.startswith("gk_"):
                issues.append(ConfigIssue(f"keys[{i}].value_env", "key values must start with 'gk_'"))
            if key.value is not None and len(key.value) < 35:
                issues.append(
                    ConfigIssue(f"keys[{i}].value_env", "key values need at least 32 characters after 'gk_'")
                )
        return issues


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def parse_config(data: Any, *, file: str | None = None) -> ConfigDocument:
    """Validate a parsed document; raise ConfigError listing every problem found."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue("", "the document must be a mapping", file)])
    try:
        doc = ConfigDocument.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            issues.append(ConfigIssue(_loc_to_path(tuple(err["loc"])), message, file))
        raise ConfigError(issues) from None
    return doc


def load_config_file(
    path: str | Path, *, environ: dict[str, str] | None = None, check_references: bool = True
) -> ConfigDocument:
    """Read and validate a YAML file, resolving `value_env` from `environ`.

    `check_references=False` leaves dangling-reference checks to the caller, for a file
    that is merged onto another document (`switchyard up --config` onto the defaults)."""
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([ConfigIssue("", f"cannot read file: {exc.strerror}", name)]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue("", f"invalid YAML: {exc}", name)]) from None
    doc = parse_config(data, file=name)
    doc = resolve_env(doc, environ or {}, file=name)
    issues = doc.reference_issues() if check_references else []
    for issue in issues:
        issue.file = name
    if issues:
        raise ConfigError(issues)
    return doc


def resolve_env(doc: ConfigDocument, environ: dict[str, str], *, file: str | None = None) -> ConfigDocument:
    """Fill key values from `value_env`. A named variable that is unset is an error:
    applying would otherwise silently mint a different key than the one expected."""
    issues: list[ConfigIssue] = []
    keys = []
    for i, key in enumerate(doc.keys):
        if key.value_env:
            value = environ.get(key.value_env)
            if not value:
                issues.append(
                    ConfigIssue(
                        f"keys[{i}].value_env", f"environment variable {key.value_env} is not set", file
                    )
                )
                keys.append(key)
                continue
            key = key.model_copy(update={"value": value})
        keys.append(key)
    if issues:
        raise ConfigError(issues)
    return doc.model_copy(update={"keys": keys})
