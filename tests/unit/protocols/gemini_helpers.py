"""Shared by the Gemini codec tests: fixture loading and a JSON view of IR objects."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

from switchyard_dataplane.protocols.gemini import GeminiCodec

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def counter_ids() -> Callable[[], str]:
    ids = itertools.count()
    return lambda: f"call_gm_test{next(ids)}"


def codec() -> GeminiCodec:
    return GeminiCodec(new_id=counter_ids())


def ir_json(value: Any) -> Any:
    """IR dataclasses as plain JSON, each tagged with its class name."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"type": type(value).__name__}
        for f in dataclasses.fields(value):
            out[f.name] = ir_json(getattr(value, f.name))
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [ir_json(v) for v in value]
    if isinstance(value, dict):
        return {k: ir_json(v) for k, v in value.items()}
    return value
