"""Sessions whose commits bump the global snapshot version.

Every transaction that inserts, updates or deletes a `ConfigEntity` row bumps
`config_state.version` exactly once, inside that same transaction. The version thus
lives in the database: every control-plane replica polling it sees one coherent,
monotonic sequence, whichever replica committed the change.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Engine, event, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from ..db.models import ConfigEntity, ConfigState
from ..db.types import utcnow

__all__ = [
    "ConfigSession",
    "ConfigVersion",
    "NEW_VERSION_KEY",
    "make_sessionmaker",
    "mark_config_changed",
    "read_config_version",
]

_CHANGED_KEY = "switchyard.config_changed"
# After a commit that bumped the version, session.info[NEW_VERSION_KEY] holds it.
NEW_VERSION_KEY = "switchyard.new_version"


class ConfigSession(Session):
    """A Session that versions configuration changes (see module docstring)."""


def make_sessionmaker(engine: Engine) -> sessionmaker[ConfigSession]:
    # expire_on_commit=False: routes serialise rows after committing them.
    return sessionmaker(engine, class_=ConfigSession, expire_on_commit=False)


def mark_config_changed(session: Session) -> None:
    """For writes the ORM cannot see (bulk statements): bump the version at commit."""
    session.info[_CHANGED_KEY] = True


@event.listens_for(ConfigSession, "before_flush")
def _detect_config_writes(session: Session, _flush_context: Any, _instances: Any) -> None:
    for obj in chain(session.new, session.deleted):
        if isinstance(obj, ConfigEntity):
            session.info[_CHANGED_KEY] = True
            return
    for obj in session.dirty:
        if isinstance(obj, ConfigEntity) and session.is_modified(obj, include_collections=False):
            session.info[_CHANGED_KEY] = True
            return


@event.listens_for(ConfigSession, "after_begin")
def _reset(session: Session, _transaction: Any, _connection: Any) -> None:
    session.info.pop(_CHANGED_KEY, None)
    session.info.pop(NEW_VERSION_KEY, None)


@event.listens_for(ConfigSession, "after_soft_rollback")
def _forget(session: Session, _previous_transaction: Any) -> None:
    # Rolled-back writes must not bump the version at the next (possibly empty) commit.
    session.info.pop(_CHANGED_KEY, None)


@event.listens_for(ConfigSession, "before_commit")
def _bump_version(session: Session) -> None:
    # Flush first so pending writes are seen by _detect_config_writes.
    session.flush()
    if not session.info.pop(_CHANGED_KEY, False):
        return
    now = utcnow()
    snapshot_id = str(uuid.uuid4())
    # The UPDATE takes the row lock and holds it to commit, so concurrent writers
    # (on any replica) serialise here and versions follow commit order.
    result = session.execute(
        update(ConfigState)
        .where(ConfigState.id == 1)
        .values(version=ConfigState.version + 1, snapshot_id=snapshot_id, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        session.execute(insert(ConfigState).values(id=1, version=1, snapshot_id=snapshot_id, updated_at=now))
    version = session.execute(select(ConfigState.version).where(ConfigState.id == 1)).scalar_one()
    session.info[NEW_VERSION_KEY] = int(version)


class ConfigVersion:
    """The version row as plain data."""

    __slots__ = ("snapshot_id", "updated_at", "version")

    def __init__(self, version: int, snapshot_id: str, updated_at: datetime | None) -> None:
        self.version = version
        self.snapshot_id = snapshot_id
        self.updated_at = updated_at


def read_config_version(conn: Connection | Session) -> ConfigVersion:
    row = conn.execute(
        select(ConfigState.version, ConfigState.snapshot_id, ConfigState.updated_at).where(
            ConfigState.id == 1
        )
    ).first()
    if row is None:
        return ConfigVersion(0, "", None)
    updated_at = row.updated_at
    return ConfigVersion(int(row.version), row.snapshot_id, updated_at)
