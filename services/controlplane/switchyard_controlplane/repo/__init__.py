"""Query functions over the control-plane tables, one module per entity.

All functions take the Session first and everything else by keyword; none commits.
Committing a `ConfigSession` that changed configuration bumps the snapshot version.
"""

from . import admin, keys, models, organizations, prices, providers
from .session import (
    NEW_VERSION_KEY,
    ConfigSession,
    ConfigVersion,
    make_sessionmaker,
    mark_config_changed,
    read_config_version,
)

__all__ = [
    "NEW_VERSION_KEY",
    "ConfigSession",
    "ConfigVersion",
    "admin",
    "keys",
    "make_sessionmaker",
    "mark_config_changed",
    "models",
    "organizations",
    "prices",
    "providers",
    "read_config_version",
]
