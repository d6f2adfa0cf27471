"""Canonical stored forms of the JSON-valued config fields, and values derived from rows.

Apply compares stored values with documents through these functions, so one canonical
form per value means "same config" is "equal JSON" and a second apply changes nothing.
Pure functions: no database, no web framework.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from switchyard_common.config_schema import (
    KeyLimitsSpec,
    OrgPolicySpec,
    RateLimitsSpec,
    policy_document,
)

__all__ = [
    "datetime_from_ms",
    "load_key_limits",
    "load_policy",
    "ms_from_datetime",
    "new_breaker_epoch",
    "normalize_key_limits",
    "normalize_policy",
    "normalize_rate_limits",
]

log = logging.getLogger(__name__)


def normalize_rate_limits(limits: Mapping[str, Any] | RateLimitsSpec | None) -> dict[str, int]:
    """`{"rpm": n, "tpm": n}` with unset and 0 ("no limit", as in the snapshot) left out."""
    spec = limits if isinstance(limits, RateLimitsSpec) else RateLimitsSpec.model_validate(dict(limits or {}))
    return {name: value for name in ("rpm", "tpm") if (value := getattr(spec, name))}


def normalize_key_limits(limits: Mapping[str, Any] | KeyLimitsSpec | None) -> dict[str, Any]:
    """Key limits as stored: rpm/tpm/concurrency when set (0 = no limit, left out) and every
    budget in one `budgets` list (the document's `budget` shorthand folded in), each with
    its currency and period spelled out."""
    spec = limits if isinstance(limits, KeyLimitsSpec) else KeyLimitsSpec.model_validate(dict(limits or {}))
    out: dict[str, Any] = {
        name: value for name in ("rpm", "tpm", "concurrency") if (value := getattr(spec, name))
    }
    budgets = [b.model_dump(mode="json") for b in spec.all_budgets()]
    if budgets:
        out["budgets"] = budgets
    return out


def load_key_limits(stored: Mapping[str, Any] | None) -> KeyLimitsSpec:
    """A key's stored limits as the config model (budget shorthand folded in)."""
    return KeyLimitsSpec.model_validate(normalize_key_limits(stored))


def load_policy(stored: Mapping[str, Any] | None) -> OrgPolicySpec:
    """The policy a stored document describes. Entries that no longer validate (written
    before the policy was structured, e.g. `{"team": "x"}`) are dropped with a warning
    rather than making the organization unreadable."""
    data = dict(stored or {})
    while True:
        try:
            return OrgPolicySpec.model_validate(data)
        except ValidationError as exc:
            bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]} & data.keys()
            if not bad:
                log.warning("stored organization policy is invalid, using defaults: %s", exc)
                return OrgPolicySpec()
            log.warning("ignoring invalid stored policy entries %s", sorted(bad))
            for name in bad:
                data.pop(name)


def normalize_policy(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """A stored policy in canonical form (what `policy_document` writes)."""
    return policy_document(load_policy(stored))


def ms_from_datetime(value: datetime | None) -> int:
    """Unix milliseconds; None (no date: "always") is 0."""
    if value is None:
        return 0
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(round(value.timestamp() * 1000))


def datetime_from_ms(value: int) -> datetime | None:
    return None if not value else datetime.fromtimestamp(value / 1000, tz=UTC)


def new_breaker_epoch() -> str:
    """A fresh breaker epoch for a provider (12 hex digits).

    Data planes key circuit breakers by (provider, epoch, upstream model), so a new epoch
    starts the provider's breakers afresh. It is drawn anew on every change of what decides
    whether calls can succeed (repo.providers.EPOCH_FIELDS) rather than derived from those
    values: switching a provider off and on again must reset its breakers too, and a
    fingerprint would return to the old epoch whose breaker is still open."""
    return secrets.token_hex(6)
