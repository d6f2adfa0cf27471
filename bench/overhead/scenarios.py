"""The benchmark's scenarios: which protocol the caller speaks, which one the upstream
speaks (chosen by the public model name), and whether the answer is streamed.

When the two protocols are equal the data plane passes the body and the stream
through (model name spliced in); otherwise it translates request, response and every
stream event. Each scenario's baseline is the mock called directly in the protocol its
upstream speaks, with the same streaming mode: what a caller would pay without the
gateway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

OPENAI = "openai"
ANTHROPIC = "anthropic"

# The public model names of the benchmark config; each is routed to a mock provider
# of one protocol (stack.config_yaml).
MODEL_FOR_UPSTREAM = {OPENAI: "mock-gpt", ANTHROPIC: "mock-claude"}
PATHS = {OPENAI: "/chat/completions", ANTHROPIC: "/messages"}
# What a complete stream of each protocol ends with.
END_MARKERS = {OPENAI: "[DONE]", ANTHROPIC: "message_stop"}
PROMPT = "Say hello"
MAX_TOKENS = 32


# The governance scenarios' key roles (stack.config_yaml): "plain" has no limits (the
# governor makes no Redis call for it), "limited" has rpm + tpm + a budget, far above
# what the run sends, so every call pays the admission script and the settlement.
PLAIN_KEY = "plain"
LIMITED_KEY = "limited"
# What the governance scenarios are compared with: the same call on a plain key and a
# one-target model, through the same data plane in the same run.
GOVERNANCE_BASELINE = "chat"


@dataclass(frozen=True)
class Scenario:
    name: str
    caller: str
    upstream: str
    stream: bool
    # Governance scenarios: another public model (several targets) and/or the limited
    # key; `adds` says what they add on top of GOVERNANCE_BASELINE, for the report.
    model_name: str | None = None
    key: str = PLAIN_KEY
    adds: str = ""

    @property
    def governance(self) -> bool:
        return bool(self.adds)

    @property
    def translated(self) -> bool:
        return self.caller != self.upstream

    @property
    def model(self) -> str:
        return self.model_name or MODEL_FOR_UPSTREAM[self.upstream]

    @property
    def path(self) -> str:
        return PATHS[self.caller]

    @property
    def end_marker(self) -> str:
        return END_MARKERS[self.caller]

    @property
    def baseline(self) -> str:
        """The name of the passthrough scenario whose direct measurement is this one's
        baseline (the mock in the upstream's own protocol)."""
        return _name(self.upstream, self.upstream, self.stream)

    @property
    def rate_label(self) -> str:
        return "streams/s" if self.stream else "req/s"

    @property
    def route(self) -> str:
        return f"{self.caller} → {self.upstream}"

    def body(self, model: str | None = None) -> str:
        """The request body, compact JSON; `model` overrides the scenario's public model
        (Portkey forwards it to the upstream as is)."""
        payload: dict[str, Any] = {
            "model": model or self.model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": MAX_TOKENS,
        }
        if self.stream:
            payload["stream"] = True
            if self.caller == OPENAI:
                payload["stream_options"] = {"include_usage": True}
        return json.dumps(payload, separators=(",", ":"))

    def looks_complete(self, payload: bytes) -> bool:
        """Whether one probe answer is a full, successful answer of the caller's protocol."""
        if self.stream:
            return self.end_marker.encode() in payload
        try:
            data = json.loads(payload)
        except ValueError:
            return False
        if self.caller == OPENAI:
            return bool(isinstance(data, dict) and data.get("choices"))
        return bool(isinstance(data, dict) and data.get("type") == "message" and data.get("content"))


def _name(caller: str, upstream: str, stream: bool) -> str:
    base = {
        (OPENAI, OPENAI): "chat",
        (ANTHROPIC, ANTHROPIC): "messages",
        (OPENAI, ANTHROPIC): "chat_to_anthropic",
        (ANTHROPIC, OPENAI): "messages_to_openai",
    }[(caller, upstream)]
    return base + "_stream" if stream else base


def _all() -> dict[str, Scenario]:
    pairs = ((OPENAI, OPENAI), (ANTHROPIC, ANTHROPIC), (OPENAI, ANTHROPIC), (ANTHROPIC, OPENAI))
    found: dict[str, Scenario] = {}
    for stream in (False, True):
        for caller, upstream in pairs:
            name = _name(caller, upstream, stream)
            found[name] = Scenario(name, caller, upstream, stream)
    return found


def _governance() -> dict[str, Scenario]:
    """`chat` (OpenAI -> OpenAI passthrough, non-streaming) plus one governance feature."""
    found = [
        Scenario(
            "chat_limits",
            OPENAI,
            OPENAI,
            False,
            key=LIMITED_KEY,
            adds="key rpm + tpm + budget (Redis: one admission script, then settlement)",
        ),
        Scenario(
            "chat_lowest_cost",
            OPENAI,
            OPENAI,
            False,
            model_name="mock-gpt-cost",
            adds="3 targets, lowest_cost routing over target prices",
        ),
        Scenario(
            "chat_least_latency",
            OPENAI,
            OPENAI,
            False,
            model_name="mock-gpt-latency",
            adds="3 targets, least_latency routing (TTFB moving average per call)",
        ),
    ]
    return {s.name: s for s in found}


# In run order: non-streaming first, passthrough before translation, governance last.
SCENARIOS: dict[str, Scenario] = {**_all(), **_governance()}
