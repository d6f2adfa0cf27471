from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RateLimits(_message.Message):
    __slots__ = ("rpm", "tpm", "concurrency")
    RPM_FIELD_NUMBER: _ClassVar[int]
    TPM_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    rpm: int
    tpm: int
    concurrency: int
    def __init__(self, rpm: _Optional[int] = ..., tpm: _Optional[int] = ..., concurrency: _Optional[int] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("amount", "currency", "period")
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    amount: float
    currency: str
    period: str
    def __init__(self, amount: _Optional[float] = ..., currency: _Optional[str] = ..., period: _Optional[str] = ...) -> None: ...

class RetryPolicy(_message.Message):
    __slots__ = ("retry_on", "max_attempts", "deadline_seconds")
    RETRY_ON_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    retry_on: _containers.RepeatedScalarFieldContainer[str]
    max_attempts: int
    deadline_seconds: float
    def __init__(self, retry_on: _Optional[_Iterable[str]] = ..., max_attempts: _Optional[int] = ..., deadline_seconds: _Optional[float] = ...) -> None: ...

class BreakerPolicy(_message.Message):
    __slots__ = ("failure_threshold", "cooldown_seconds")
    FAILURE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    COOLDOWN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    failure_threshold: int
    cooldown_seconds: float
    def __init__(self, failure_threshold: _Optional[int] = ..., cooldown_seconds: _Optional[float] = ...) -> None: ...

class OrgPolicy(_message.Message):
    __slots__ = ("routing", "overflow", "audit", "on_redis_failure", "unpriced", "allowed_providers", "retry", "breaker", "limits", "budgets", "shadow", "audit_retention_days", "audit_max_body_bytes", "audit_redact_paths")
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    OVERFLOW_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    ON_REDIS_FAILURE_FIELD_NUMBER: _ClassVar[int]
    UNPRICED_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    BREAKER_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    BUDGETS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    AUDIT_RETENTION_DAYS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_MAX_BODY_BYTES_FIELD_NUMBER: _ClassVar[int]
    AUDIT_REDACT_PATHS_FIELD_NUMBER: _ClassVar[int]
    routing: str
    overflow: str
    audit: str
    on_redis_failure: str
    unpriced: str
    allowed_providers: _containers.RepeatedScalarFieldContainer[str]
    retry: RetryPolicy
    breaker: BreakerPolicy
    limits: RateLimits
    budgets: _containers.RepeatedCompositeFieldContainer[Budget]
    shadow: _containers.RepeatedScalarFieldContainer[str]
    audit_retention_days: int
    audit_max_body_bytes: int
    audit_redact_paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, routing: _Optional[str] = ..., overflow: _Optional[str] = ..., audit: _Optional[str] = ..., on_redis_failure: _Optional[str] = ..., unpriced: _Optional[str] = ..., allowed_providers: _Optional[_Iterable[str]] = ..., retry: _Optional[_Union[RetryPolicy, _Mapping]] = ..., breaker: _Optional[_Union[BreakerPolicy, _Mapping]] = ..., limits: _Optional[_Union[RateLimits, _Mapping]] = ..., budgets: _Optional[_Iterable[_Union[Budget, _Mapping]]] = ..., shadow: _Optional[_Iterable[str]] = ..., audit_retention_days: _Optional[int] = ..., audit_max_body_bytes: _Optional[int] = ..., audit_redact_paths: _Optional[_Iterable[str]] = ...) -> None: ...

class Organization(_message.Message):
    __slots__ = ("id", "name", "policy_raw", "policy")
    class PolicyRawEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    POLICY_RAW_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    policy_raw: _containers.ScalarMap[str, str]
    policy: OrgPolicy
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., policy_raw: _Optional[_Mapping[str, str]] = ..., policy: _Optional[_Union[OrgPolicy, _Mapping]] = ...) -> None: ...

class Provider(_message.Message):
    __slots__ = ("id", "slug", "api_format", "base_url", "api_path", "api_key_encrypted", "api_key_env", "extra_headers", "timeout_seconds", "connect_timeout_seconds", "models", "auth_header", "disabled", "breaker_epoch")
    class ExtraHeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    API_FORMAT_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    API_PATH_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ENCRYPTED_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ENV_FIELD_NUMBER: _ClassVar[int]
    EXTRA_HEADERS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CONNECT_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    AUTH_HEADER_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    BREAKER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    id: str
    slug: str
    api_format: str
    base_url: str
    api_path: str
    api_key_encrypted: str
    api_key_env: str
    extra_headers: _containers.ScalarMap[str, str]
    timeout_seconds: float
    connect_timeout_seconds: float
    models: _containers.RepeatedScalarFieldContainer[str]
    auth_header: str
    disabled: bool
    breaker_epoch: str
    def __init__(self, id: _Optional[str] = ..., slug: _Optional[str] = ..., api_format: _Optional[str] = ..., base_url: _Optional[str] = ..., api_path: _Optional[str] = ..., api_key_encrypted: _Optional[str] = ..., api_key_env: _Optional[str] = ..., extra_headers: _Optional[_Mapping[str, str]] = ..., timeout_seconds: _Optional[float] = ..., connect_timeout_seconds: _Optional[float] = ..., models: _Optional[_Iterable[str]] = ..., auth_header: _Optional[str] = ..., disabled: _Optional[bool] = ..., breaker_epoch: _Optional[str] = ...) -> None: ...

class RouteTarget(_message.Message):
    __slots__ = ("provider_slug", "upstream_model", "priority", "weight", "limits")
    PROVIDER_SLUG_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_MODEL_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    provider_slug: str
    upstream_model: str
    priority: int
    weight: int
    limits: RateLimits
    def __init__(self, provider_slug: _Optional[str] = ..., upstream_model: _Optional[str] = ..., priority: _Optional[int] = ..., weight: _Optional[int] = ..., limits: _Optional[_Union[RateLimits, _Mapping]] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("id", "name", "capability", "targets", "routing", "limits", "shadow", "max_output_tokens")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    capability: str
    targets: _containers.RepeatedCompositeFieldContainer[RouteTarget]
    routing: str
    limits: RateLimits
    shadow: _containers.RepeatedScalarFieldContainer[str]
    max_output_tokens: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., capability: _Optional[str] = ..., targets: _Optional[_Iterable[_Union[RouteTarget, _Mapping]]] = ..., routing: _Optional[str] = ..., limits: _Optional[_Union[RateLimits, _Mapping]] = ..., shadow: _Optional[_Iterable[str]] = ..., max_output_tokens: _Optional[int] = ...) -> None: ...

class KeyLimits(_message.Message):
    __slots__ = ("rpm", "tpm", "concurrency", "budgets")
    RPM_FIELD_NUMBER: _ClassVar[int]
    TPM_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    BUDGETS_FIELD_NUMBER: _ClassVar[int]
    rpm: int
    tpm: int
    concurrency: int
    budgets: _containers.RepeatedCompositeFieldContainer[Budget]
    def __init__(self, rpm: _Optional[int] = ..., tpm: _Optional[int] = ..., concurrency: _Optional[int] = ..., budgets: _Optional[_Iterable[_Union[Budget, _Mapping]]] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("id", "name", "org_id", "key_hash", "scopes", "models", "revoked", "limits", "expires_at", "disabled", "allowed_cidrs", "shadow")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_CIDRS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    org_id: str
    key_hash: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    models: _containers.RepeatedScalarFieldContainer[str]
    revoked: bool
    limits: KeyLimits
    expires_at: int
    disabled: bool
    allowed_cidrs: _containers.RepeatedScalarFieldContainer[str]
    shadow: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., org_id: _Optional[str] = ..., key_hash: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., models: _Optional[_Iterable[str]] = ..., revoked: _Optional[bool] = ..., limits: _Optional[_Union[KeyLimits, _Mapping]] = ..., expires_at: _Optional[int] = ..., disabled: _Optional[bool] = ..., allowed_cidrs: _Optional[_Iterable[str]] = ..., shadow: _Optional[_Iterable[str]] = ...) -> None: ...

class Price(_message.Message):
    __slots__ = ("model", "unit", "per_million", "currency", "effective_from_ms")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_FROM_MS_FIELD_NUMBER: _ClassVar[int]
    model: str
    unit: str
    per_million: float
    currency: str
    effective_from_ms: int
    def __init__(self, model: _Optional[str] = ..., unit: _Optional[str] = ..., per_million: _Optional[float] = ..., currency: _Optional[str] = ..., effective_from_ms: _Optional[int] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("version", "id", "created_at_ms", "organizations", "providers", "models", "keys", "prices")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATIONS_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    PRICES_FIELD_NUMBER: _ClassVar[int]
    version: int
    id: str
    created_at_ms: int
    organizations: _containers.RepeatedCompositeFieldContainer[Organization]
    providers: _containers.RepeatedCompositeFieldContainer[Provider]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    prices: _containers.RepeatedCompositeFieldContainer[Price]
    def __init__(self, version: _Optional[int] = ..., id: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., organizations: _Optional[_Iterable[_Union[Organization, _Mapping]]] = ..., providers: _Optional[_Iterable[_Union[Provider, _Mapping]]] = ..., models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ..., keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ..., prices: _Optional[_Iterable[_Union[Price, _Mapping]]] = ...) -> None: ...

class WatchSnapshotRequest(_message.Message):
    __slots__ = ("known_version", "dataplane_id")
    KNOWN_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATAPLANE_ID_FIELD_NUMBER: _ClassVar[int]
    known_version: int
    dataplane_id: str
    def __init__(self, known_version: _Optional[int] = ..., dataplane_id: _Optional[str] = ...) -> None: ...

class GetSnapshotRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
