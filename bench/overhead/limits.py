"""Per-call cost of admission (docs/limits.md), measured in-process on the data plane's
own Governor: a key with no limits (no Redis call), a key with rpm + tpm + a budget
on the in-memory limiter (embedded mode), and the same key on Redis (one EVALSHA
before the call, one settlement after it, as the hot path does them).

    .venv/bin/python bench/overhead/limits.py [--redis-url redis://127.0.0.1:6379/0] [--calls 5000]

Prints microseconds per call (median of 5 rounds). Numbers include the settlement's
own work (for Redis: awaited here, a background task in the data plane).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from switchyard_common.proto.controlplane_pb2 import Snapshot  # noqa: E402
from switchyard_common.secrets import hash_api_key  # noqa: E402
from switchyard_dataplane.admission.governor import Governor  # noqa: E402
from switchyard_dataplane.index import SnapshotIndex, build_index  # noqa: E402
from switchyard_dataplane.redis_link import RedisLink  # noqa: E402
from switchyard_dataplane.usage_events import CallRecord  # noqa: E402

PAYLOAD = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 100}


def snapshot(limited: bool) -> Snapshot:
    snap = Snapshot(version=1, id="bench")
    snap.organizations.add(id="o", name="bench")
    snap.providers.add(id="p", slug="mock", api_format="mock")
    model = snap.models.add(id="m", name="m", capability="llm")
    model.targets.add(provider_slug="mock", upstream_model="echo")
    key = snap.keys.add(id="k", name="k", org_id="o", key_hash=hash_api_key("gk_bench"), scopes=["llm"])
    if limited:
        key.limits.rpm = 10**9
        key.limits.tpm = 10**12
        key.limits.budgets.add(amount=1e6, currency="USD", period="month")
    snap.prices.add(model="m", unit="input_token", per_million=1.0)
    snap.prices.add(model="m", unit="output_token", per_million=2.0)
    return snap


async def per_call_us(governor: Governor, index: SnapshotIndex, calls: int) -> float:
    key = next(iter(index.keys.values()))
    route = index.models["m"]
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            record = CallRecord(key, 0.0, time.time(), "127.0.0.1")
            await governor.admit(index, record, route, PAYLOAD, lambda: 12)
            governor.finish(record)
            await governor.drain()
        rounds.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(rounds)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    free = build_index(snapshot(False), secret_key="", env={})
    limited = build_index(snapshot(True), secret_key="", env={})
    print(f"no limits (no Redis call):       {await per_call_us(Governor(), free, args.calls):8.1f} us/call")
    print(
        f"rpm+tpm+budget, in-memory:       {await per_call_us(Governor(), limited, args.calls):8.1f} us/call"
    )
    link = RedisLink(args.redis_url, f"sybench:{uuid.uuid4().hex[:8]}:", timeout=1.0)
    try:
        if not await link.ping():
            print(f"rpm+tpm+budget, Redis:           unreachable ({link.last_error})")
            return
        cost = await per_call_us(Governor(link=link), limited, max(1, args.calls // 5))
        print(f"rpm+tpm+budget, Redis (EVALSHA): {cost:8.1f} us/call (admit + settle round trips)")
    finally:
        keys = [k async for k in link.client.scan_iter(match=link.prefix + "*")]
        if keys:
            await link.client.delete(*keys)
        await link.close()


if __name__ == "__main__":
    asyncio.run(main())
