from __future__ import annotations

from switchyard_dataplane.protocols.sse import SSEEvent, SSEParser, sse_event


def _all(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    out = [event for chunk in chunks for event in parser.feed(chunk)]
    return out + parser.finish()


def test_events_comments_and_multiline_data() -> None:
    raw = b": ping\n\nevent: a\ndata: one\ndata:two\n\ndata: {}\n\n"
    assert _all([raw]) == [SSEEvent("a", "one\ntwo"), SSEEvent(None, "{}")]


def test_crlf_and_cr_line_endings_split_anywhere() -> None:
    raw = b"event: x\r\ndata: 1\r\n\r\nevent: y\rdata: 2\r\r"
    want = [SSEEvent("x", "1"), SSEEvent("y", "2")]
    for cut in range(len(raw) + 1):
        assert _all([raw[:cut], raw[cut:]]) == want, cut
    assert _all([bytes([b]) for b in raw]) == want


def test_last_event_without_blank_line_is_flushed_by_finish() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: tail") == []
    assert parser.finish() == [SSEEvent(None, "tail")]


def test_multibyte_characters_split_across_chunks() -> None:
    raw = "data: Bogotá ☀\n\n".encode()
    assert _all([raw[:10], raw[10:13], raw[13:]]) == [SSEEvent(None, "Bogotá ☀")]


def test_encoder() -> None:
    assert sse_event(b"{}") == b"data: {}\n\n"
    assert sse_event(b"{}", "ping") == b"event: ping\ndata: {}\n\n"
