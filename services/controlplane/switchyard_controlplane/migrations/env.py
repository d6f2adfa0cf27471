"""Alembic environment. Runs only on a connection handed in by `migrate.upgrade_database`
(config.attributes["connection"]), so it never reads a URL from the environment."""

from __future__ import annotations

import switchyard_common.audit_store  # noqa: F401  (registers the audit table on METADATA)
import switchyard_common.usage_store  # noqa: F401  (registers usage tables on METADATA)
from alembic import context
from switchyard_common.db import METADATA

from switchyard_controlplane.db import models  # noqa: F401  (registers control-plane tables)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through switchyard_controlplane.migrate.upgrade_database()")

context.configure(
    connection=connection,
    target_metadata=METADATA,
    # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
