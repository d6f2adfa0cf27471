"""Postgres bulk load of the usage ledger: binary COPY into a temporary table of this
connection, then one `INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING RETURNING id`.

COPY moves a batch in one stream with psycopg's C row encoder (about 2 us per row),
where a parameterised multi-row INSERT spends most of its time binding parameters in
Python. The temporary table is the ledger's shape with `ts` as integer microseconds
(the one rounding every write path shares, see usage_rollups.ts_micros) and without
`ingested_at` (the server's `now()`); it is emptied at every commit, and created by
each batch if missing (a rolled-back first batch takes its CREATE with it).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import orjson
from sqlalchemy import Boolean, Column, Connection, DateTime, Float, Integer

from .usage import UsageEvent
from .usage_rollups import ts_micros
from .usage_store import PLAIN_FIELDS, usage_events

__all__ = ["insert_events_postgres"]

_LOAD_TABLE = "switchyard_usage_events_load"
_JSON_FIELDS = ("attempts", "shadow_refusals")
# The columns stored as the event has them (the same as the SQLAlchemy path's).
_PLAIN = [usage_events.c[name] for name in PLAIN_FIELDS]


def _pg_type(column: Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, Boolean):
        return "bool"
    if isinstance(kind, Integer):
        return "int4"
    if isinstance(kind, Float):
        return "float8"
    if isinstance(kind, DateTime):
        return "timestamptz"
    return "text"


# Load-table column order: the plain fields, then ts (µs) and the JSON columns.
_LOAD_COLUMNS = [(c.name, _pg_type(c)) for c in _PLAIN] + [
    ("ts", "int8"),
    # JSON as text, cast by the INSERT: a binary COPY of a str into a json column would
    # encode it as a JSON string.
    ("attempts", "text"),
    ("shadow_refusals", "text"),
]
_LOAD_TYPES = [kind for _, kind in _LOAD_COLUMNS]
_CREATE = "CREATE TEMPORARY TABLE IF NOT EXISTS {table} ({columns}) ON COMMIT DELETE ROWS".format(
    table=_LOAD_TABLE, columns=", ".join(f"{name} {kind}" for name, kind in _LOAD_COLUMNS)
)
_COPY = "COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)".format(
    table=_LOAD_TABLE, columns=", ".join(name for name, _ in _LOAD_COLUMNS)
)
_INSERT = (
    "INSERT INTO usage_events ({columns}, ts, attempts, shadow_refusals, ingested_at) "
    "SELECT {columns}, TIMESTAMPTZ 'epoch' + ts * INTERVAL '1 microsecond', attempts::json, "
    "shadow_refusals::json, now() "
    "FROM {table} ON CONFLICT (id) DO NOTHING RETURNING id"
).format(table=_LOAD_TABLE, columns=", ".join(c.name for c in _PLAIN))
_plain_values = attrgetter(*(c.name for c in _PLAIN))


def insert_events_postgres(conn: Connection, events: list[UsageEvent]) -> set[str]:
    """Insert `events` (distinct ids) that are not stored yet; returns the ids inserted.
    Runs in the caller's transaction."""
    dumps = orjson.dumps
    rows = [
        (
            *_plain_values(event),
            ts_micros(event.ts),
            dumps(event.attempts).decode(),
            dumps(event.shadow_refusals).decode(),
        )
        for event in events
    ]
    # exec_driver_sql keeps SQLAlchemy's error translation (DataError vs
    # OperationalError) and connection invalidation for the statements; COPY goes
    # through the same DBAPI connection, inside the same transaction.
    conn.exec_driver_sql(_CREATE)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(_COPY) as copy:
            copy.set_types(_LOAD_TYPES)
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()
    return set(conn.exec_driver_sql(_INSERT).scalars())
