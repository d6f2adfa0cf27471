"""Per-minute usage aggregates to a time-series store, in InfluxDB line protocol over
HTTP (VictoriaMetrics, InfluxDB and GreptimeDB accept it; design.md section 6).

What is written is the stored rollup row's *totals* for its minute and group, not the
batch's contribution (ADR 016), stamped minute start + the row's revision in ms (the
number of upserts of the row, so later totals carry later stamps, all inside the
minute). A retry after a failed write, or a redelivered batch, rewrites the current
totals with a newer stamp: the newest point of each series and minute equals the
Postgres rollup. Query a minute's value as its last point, e.g. the requests of the
last day: `sum(sum_over_time(last_over_time(switchyard_usage_requests[1m])[1d:1m]))`
(a VictoriaMetrics dedicated to this data may instead run with
`-dedup.minScrapeInterval=1m`, which keeps exactly that point).

Series (VictoriaMetrics names them `<measurement>_<field>`):
- `switchyard_usage`, tags org, org_id, key_id, model, provider, capability, status,
  currency; fields requests, errors, input_tokens, output_tokens, cached_tokens,
  reasoning_tokens, cache_write_tokens, images, pages, characters, unpriced_requests,
  ttfb_count (integers), audio_seconds, cost, latency_ms_sum, ttfb_ms_sum (floats).
- `switchyard_usage_latency`, the same tags plus `le` (seconds: 0.1 ... 10, +Inf);
  field `bucket`: the cumulative latency histogram (`switchyard_usage_latency_bucket`).
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from switchyard_common.usage_rollups import (
    BUCKET_COLUMNS,
    FLOAT_SUMS,
    GROUP_COLUMNS,
    LATENCY_BUCKETS,
    SUM_COLUMNS,
    RollupRow,
)

__all__ = ["TimeSeriesError", "TimeSeriesWriter", "rollup_lines"]

MEASUREMENT = "switchyard_usage"
LATENCY_MEASUREMENT = "switchyard_usage_latency"

_TAG_NAMES = GROUP_COLUMNS[1:]  # everything but the minute, which is the timestamp
_FLOAT_FIELDS = frozenset(FLOAT_SUMS)
_BUCKET_NAMES = frozenset(BUCKET_COLUMNS)
_FIELDS = tuple(
    (index, name, name in _FLOAT_FIELDS)
    for index, name in enumerate(SUM_COLUMNS)
    if name not in _BUCKET_NAMES
)
_BUCKETS = tuple(
    (SUM_COLUMNS.index(name), "+Inf" if bound == float("inf") else f"{bound / 1000:g}")
    for name, bound in LATENCY_BUCKETS
)
_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\\": "\\\\", "\n": " ", "\r": " "})


# The last millisecond of the minute; rewrites beyond it (1000 per second for a minute)
# share this stamp.
_MAX_REVISION = 59_999


class TimeSeriesError(RuntimeError):
    """The store did not accept the write (unreachable, timeout, non-2xx)."""


def _tag(value: object) -> str:
    return str(value).translate(_TAG_ESCAPES)


def _float(value: float) -> str:
    text = repr(float(value))
    return text if text not in ("inf", "-inf", "nan") else "0"


def point_time_ms(row: RollupRow) -> int:
    """minute start + revision ms, within (minute, minute + 60 s]: the newest totals are
    the minute's last point whatever order the writes arrived in, and
    `last_over_time(x[1m])` at minute + 60 s picks them."""
    return row.key[0] * 1000 + min(max(row.revision, 1), _MAX_REVISION)


def rollup_lines(rows: Sequence[RollupRow]) -> bytes:
    """The line-protocol body for these rollup rows (timestamps in nanoseconds).
    Empty tag values are left out: the line protocol has no empty tags, and for
    Prometheus-style stores an absent label equals an empty one."""
    lines: list[str] = []
    for row in rows:
        tags = ",".join(
            f"{name}={_tag(value)}"
            for name, value in zip(_TAG_NAMES, row.key[1:], strict=True)
            if value != ""
        )
        prefix = f"{MEASUREMENT},{tags}" if tags else MEASUREMENT
        stamp = point_time_ms(row) * 1_000_000
        sums = row.sums
        fields = ",".join(
            f"{name}={_float(sums[index])}" if is_float else f"{name}={int(sums[index])}i"
            for index, name, is_float in _FIELDS
        )
        lines.append(f"{prefix} {fields} {stamp}")
        latency_prefix = f"{LATENCY_MEASUREMENT},{tags}" if tags else LATENCY_MEASUREMENT
        for index, le in _BUCKETS:
            lines.append(f"{latency_prefix},le={le} bucket={int(sums[index])}i {stamp}")
    return ("\n".join(lines) + "\n").encode() if lines else b""


class TimeSeriesWriter:
    """POSTs line protocol to `<url>/write` (InfluxDB 1.x endpoint, which VictoriaMetrics
    serves); blocking, called from the ingest's database worker thread."""

    def __init__(self, url: str, *, timeout: float = 5.0, database: str = "switchyard") -> None:
        self.url = url.rstrip("/") + "/write"
        self.database = database
        self._client = httpx.Client(timeout=timeout)

    def write(self, rows: Sequence[RollupRow]) -> int:
        """Write the rows' totals; returns the number of lines. Raises TimeSeriesError."""
        body = rollup_lines(rows)
        if not body:
            return 0
        try:
            response = self._client.post(
                self.url, params={"db": self.database, "precision": "ns"}, content=body
            )
        except httpx.HTTPError as exc:
            raise TimeSeriesError(f"time-series store {self.url}: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code >= 300:
            raise TimeSeriesError(
                f"time-series store {self.url} answered {response.status_code}: {response.text[:300]}"
            )
        return body.count(b"\n")

    def close(self) -> None:
        self._client.close()
