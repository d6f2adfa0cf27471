"""Minimal ASGI plumbing for the hot routes: read a bounded body, send a whole response."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from switchyard_common.errors import PayloadTooLarge

__all__ = ["ClientGone", "Receive", "Scope", "Send", "read_body", "send_response", "watch_disconnect"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ClientGone(Exception):
    """The caller disconnected before we answered."""


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is larger than the limit of {limit} bytes")


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; PayloadTooLarge as soon as more than `limit` bytes came."""
    message = await receive()
    if message["type"] != "http.request":
        raise ClientGone()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise _too_large(limit)
        return body
    parts = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone()
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise _too_large(limit)
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts)


async def send_response(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, *, content_length: bool = True
) -> None:
    if content_length:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    """Set `gone` when the caller disconnects (run as a task beside a streamed answer)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return
