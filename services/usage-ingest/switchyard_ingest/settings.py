"""The usage-ingest settings: the only place this service reads the environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["IngestSettings"]


class IngestSettings(BaseSettings):
    """Environment variables `SWITCHYARD_<FIELD>` (upper case)."""

    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_", extra="ignore")

    database_url: str = "sqlite:///.switchyard/switchyard.db"
    nats_url: str = "nats://127.0.0.1:4222"
    nats_stream: str = "SWITCHYARD_USAGE"
    usage_subject_prefix: str = "usage"
    nats_durable: str = "usage-ingest"
    # Seconds JetStream waits for an ack before redelivering (e.g. after an ingest
    # crash). Should exceed the time one batch takes to commit; if it does not, the
    # redelivered events are only skipped as duplicates.
    nats_ack_wait: float = Field(default=10.0, gt=0)
    ingest_host: str = "127.0.0.1"
    ingest_port: int = 8082
    # Events per batch (one transaction, one time-series write). 2000 keeps 10,000+
    # events/s within a second of lag (docs/benchmarks.md).
    batch_size: int = Field(default=2000, ge=1, le=10000)
    # Seconds to wait for a batch to fill before writing what has arrived: the lag of a
    # quiet pipeline.
    batch_timeout: float = Field(default=0.25, gt=0)
    # Batches being written at once (each in its own transaction), so that decoding,
    # the database and the time-series store overlap.
    write_concurrency: int = Field(default=2, ge=1, le=8)
    # InfluxDB line-protocol endpoint base (VictoriaMetrics: http://host:8428); empty =
    # no time-series store (embedded mode: the SQL rollups only).
    timeseries_url: str = ""
    timeseries_timeout: float = Field(default=5.0, gt=0)
    # A message that failed this many deliveries while the database was reachable is
    # retried on its own, and dead-lettered if it still fails.
    max_deliveries: int = Field(default=5, ge=1)

    @property
    def dead_letter_prefix(self) -> str:
        """Poison messages go to `<prefix>-deadletter.<rest of the subject>`, outside
        the consumer's filter `<prefix>.>`."""
        return f"{self.usage_subject_prefix}-deadletter"

    @property
    def dead_letter_stream(self) -> str:
        return f"{self.nats_stream}_DEADLETTER"
