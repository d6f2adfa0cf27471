"""Control-plane additions to the switchyard_common.errors tree."""

from __future__ import annotations

from switchyard_common.errors import RequestError

__all__ = ["Conflict", "Forbidden"]


class Conflict(RequestError):
    """409: the write clashes with an existing row (duplicate name, still referenced)."""

    status = 409
    error_type = "conflict_error"
    code = "conflict"


class Forbidden(RequestError):
    """403 for admin-API principals (the common PermissionDenied carries a model code)."""

    status = 403
    error_type = "permission_error"
    code = "forbidden"
