from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Organization(_message.Message):
    __slots__ = ("id", "name", "policy")
    class PolicyEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    policy: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., policy: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Provider(_message.Message):
    __slots__ = ("id", "slug", "api_format", "base_url", "api_path", "api_key_encrypted", "api_key_env", "extra_headers", "timeout_seconds", "connect_timeout_seconds", "models", "auth_header")
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
    def __init__(self, id: _Optional[str] = ..., slug: _Optional[str] = ..., api_format: _Optional[str] = ..., base_url: _Optional[str] = ..., api_path: _Optional[str] = ..., api_key_encrypted: _Optional[str] = ..., api_key_env: _Optional[str] = ..., extra_headers: _Optional[_Mapping[str, str]] = ..., timeout_seconds: _Optional[float] = ..., connect_timeout_seconds: _Optional[float] = ..., models: _Optional[_Iterable[str]] = ..., auth_header: _Optional[str] = ...) -> None: ...

class RouteTarget(_message.Message):
    __slots__ = ("provider_slug", "upstream_model", "priority", "weight")
    PROVIDER_SLUG_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_MODEL_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    provider_slug: str
    upstream_model: str
    priority: int
    weight: int
    def __init__(self, provider_slug: _Optional[str] = ..., upstream_model: _Optional[str] = ..., priority: _Optional[int] = ..., weight: _Optional[int] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("id", "name", "capability", "targets")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    capability: str
    targets: _containers.RepeatedCompositeFieldContainer[RouteTarget]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., capability: _Optional[str] = ..., targets: _Optional[_Iterable[_Union[RouteTarget, _Mapping]]] = ...) -> None: ...

class KeyLimits(_message.Message):
    __slots__ = ("rpm", "tpm", "budget_amount", "budget_period")
    RPM_FIELD_NUMBER: _ClassVar[int]
    TPM_FIELD_NUMBER: _ClassVar[int]
    BUDGET_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    BUDGET_PERIOD_FIELD_NUMBER: _ClassVar[int]
    rpm: int
    tpm: int
    budget_amount: float
    budget_period: str
    def __init__(self, rpm: _Optional[int] = ..., tpm: _Optional[int] = ..., budget_amount: _Optional[float] = ..., budget_period: _Optional[str] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("id", "name", "org_id", "key_hash", "scopes", "models", "revoked", "limits", "expires_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    org_id: str
    key_hash: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    models: _containers.RepeatedScalarFieldContainer[str]
    revoked: bool
    limits: KeyLimits
    expires_at: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., org_id: _Optional[str] = ..., key_hash: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., models: _Optional[_Iterable[str]] = ..., revoked: _Optional[bool] = ..., limits: _Optional[_Union[KeyLimits, _Mapping]] = ..., expires_at: _Optional[int] = ...) -> None: ...

class Price(_message.Message):
    __slots__ = ("model", "unit", "per_million", "currency")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    model: str
    unit: str
    per_million: float
    currency: str
    def __init__(self, model: _Optional[str] = ..., unit: _Optional[str] = ..., per_million: _Optional[float] = ..., currency: _Optional[str] = ...) -> None: ...

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
