"""REST writes are validated by the same rules as `apply`: the entity is wrapped in a
one-item config document, parsed, and checked against what is stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from switchyard_common.config_schema import parse_config
from switchyard_common.errors import ConfigError, ConfigIssue

from ..config_apply import check_document

__all__ = ["check_entity"]


def check_entity(session: Session, section: str, data: dict[str, Any]) -> Any:
    """The parsed spec of `data` (e.g. a ProviderSpec for section "providers"); raises
    ConfigError with paths relative to the request body."""
    try:
        doc = parse_config({section: [data]})
        check_document(session, doc)
    except ConfigError as exc:
        prefix = f"{section}[0]"
        issues = [
            ConfigIssue(issue.path.removeprefix(prefix).removeprefix("."), issue.message)
            for issue in exc.issues
        ]
        raise ConfigError(issues) from None
    return getattr(doc, section)[0]
