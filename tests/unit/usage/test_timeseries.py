"""The time-series writer: line protocol of rollup totals, and the writer's transaction
with a store that fails (nothing committed) and recovers (totals rewritten)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import Engine, func, select
from switchyard_common.db import METADATA, make_engine
from switchyard_common.usage_rollups import SUM_COLUMNS, RollupRow, aggregate
from switchyard_common.usage_store import USAGE_TABLES, usage_events
from switchyard_ingest.timeseries import TimeSeriesError, TimeSeriesWriter, point_time_ms, rollup_lines
from switchyard_ingest.writer import UsageWriter

from .test_usage_store import T0, make_event

MINUTE = int(T0.timestamp())


def _row(revision: int = 1, **key: object) -> RollupRow:
    (row,) = aggregate([make_event(1, **key)])  # type: ignore[arg-type]
    row.revision = revision
    return row


def test_lines_carry_tags_fields_and_minute_plus_revision() -> None:
    body = rollup_lines([_row(revision=7)]).decode()
    lines = body.splitlines()
    assert body.endswith("\n") and len(lines) == 9  # one sums line, eight latency buckets
    head, fields, stamp = lines[0].split(" ")
    assert head == (
        "switchyard_usage,org=acme,org_id=org-1,key_id=key-1,model=chat,provider=p1,"
        "capability=llm,status=200,currency=USD"
    )
    values = dict(pair.split("=") for pair in fields.split(","))
    assert values["requests"] == "1i" and values["input_tokens"] == "10i" and values["errors"] == "0i"
    assert values["cost"] == "0.5" and values["latency_ms_sum"] == "100.0"
    assert set(values) == {name for name in SUM_COLUMNS if not name.startswith("le_")}
    assert int(stamp) == (MINUTE * 1000 + 7) * 1_000_000
    assert lines[1].startswith("switchyard_usage_latency,org=acme,") and ",le=0.1 bucket=1i " in lines[1]
    assert ",le=+Inf bucket=1i " in lines[-1]


def test_tag_values_are_escaped_and_empty_ones_left_out() -> None:
    body = rollup_lines([_row(model="gpt 4,o=x", provider="", key_id="k\\1")]).decode()
    head = body.splitlines()[0].split(" ", 1)[0]
    assert r"model=gpt\ 4\,o\=x" in body.splitlines()[0]
    assert "provider=" not in head and r"key_id=k\\1" in head


def test_point_time_stays_inside_its_minute() -> None:
    assert point_time_ms(_row(revision=0)) == MINUTE * 1000 + 1
    assert point_time_ms(_row(revision=3)) == MINUTE * 1000 + 3
    assert point_time_ms(_row(revision=10**9)) == MINUTE * 1000 + 59_999


class _Store(BaseHTTPRequestHandler):
    bodies: list[bytes] = []
    status = 204

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).status < 300:
            type(self).bodies.append(body)
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def store() -> Iterator[tuple[str, type[_Store]]]:
    handler = type("Store", (_Store,), {"bodies": [], "status": 204})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    METADATA.create_all(engine, tables=USAGE_TABLES)
    yield engine
    engine.dispose()


def _ledger(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(usage_events)) or 0)


def _requests_in(body: bytes) -> list[int]:
    return [
        int(line.split(" ")[1].split("requests=")[1].split("i")[0])
        for line in body.decode().splitlines()
        if line.startswith("switchyard_usage,")
    ]


async def test_failed_store_write_commits_nothing_and_redelivery_rewrites_totals(
    engine: Engine, store: tuple[str, type[_Store]]
) -> None:
    url, handler = store
    writer = UsageWriter(engine, TimeSeriesWriter(url, timeout=2))
    batch = [make_event(n) for n in range(5)]
    handler.status = 503
    with pytest.raises(TimeSeriesError):
        await writer.write(batch)
    assert _ledger(engine) == 0  # rolled back with the failed store write

    handler.status = 204
    result = await writer.write(batch)
    assert (result.inserted, result.rollup_rows, result.timeseries_lines) == (5, 1, 9)
    assert _requests_in(handler.bodies[-1]) == [5]

    # A redelivery of stored events adds nothing but rewrites the totals, newer stamp.
    again = await writer.write(batch[:2] + [make_event(7)])
    assert (again.inserted, again.duplicates) == (1, 2)
    assert _requests_in(handler.bodies[-1]) == [6]
    stamps = [int(body.decode().split()[2]) for body in handler.bodies]
    assert stamps == sorted(stamps) and len(set(stamps)) == 2
    writer.close()


def test_unreachable_store_raises() -> None:
    writer = TimeSeriesWriter("http://127.0.0.1:9", timeout=0.5)
    with pytest.raises(TimeSeriesError):
        writer.write([_row()])
    writer.close()
