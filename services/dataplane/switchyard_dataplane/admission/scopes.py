"""Key state checks that need no counters: client address allow-list, and the shadow
records of scope and model-list rules (route_for refuses the enforced ones)."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from switchyard_common.errors import PermissionDenied

if TYPE_CHECKING:
    from ..index import KeyRecord, ModelRoute

__all__ = ["KeyRefusal", "check_client_address", "scope_shadow"]


class KeyRefusal(PermissionDenied):
    """A 403 of one of the key's own rules; `rule` goes to the event's `refused_by`."""

    def __init__(self, message: str, *, rule: str, code: str, param: str | None = None) -> None:
        super().__init__(message, code=code, param=param)
        self.rule = rule


def check_client_address(key: KeyRecord, client_ip: str | None, shadow: list[str] | None = None) -> None:
    """Refuse a caller outside the key's allowed networks (403 naming the address).

    `client_ip` is the address the data plane resolved (the peer, or the trusted proxy's
    X-Forwarded-For: SWITCHYARD_FORWARDED_ALLOW_IPS). With the `ip` rule in the key's
    shadow list the call passes and "key.ip" is appended to `shadow`."""
    if not key.networks:
        return
    allowed = False
    if client_ip:
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            address = None
        if address is not None:
            if address.version == 6 and address.ipv4_mapped is not None:
                address = address.ipv4_mapped  # ::ffff:10.1.2.3 is 10.1.2.3
            allowed = any(address in network for network in key.networks)
    if allowed:
        return
    if "ip" in key.shadow:
        if shadow is not None:
            shadow.append("key.ip")
        return
    shown = client_ip or "unknown"
    raise KeyRefusal(
        f"client address {shown} is not in this key's allowed networks", rule="key.ip", code="ip_not_allowed"
    )


def scope_shadow(key: KeyRecord, route: ModelRoute, shadow: list[str]) -> None:
    """Record the scope and model-list rules that route_for let through in shadow mode."""
    if not key.shadow:
        return
    if "scopes" in key.shadow and key.scopes and route.capability not in key.scopes:
        shadow.append("key.scopes")
    if "models" in key.shadow and key.models and route.name not in key.models:
        shadow.append("key.models")
