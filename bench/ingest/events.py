"""Usage events for the ingest bench, shaped like the data plane's: UUIDv7 ids, a few
organizations, keys, models and providers, mostly successes with some errors, the
failover chain and a trace id; encoded once each with orjson (as the data plane does)."""

from __future__ import annotations

import random

import orjson
from switchyard_common.ids import uuid7_str

ORGS = [("acme", "0190a000-0000-7000-8000-000000000001"), ("globex", "0190a000-0000-7000-8000-000000000002")]
MODELS = [
    ("chat-default", "deepseek", "deepseek-chat"),
    ("chat-fast", "local-vllm", "qwen2.5-7b"),
    ("embed", "openai", "text-embedding-3-small"),
    ("reasoner", "deepseek", "deepseek-reasoner"),
]
KEYS = [f"0190b000-0000-7000-8000-{n:012d}" for n in range(20)]
STATUSES = [200] * 96 + [429, 502, 400, 499]


class EventFactory:
    def __init__(self, prefix: str, seed: int = 7) -> None:
        self.prefix = prefix
        self.random = random.Random(seed)

    def next(self, ts: float) -> tuple[str, str, bytes]:
        """(subject, event id, payload) of one event at `ts`."""
        r = self.random
        org, org_id = ORGS[r.randrange(len(ORGS))]
        model, provider, upstream = MODELS[r.randrange(len(MODELS))]
        status = STATUSES[r.randrange(len(STATUSES))]
        latency = r.uniform(80, 3000)
        event_id = uuid7_str()
        event = {
            "id": event_id,
            "ts": ts,
            "org": org,
            "org_id": org_id,
            "key_id": KEYS[r.randrange(len(KEYS))],
            "key_name": "billing-service",
            "capability": "embedding" if model == "embed" else "llm",
            "model": model,
            "provider": provider,
            "upstream_model": upstream,
            "status": status,
            "error_type": None if status == 200 else "upstream_error",
            "input_tokens": r.randrange(20, 4000),
            "output_tokens": 0 if model == "embed" else r.randrange(1, 800),
            "cached_tokens": r.choice((0, 0, 128)),
            "reasoning_tokens": r.randrange(0, 400) if model == "reasoner" else 0,
            "cost": round(r.uniform(0.00001, 0.01), 8),
            "currency": "USD",
            "latency_ms": latency,
            "ttfb_ms": latency / 4,
            "stream": r.random() < 0.5,
            "attempts": [
                {"provider": provider, "model": upstream, "outcome": "ok", "ms": latency - 1, "status": 200}
            ],
            "client_ip": "10.0.3.17",
            "trace_id": f"{r.getrandbits(128):032x}",
        }
        return f"{self.prefix}.{org}", event_id, orjson.dumps(event)
