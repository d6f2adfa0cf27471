"""Usage messages the ingest could not store (poison), kept for operators.

The ingest records each dead-lettered message here (as well as on the dead-letter
subject in JetStream) so that the control plane can list them through
`GET /api/v1/usage/dead-letters` with nothing but its database connection. The id is
"<stream>-<stream sequence>" (or the event id in embedded mode), so recording the same
message twice is a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from .db import METADATA, as_utc

__all__ = [
    "DeadLetter",
    "count_dead_letters",
    "list_dead_letters",
    "record_dead_letters",
    "usage_dead_letters",
]

usage_dead_letters = Table(
    "usage_dead_letters",
    METADATA,
    Column("id", String(120), primary_key=True),
    Column("subject", String(255), nullable=False),
    Column("msg_id", String(120), nullable=False),  # the original Nats-Msg-Id (event id)
    Column("reason", Text, nullable=False),
    Column("deliveries", Integer, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_usage_dead_letters_created_at", "created_at"),
)


@dataclass(slots=True)
class DeadLetter:
    id: str
    subject: str
    msg_id: str
    reason: str
    deliveries: int
    payload: bytes
    created_at: datetime | None = None

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id[:120],
            "subject": self.subject[:255],
            "msg_id": self.msg_id[:120],
            "reason": self.reason,
            "deliveries": self.deliveries,
            "payload": self.payload,
            "created_at": self.created_at or datetime.now(UTC),
        }


def record_dead_letters(conn: Connection, letters: Sequence[DeadLetter]) -> int:
    """Insert the letters not recorded yet; returns how many were new."""
    if not letters:
        return 0
    rows = list({letter.id[:120]: letter.row() for letter in letters}.values())
    stmt: postgresql.Insert | sqlite.Insert
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(usage_dead_letters).on_conflict_do_nothing(index_elements=["id"])
    else:
        stmt = sqlite.insert(usage_dead_letters).on_conflict_do_nothing(index_elements=["id"])
    return len(conn.execute(stmt.returning(usage_dead_letters.c.id), rows).all())


def list_dead_letters(
    conn: Connection, *, limit: int = 100, before: datetime | None = None
) -> list[DeadLetter]:
    """Newest first; `before` pages back through older ones (created_at < before)."""
    t = usage_dead_letters.c
    stmt = select(usage_dead_letters).order_by(t.created_at.desc(), t.id.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(t.created_at < as_utc(before))
    return [
        DeadLetter(
            id=row["id"],
            subject=row["subject"],
            msg_id=row["msg_id"],
            reason=row["reason"],
            deliveries=row["deliveries"],
            payload=bytes(row["payload"]),
            created_at=as_utc(row["created_at"]),
        )
        for row in conn.execute(stmt).mappings()
    ]


def count_dead_letters(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(usage_dead_letters)).scalar_one())
