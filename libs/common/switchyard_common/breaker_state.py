"""Circuit-breaker state as stored in Redis: key naming, the record, and the reader the
control plane uses (`GET /api/v1/breakers`).

One Redis hash per breaker, keyed by (provider, breaker_epoch, upstream model), plus one
set of the known breaker keys so a single script call reads them all (no SCAN):

    <prefix>breaker:<provider>:<epoch>:<upstream_model>   hash
        p, e, m   provider, epoch, upstream model (the identity; the key is not parsed)
        s         closed | open | half_open
        f         consecutive failures
        u         open until (Unix ms)
        pu        the half-open probe is held until (Unix ms)
    <prefix>breakers                                       set of the hash keys above

A provider's `breaker_epoch` changes with its credential, URL or enabled flag, so such a
change starts its breakers afresh (new keys; the old ones expire).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "BREAKER_FIELDS",
    "READ_ALL_SCRIPT",
    "BreakerState",
    "breaker_id",
    "breaker_key",
    "breaker_set_key",
    "parse_breaker_rows",
    "read_breakers",
]

BreakerStatus = Literal["closed", "open", "half_open"]

# Field order of the rows READ_ALL_SCRIPT returns (after the key).
BREAKER_FIELDS = ("p", "e", "m", "s", "f", "u", "pu")

# Every breaker in one round trip: SMEMBERS + HMGET per member; members whose hash has
# expired (or was deleted when the breaker closed) are pruned from the set on the way.
READ_ALL_SCRIPT = """
local members = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, key in ipairs(members) do
  local row = redis.call('HMGET', key, 'p', 'e', 'm', 's', 'f', 'u', 'pu')
  if row[1] then
    out[#out + 1] = key
    for i = 1, 7 do out[#out + 1] = row[i] or '' end
  else
    redis.call('SREM', KEYS[1], key)
  end
end
return out
"""


def breaker_id(provider: str, epoch: str, upstream_model: str) -> str:
    """The breaker's identity inside a prefix; provider slugs and epochs have no ':'."""
    return f"{provider}:{epoch}:{upstream_model}"


def breaker_key(prefix: str, provider: str, epoch: str, upstream_model: str) -> str:
    return f"{prefix}breaker:{breaker_id(provider, epoch, upstream_model)}"


def breaker_set_key(prefix: str) -> str:
    return f"{prefix}breakers"


@dataclass(slots=True, frozen=True)
class BreakerState:
    provider: str
    epoch: str
    upstream_model: str
    state: BreakerStatus
    failures: int
    # Unix seconds; meaningful while open.
    open_until: float
    # Unix seconds until which one replica holds the half-open probe.
    probe_until: float = 0.0

    @property
    def id(self) -> str:
        return breaker_id(self.provider, self.epoch, self.upstream_model)

    def effective(self, now: float) -> BreakerStatus:
        """What a caller would meet now: an open breaker whose cooldown is over is
        half-open (the next call probes)."""
        if self.state == "open" and now >= self.open_until:
            return "half_open"
        return self.state

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "epoch": self.epoch,
            "upstream_model": self.upstream_model,
            "state": self.effective(now),
            "failures": self.failures,
            "open_until": self.open_until if self.state != "closed" else None,
        }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _number(value: Any) -> float:
    text = _text(value)
    return float(text) if text else 0.0


def parse_breaker_rows(flat: list[Any], prefix: str) -> dict[str, BreakerState]:
    """READ_ALL_SCRIPT's answer as {breaker_id: state}."""
    states: dict[str, BreakerState] = {}
    cut = len(prefix) + len("breaker:")
    width = 1 + len(BREAKER_FIELDS)
    for i in range(0, len(flat) - width + 1, width):
        key = _text(flat[i])
        p, e, m, s, f, u, pu = flat[i + 1 : i + width]
        status = _text(s) or "closed"
        if status not in ("closed", "open", "half_open"):
            status = "closed"
        states[key[cut:]] = BreakerState(
            provider=_text(p),
            epoch=_text(e),
            upstream_model=_text(m),
            state=status,  # type: ignore[arg-type]
            failures=int(_number(f)),
            open_until=_number(u) / 1000.0,
            probe_until=_number(pu) / 1000.0,
        )
    return states


async def read_breakers(redis: Any, prefix: str) -> list[BreakerState]:
    """Every breaker the data planes have recorded under `prefix` (a redis.asyncio
    client), sorted by provider and model; `BreakerState.effective(now)` says what
    callers meet. Breakers of an old epoch stay listed until their keys expire."""
    flat = await redis.eval(READ_ALL_SCRIPT, 1, breaker_set_key(prefix))
    states = parse_breaker_rows(list(flat or []), prefix)
    return sorted(states.values(), key=lambda b: (b.provider, b.upstream_model, b.epoch))
