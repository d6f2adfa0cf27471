"""Stream translation must not depend on how the upstream's bytes were cut."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from switchyard_dataplane.protocols.translate import StreamTranslator

from .golden import CALLER_MODEL, FIXTURES, OTHER, sse_frames, translate_stream

STREAMS = [(src, path) for src in OTHER for path in sorted((FIXTURES / src).glob("stream_*.sse"))]
IDS = [f"{s}-{p.stem}" for s, p in STREAMS]


@pytest.mark.parametrize(("src", "path"), STREAMS, ids=IDS)
def test_every_two_way_split_gives_the_same_stream(src: str, path: Path) -> None:
    raw = path.read_bytes()
    whole = sse_frames(translate_stream(src, raw))
    for cut in range(1, len(raw)):
        assert sse_frames(translate_stream(src, raw, split=[cut])) == whole, cut


@pytest.mark.parametrize(("src", "path"), STREAMS, ids=IDS)
def test_byte_by_byte_crlf_and_no_trailing_blank_line(src: str, path: Path) -> None:
    raw = path.read_bytes()
    whole = sse_frames(translate_stream(src, raw))
    assert sse_frames(translate_stream(src, raw, split=list(range(1, len(raw))))) == whole
    crlf = raw.replace(b"\n", b"\r\n")
    assert sse_frames(translate_stream(src, crlf, split=[len(crlf) // 3])) == whole
    pinged = b": keep-alive\n\n" + raw.rstrip(b"\n")  # a comment first, no final blank line
    assert sse_frames(translate_stream(src, pinged)) == whole


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_splits(data: st.DataObject) -> None:
    src, path = data.draw(st.sampled_from(STREAMS))
    raw = path.read_bytes()
    cuts = sorted(data.draw(st.sets(st.integers(1, len(raw) - 1), max_size=40)))
    assert sse_frames(translate_stream(src, raw, split=cuts)) == sse_frames(translate_stream(src, raw))


@pytest.mark.parametrize(("src", "path"), STREAMS, ids=IDS)
def test_first_event_is_relayed_at_once(src: str, path: Path) -> None:
    raw = path.read_bytes()
    first_event_end = raw.index(b"\n\n") + 2
    translator = StreamTranslator(src, OTHER[src], CALLER_MODEL, include_usage=True)
    assert translator.feed(raw[:first_event_end]) != b""


def test_translator_reports_usage_and_stop() -> None:
    raw = (FIXTURES / "openai" / "stream_tool_calls.sse").read_bytes()
    translator = StreamTranslator("openai", "anthropic", CALLER_MODEL, include_usage=False)
    translator.feed(raw)
    translator.finish()
    assert translator.usage is not None
    assert (
        translator.usage.input_tokens,
        translator.usage.cached_tokens,
        translator.usage.output_tokens,
    ) == (
        62,
        32,
        40,
    )
    assert translator.stop_reason is not None and translator.stop_reason.value == "tool_use"
    assert translator.finish() == b""
