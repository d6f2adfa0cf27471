"""Usage ingest: usage events from JetStream (split mode) or the in-process bus
(embedded mode) into the `usage_events` table, idempotently and in batches."""

from .server import serve
from .settings import IngestSettings

__all__ = ["IngestSettings", "serve"]
