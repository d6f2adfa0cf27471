"""What the JetStream consumer does with a batch that fails: redeliver everything while a
store is down; set aside a message that keeps failing on its own while both are up."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from switchyard_common.db import METADATA, make_engine
from switchyard_common.usage import UsageEvent, encode_event
from switchyard_common.usage_dead_letters import usage_dead_letters
from switchyard_common.usage_store import USAGE_TABLES, usage_events
from switchyard_ingest.consumer import JetStreamConsumer
from switchyard_ingest.metrics import IngestMetrics
from switchyard_ingest.pipeline import IngestPipeline
from switchyard_ingest.settings import IngestSettings
from switchyard_ingest.timeseries import TimeSeriesError
from switchyard_ingest.writer import UsageWriter, WriteResult

from .test_usage_store import make_event


@dataclass
class FakeMsg:
    data: bytes
    num_delivered: int
    seq: int
    subject: str = "usage.acme"
    calls: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Nats-Msg-Id": f"evt-{self.seq}"}

    @property
    def metadata(self) -> Any:
        return SimpleNamespace(num_delivered=self.num_delivered, sequence=SimpleNamespace(stream=self.seq))

    async def ack(self) -> None:
        self.calls.append("ack")

    async def nak(self, delay: float | None = None) -> None:
        self.calls.append("nak")

    async def term(self) -> None:
        self.calls.append("term")


class FakeJetStream:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str]]] = []

    async def stream_info(self, name: str) -> Any:
        return SimpleNamespace(config=SimpleNamespace(subjects=["usage-deadletter.>"]))

    async def publish(self, subject: str, data: bytes, headers: dict[str, str]) -> None:
        self.published.append((subject, data, headers))


class ExplodingWriter(UsageWriter):
    """Fails every batch holding an event of model "explode" (a bug in the ingest, say),
    or every batch with `error` set (a store outage); `reachable` is what ping says."""

    error: Exception | None = None
    reachable = True

    async def write(self, events: Sequence[UsageEvent]) -> WriteResult:
        if self.error is not None:
            raise self.error
        if any(event.model == "explode" for event in events):
            raise RuntimeError("cannot aggregate this one")
        return await super().write(events)

    async def ping(self) -> bool:
        return self.reachable


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    METADATA.create_all(engine, tables=USAGE_TABLES)
    yield engine
    engine.dispose()


def _consumer(engine: Engine) -> tuple[JetStreamConsumer, ExplodingWriter]:
    writer = ExplodingWriter(engine)
    settings = IngestSettings(usage_subject_prefix="usage", nats_stream="USAGE", max_deliveries=3)
    return JetStreamConsumer(settings, IngestPipeline(writer, IngestMetrics())), writer


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def _batch(bad_deliveries: int) -> list[FakeMsg]:
    good = [FakeMsg(encode_event(make_event(n)), num_delivered=bad_deliveries, seq=n) for n in range(3)]
    bad = FakeMsg(encode_event(make_event(9, model="explode")), num_delivered=bad_deliveries, seq=9)
    return [*good[:2], bad, good[2]]


async def test_a_failing_batch_is_redelivered_before_the_limit(engine: Engine) -> None:
    consumer, _ = _consumer(engine)
    msgs = _batch(bad_deliveries=2)
    assert await consumer._handle(FakeJetStream(), msgs) is False  # type: ignore[arg-type]
    assert [m.calls for m in msgs] == [["nak"]] * 4
    assert _count(engine, usage_events) == 0 and _count(engine, usage_dead_letters) == 0


async def test_at_the_limit_the_culprit_is_dead_lettered_and_the_rest_kept(engine: Engine) -> None:
    consumer, _ = _consumer(engine)
    js = FakeJetStream()
    msgs = _batch(bad_deliveries=3)
    assert await consumer._handle(js, msgs) is False  # type: ignore[arg-type]
    bad = msgs[2]
    assert bad.calls == ["term"]
    # The others were retried alone too (they had the same delivery count) and stored.
    assert [m.calls for m in msgs if m is not bad] == [["ack"]] * 3
    assert _count(engine, usage_events) == 3
    with engine.connect() as conn:
        (letter,) = conn.execute(select(usage_dead_letters)).mappings().all()
    assert letter["id"] == "USAGE-9" and letter["deliveries"] == 3
    assert "failed 3 deliveries" in letter["reason"] and "cannot aggregate" in letter["reason"]
    assert letter["payload"] == bad.data
    ((subject, data, headers),) = js.published
    assert subject == "usage-deadletter.acme" and data == bad.data
    assert headers["Switchyard-Original-Msg-Id"] == "evt-9"


@pytest.mark.parametrize("outage", ["database", "timeseries"])
async def test_nothing_is_dead_lettered_while_a_store_is_down(engine: Engine, outage: str) -> None:
    consumer, writer = _consumer(engine)
    if outage == "database":
        writer.reachable = False
    else:
        writer.error = TimeSeriesError("store unreachable")
    msgs = _batch(bad_deliveries=10)
    assert await consumer._handle(FakeJetStream(), msgs) is False  # type: ignore[arg-type]
    assert [m.calls for m in msgs] == [["nak"]] * 4
    assert _count(engine, usage_dead_letters) == 0
