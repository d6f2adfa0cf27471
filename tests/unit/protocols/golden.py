"""Golden cases: provider wire examples (fixtures/<protocol>/) and what translating them
must give (fixtures/<target>/from_<source>/). `python -m tests.unit.protocols.golden`
rewrites the expected files after a deliberate change; review the diff before keeping it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from switchyard_dataplane.protocols.sse import SSEParser
from switchyard_dataplane.protocols.translate import (
    StreamTranslator,
    translate_error,
    translate_request,
    translate_response,
)

FIXTURES = Path(__file__).parent / "fixtures"
OTHER = {"openai": "anthropic", "anthropic": "openai"}
UPSTREAM_MODEL = {"openai": "deepseek-chat", "anthropic": "claude-sonnet-4-5"}
CALLER_MODEL = "switchyard-model"
ERROR_STATUS = {"error_401": 401, "error_429": 429, "error_overloaded": 529, "error_invalid": 400}


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def sse_frames(raw: bytes) -> list[dict[str, Any]]:
    """A stream as comparable data: event name and parsed JSON (or the raw text)."""
    parser = SSEParser()
    frames = []
    for event in parser.feed(raw) + parser.finish():
        try:
            data: Any = json.loads(event.data)
        except json.JSONDecodeError:
            data = event.data
        if isinstance(data, dict) and "created" in data:
            data["created"] = 0  # the encoder stamps the time it ran
        frames.append({"event": event.event, "data": data})
    return frames


def normalize(body: Any) -> Any:
    if isinstance(body, dict) and "created" in body:
        body = {**body, "created": 0}
    return body


def translate_stream(src: str, raw: bytes, *, split: list[int] | None = None) -> bytes:
    translator = StreamTranslator(src, OTHER[src], CALLER_MODEL, include_usage=True)
    cuts = [0, *(split or []), len(raw)]
    out = b"".join(translator.feed(raw[a:b]) for a, b in zip(cuts, cuts[1:], strict=False))
    return out + translator.finish()


def cases() -> list[tuple[str, Path]]:
    return [(src, path) for src in OTHER for path in sorted((FIXTURES / src).glob("*.*")) if path.is_file()]


def expected_path(src: str, source: Path) -> Path:
    return FIXTURES / OTHER[src] / f"from_{src}" / f"{source.stem}.json"


def produce(src: str, source: Path) -> Any:
    """What translating one source fixture gives, in comparable form."""
    dst, stem = OTHER[src], source.stem
    if source.suffix == ".sse":
        return sse_frames(translate_stream(src, source.read_bytes()))
    if stem.startswith("request"):
        return translate_request(src, dst, load_json(source), UPSTREAM_MODEL[dst])
    if stem.startswith("response"):
        return normalize(translate_response(src, dst, load_json(source), CALLER_MODEL))
    status, body = translate_error(src, dst, ERROR_STATUS[stem], source.read_bytes())
    return {"status": status, "body": body}


if __name__ == "__main__":
    for src, source in cases():
        target = expected_path(src, source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(produce(src, source), indent=2, ensure_ascii=False) + "\n")
        print("wrote", target.relative_to(FIXTURES))
