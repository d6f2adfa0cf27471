"""`make bench-ingest`: usage events per second from JetStream into Postgres (and the
time-series store), through the real ingest process, with its lag and memory.

Two measurements, each against a fresh database, stream and durable consumer:

1. drain — N events are published to the stream first; then the ingest process starts
   and the clock runs from its readiness until the consumer has acked everything.
   Throughput = N / that time (the ceiling).
2. steady — events are published at a fixed rate for D seconds while the ingest runs.
   Lag is sampled every 0.1 s as the age of the oldest event not yet acked (from the
   consumer's ack floor and the publish time of that sequence); the rate is sustained
   if the lag never exceeds 1 s. Then every ledger row is counted.

The ingest runs as `python -m switchyard_ingest` against the machine's Postgres and
NATS (or the URLs given) and a throwaway VictoriaMetrics (unless --no-timeseries); its
RSS is sampled from /proc. Results go to stdout (and --json FILE).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import nats  # noqa: E402

from bench.ingest.events import EventFactory  # noqa: E402
from bench.ingest.harness import Run, consumer_state, ledger_lag, log, publish_all, wait_acked  # noqa: E402
from tests.support.throwaway import ThrowawayVictoriaMetrics  # noqa: E402

LAG_LIMIT = 1.0


async def drain(args: argparse.Namespace, nc: Any, vm: ThrowawayVictoriaMetrics | None) -> dict[str, Any]:
    run = Run(args, "drain", vm)
    try:
        run.setup_db()
        await run.setup_stream(nc)
        factory = EventFactory(run.prefix)
        log(f"drain: publishing {args.events} events")
        await publish_all(nc, run, factory, args.events)
        run.start_ingest()
        await run.wait_ready()
        run.mark_cpu()
        started = time.monotonic()
        log("drain: ingest ready, consuming")
        profiler = None
        if args.py_spy and run.proc is not None:
            # Collapsed stacks of every thread (the DB work runs in a worker thread).
            profiler = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(run.proc.pid),
                 "--format", "raw", "--threads", "--idle", "--rate", "200", "--output", args.py_spy],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        # Progress from the ledger: polling the consumer's info often slows a filtered
        # JetStream consumer's deliveries down (nats-server 2.9), which skews the figure.
        while run.ledger()[0] < args.events:
            run.sample_rss()
            if time.monotonic() - started > args.timeout:
                raise RuntimeError(f"drain: not done after {args.timeout}s")
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
        cpu = run.cpu_per_event(args.events)
        await wait_acked(nc, run, args.events)
        if profiler is not None:
            profiler.send_signal(2)  # SIGINT: py-spy writes the profile and exits
            profiler.wait(30)
        rows, rolled = run.ledger()
        return {
            "events": args.events,
            "seconds": round(elapsed, 2),
            "events_per_second": round(args.events / elapsed),
            **cpu,
            "load_average": os.getloadavg()[0],
            "ledger_rows": rows,
            "rollup_requests": rolled,
            "rss_max_mb": round(run.rss_max_kb / 1024, 1),
        }
    finally:
        await run.teardown(nc)


async def steady(
    args: argparse.Namespace, nc: Any, vm: ThrowawayVictoriaMetrics | None, rate: int
) -> dict[str, Any]:
    run = Run(args, f"steady-{rate}", vm)
    try:
        run.setup_db()
        await run.setup_stream(nc)
        run.start_ingest()
        await run.wait_ready()
        run.mark_cpu()
        factory = EventFactory(run.prefix)
        sent_at: list[float] = [0.0]  # index = stream sequence (1-based)
        lags: list[float] = []
        stop = asyncio.Event()

        async def publisher() -> None:
            begin = time.monotonic()
            sent = 0
            total = int(rate * args.duration)
            while sent < total:
                due = min(total, int((time.monotonic() - begin) * rate) + 1)
                now = time.time()
                while sent < due:
                    subject, msg_id, payload = factory.next(now)
                    await nc.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
                    sent_at.append(time.monotonic())
                    sent += 1
                await nc.flush()
                await asyncio.sleep(0.005)
            stop.set()

        async def sampler() -> None:
            # Once a second only: frequent consumer-info calls slow a filtered consumer.
            while True:
                run.sample_rss()
                floor, _, _ = await consumer_state(nc, run)
                now = time.monotonic()
                oldest = floor + 1
                # Sequences are assigned in publish order (one publisher, one stream).
                lags.append(now - sent_at[oldest] if oldest < len(sent_at) else 0.0)
                if stop.is_set() and floor >= len(sent_at) - 1:
                    return
                await asyncio.sleep(1.0)

        log(f"steady: {rate} events/s for {args.duration}s")
        pub = asyncio.create_task(publisher())
        await asyncio.wait_for(sampler(), args.duration + args.timeout)
        await pub
        rows, rolled = run.ledger()
        cpu = run.cpu_per_event(rows)
        published = len(sent_at) - 1
        ledger_max, ledger_p99 = ledger_lag(run)
        ack_max = max(lags) if lags else 0.0
        lag_max = max(ack_max, ledger_max)
        return {
            "rate": rate,
            "seconds": args.duration,
            "published": published,
            "ledger_rows": rows,
            "rollup_requests": rolled,
            # The larger of: the oldest unacked event's age, sampled every second, and
            # the ledger's event-to-write delay (every event, not sampled).
            "lag_max_s": round(lag_max, 3),
            "ledger_lag_p99_s": round(ledger_p99, 3),
            "sustained": lag_max <= LAG_LIMIT and rows == published,
            **cpu,
            "load_average": os.getloadavg()[0],
            "rss_max_mb": round(run.rss_max_kb / 1024, 1),
        }
    finally:
        await run.teardown(nc)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000, help="events of the drain run")
    parser.add_argument("--rates", default="10000", help="steady rates to try, comma-separated (events/s)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of each steady run")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--batch-timeout", type=float, default=0.2)
    parser.add_argument("--no-timeseries", action="store_true", help="ledger + SQL rollups only")
    parser.add_argument("--skip-drain", action="store_true")
    parser.add_argument("--nats-url", default=os.environ.get("SWITCHYARD_TEST_NATS", "nats://127.0.0.1:4222"))
    parser.add_argument(
        "--pg-admin",
        default=os.environ.get("SWITCHYARD_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--work", default="/tmp/switchyard-bench-ingest")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep databases and streams")
    parser.add_argument(
        "--py-spy", metavar="FILE", help="profile the ingest during the drain (collapsed stacks)"
    )
    return parser.parse_args(argv)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    Path(args.work).mkdir(parents=True, exist_ok=True)
    vm = (
        None
        if args.no_timeseries
        else ThrowawayVictoriaMetrics(Path(args.work) / f"vm-{uuid.uuid4().hex[:6]}")
    )
    nc = await nats.connect(args.nats_url)
    try:
        if vm is not None:
            vm.start()
        results: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "host": platform.node()},
            "settings": {
                "batch_size": args.batch_size,
                "batch_timeout": args.batch_timeout,
                "timeseries": vm is not None,
            },
        }
        if not args.skip_drain:
            results["drain"] = await drain(args, nc, vm)
            log(f"drain: {results['drain']}")
        results["steady"] = []
        for rate in (int(r) for r in args.rates.split(",") if r):
            outcome = await steady(args, nc, vm, rate)
            log(f"steady: {outcome}")
            results["steady"].append(outcome)
        return results
    finally:
        await nc.close()
        if vm is not None:
            vm.close()


def _cpu(r: dict[str, Any]) -> str:
    return (
        f"CPU per event: ingest {r['ingest_cpu_us_per_event']} us, "
        f"Postgres {r['postgres_cpu_us_per_event']} us, "
        f"store {r['timeseries_store_cpu_us_per_event']} us, "
        f"nats-server {r['nats_server_cpu_us_per_event']} us, "
        f"bench publisher {r['bench_cpu_us_per_event']} us; load average {r['load_average']:.1f}"
    )


def report(results: dict[str, Any]) -> str:
    settings = results["settings"]
    lines = [
        f"usage ingest bench: {results['machine']['cpus']} CPUs, batch {settings['batch_size']}, "
        f"time-series store {'on' if settings['timeseries'] else 'off'}"
    ]
    if "drain" in results:
        d = results["drain"]
        lines.append(
            f"drain : {d['events']} events in {d['seconds']} s = {d['events_per_second']} events/s; "
            f"ledger {d['ledger_rows']}, rollups {d['rollup_requests']}; "
            f"RSS max {d['rss_max_mb']} MB; {_cpu(d)}"
        )
    for s in results.get("steady", []):
        verdict = "SUSTAINED" if s["sustained"] else "NOT sustained"
        lines.append(
            f"steady: {s['rate']} events/s for {s['seconds']} s: lag max {s['lag_max_s']} s, "
            f"p99 {s['ledger_lag_p99_s']} s; ledger {s['ledger_rows']}/{s['published']}, "
            f"rollups {s['rollup_requests']}; RSS max {s['rss_max_mb']} MB; {_cpu(s)}; {verdict}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = asyncio.run(main_async(args))
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    ok = all(s["sustained"] for s in results.get("steady", []))
    if "drain" in results:
        ok = ok and results["drain"]["ledger_rows"] == results["drain"]["events"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
