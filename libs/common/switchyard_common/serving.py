"""Running the tiers' HTTP servers inside a shared event loop, and turning process
signals into task cancellation.

`switchyard up` runs three tiers in one loop, so no single uvicorn server may own the
signals: the process entry point (`run_until_signalled`) does, and every tier stops by
being cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import uvicorn

from . import logs
from .logs import LogFormat

__all__ = ["QuietServer", "bind_socket", "configure_logging", "run_until_signalled"]

T = TypeVar("T")


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before handing the socket to uvicorn, so "port in use" is an OSError for the
    caller instead of uvicorn's sys.exit() inside a shared loop."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def configure_logging(level: int = logging.INFO, default_format: LogFormat = "json") -> LogFormat:
    """Structured logs for a process (switchyard_common.logs); the environment's
    SWITCHYARD_LOG_FORMAT / SWITCHYARD_LOG_LEVEL win over the arguments."""
    return logs.configure_logging(level, default_format)


async def _cancel_on_signal(main: Coroutine[Any, Any, T]) -> T:
    task = asyncio.ensure_future(main)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_until_signalled(main: Coroutine[Any, Any, T]) -> T | None:
    """Run `main` under uvloop until it returns or SIGINT/SIGTERM cancels it."""
    import uvloop  # shipped with uvicorn[standard]

    try:
        return uvloop.run(_cancel_on_signal(main))
    except asyncio.CancelledError:
        return None
