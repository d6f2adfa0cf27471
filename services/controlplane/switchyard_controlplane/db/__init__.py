"""ORM mapping of the control-plane tables (on the shared switchyard_common.db.METADATA)."""

from .models import (
    AdminToken,
    AdminUser,
    ApiKey,
    Base,
    ConfigEntity,
    ConfigState,
    Model,
    ModelTarget,
    Organization,
    Price,
    Provider,
)

__all__ = [
    "AdminToken",
    "AdminUser",
    "ApiKey",
    "Base",
    "ConfigEntity",
    "ConfigState",
    "Model",
    "ModelTarget",
    "Organization",
    "Price",
    "Provider",
]
