#!/usr/bin/env python3
"""Closed-loop HTTP load generator for the overhead benchmark (aiohttp, uvloop).

N workers, each sending its next request as soon as the previous one ended, for a
fixed duration after an unrecorded warm-up. For SSE streams it records TTFB (request
sent -> first body bytes that hold a `data:` line) and total time (-> end of stream,
which must contain the end marker, `[DONE]` by default). Prints one line
`LOADGEN_JSON {...}` (latencies in milliseconds).

  loadgen.py --url http://127.0.0.1:18000/v1/chat/completions --stream -c 32 -d 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of a sorted list."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), int(-(-p * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


def default_body(model: str, stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_tokens": 32,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass
class Recorder:
    measure_from: float
    end_at: float
    latencies: list[float] = field(default_factory=list)
    ttfbs: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def record(self, started: float, ended: float, first: float | None, error: str | None) -> None:
        if started < self.measure_from:
            return
        if error is not None:
            self.errors[error] = self.errors.get(error, 0) + 1
            return
        self.latencies.append((ended - started) * 1000)
        if first is not None:
            self.ttfbs.append((first - started) * 1000)


async def one_request(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    stream: bool,
    marker: bytes,
) -> tuple[float | None, str | None]:
    """Send one request; return (time of the first `data:` bytes, error kind or None)."""
    first: float | None = None
    async with session.post(url, data=body, headers=headers) as response:
        if not stream:
            await response.read()
            return None, None if response.status == 200 else f"status_{response.status}"
        tail = b""
        async for chunk in response.content.iter_any():
            if first is None and b"data:" in chunk:
                first = time.perf_counter()
            tail = (tail + chunk)[-256:]
        if response.status != 200:
            return first, f"status_{response.status}"
        return first, None if marker in tail else "no_end_marker"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    for item in args.header or []:
        name, _, value = item.partition(":")
        headers[name.strip()] = value.strip()
    body = args.body.encode() if args.body else default_body(args.model, args.stream)
    marker = args.end_marker.encode()
    start = time.perf_counter()
    rec = Recorder(measure_from=start + args.warmup, end_at=start + args.warmup + args.duration)
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=120, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=args.timeout)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:

        async def worker() -> None:
            while True:
                t0 = time.perf_counter()
                if t0 >= rec.end_at:
                    return
                try:
                    first, error = await one_request(session, args.url, body, headers, args.stream, marker)
                except TimeoutError:
                    first, error = None, "timeout"
                except aiohttp.ClientError as exc:
                    first, error = None, type(exc).__name__
                    await asyncio.sleep(0.01)  # no hot loop against a dead server
                rec.record(t0, time.perf_counter(), first, error)

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    wall = time.perf_counter() - rec.measure_from
    rec.latencies.sort()
    rec.ttfbs.sort()
    result: dict[str, Any] = {
        "tool": "loadgen",
        "stream": args.stream,
        "concurrency": args.concurrency,
        "duration_s": round(wall, 3),
        "ok": len(rec.latencies),
        "errors": sum(rec.errors.values()),
        "error_kinds": rec.errors,
        "rps": round(len(rec.latencies) / wall, 1) if wall > 0 else 0.0,
    }
    for name, values in (("lat", rec.latencies), ("ttfb", rec.ttfbs)):
        if values:
            result[f"{name}_mean_ms"] = round(sum(values) / len(values), 3)
            for p in (50, 90, 99):
                result[f"{name}_p{p}_ms"] = round(percentile(values, p) or 0.0, 3)
            result[f"{name}_max_ms"] = round(values[-1], 3)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="full endpoint URL")
    parser.add_argument("--header", "-H", action="append", help="extra header 'Name: value' (repeatable)")
    parser.add_argument("--model", default="mock-gpt")
    parser.add_argument("--body", default="", help="raw JSON body (overrides --model/--stream body)")
    parser.add_argument("--stream", action="store_true", help="request and consume an SSE stream")
    parser.add_argument(
        "--end-marker", default="[DONE]", help="bytes a complete stream must contain at its end"
    )
    parser.add_argument("--concurrency", "-c", type=int, default=1)
    parser.add_argument("--duration", "-d", type=float, default=10.0, help="recorded seconds")
    parser.add_argument("--warmup", "-w", type=float, default=2.0, help="unrecorded seconds first")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout (s)")
    args = parser.parse_args(argv)
    runner: Any = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        pass
    result = runner(run(args))
    print("LOADGEN_JSON " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
