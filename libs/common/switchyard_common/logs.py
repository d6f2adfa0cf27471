"""Structured logs for every tier: one JSON object (or one text line) per record, with the
request id and trace id of the call being served when there is one.

The ids live in one context variable (`CallIds`) that the data-plane handler and the
control-plane middleware set once per request. They are read only when a record is
formatted, so a call that logs nothing pays one `ContextVar.set` and `reset` for them.
Outside a call set by us, the trace id comes from the OpenTelemetry span current in the
context, if any (control-plane requests, ingest batches).

`SWITCHYARD_LOG_FORMAT` (`json` | `text`) and `SWITCHYARD_LOG_LEVEL` choose the output;
split mode (`switchyard serve`) defaults to JSON for log shippers, `switchyard up` to
text for a developer's terminal (docs/settings.md). Calls are not logged one by one
unless `SWITCHYARD_ACCESS_LOG=true` turns on the `switchyard.access` logger (INFO, one
line per call or admin request); off, the handlers pay one `isEnabledFor` check.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any, Literal

from opentelemetry import trace
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "ACCESS_LOGGER",
    "CallIds",
    "JsonFormatter",
    "LogSettings",
    "TextFormatter",
    "accept_request_id",
    "bind_call",
    "configure_logging",
    "current_call",
    "new_request_id",
    "reset_call",
]

LogFormat = Literal["json", "text"]

# One INFO line per data-plane call / admin request when SWITCHYARD_ACCESS_LOG is on.
ACCESS_LOGGER = "switchyard.access"


class CallIds:
    """The ids of the request being served in this context."""

    __slots__ = ("request_id", "trace_id")

    def __init__(self, request_id: str, trace_id: str | None = None) -> None:
        self.request_id = request_id
        self.trace_id = trace_id


_CALL: ContextVar[CallIds | None] = ContextVar("switchyard_call", default=None)


def bind_call(request_id: str, trace_id: str | None = None) -> Token[CallIds | None]:
    """Make `request_id` (and `trace_id`) the ids of log records emitted in this context
    until `reset_call(token)`."""
    return _CALL.set(CallIds(request_id, trace_id))


def reset_call(token: Token[CallIds | None]) -> None:
    _CALL.reset(token)


def current_call() -> CallIds | None:
    return _CALL.get()


# Request ids: a random per-process prefix and a counter. Unique across processes
# without a syscall or a UUID per call (os.urandom costs more than the rest of it).
_PREFIX = os.urandom(6).hex()
_COUNTER = itertools.count(1)
# What an incoming x-request-id may be: visible ASCII without spaces, bounded length,
# so it can be logged and echoed without escaping games or header injection.
_MAX_INCOMING = 128


def new_request_id() -> str:
    return f"req_{_PREFIX}{next(_COUNTER):08x}"


def accept_request_id(value: bytes | None) -> str:
    """The caller's `x-request-id` if it is a sane token, else a new id."""
    if value and len(value) <= _MAX_INCOMING and all(0x21 <= c <= 0x7E for c in value):
        return value.decode("ascii")
    return new_request_id()


def _context_ids() -> tuple[str | None, str | None, str | None]:
    """(request id, trace id, span id) of the record being formatted."""
    call = _CALL.get()
    request_id = call.request_id if call is not None else None
    trace_id = call.trace_id if call is not None else None
    span_id: str | None = None
    if trace_id is None:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            trace_id = trace.format_trace_id(context.trace_id)
            span_id = trace.format_span_id(context.span_id)
    return request_id, trace_id, span_id


# Attributes every LogRecord has; anything else was passed with `extra=` and is logged.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp (UTC, ms), level, logger, message, the call's
    ids when inside one, `extra=` fields, and the exception text if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id, trace_id, span_id = _context_ids()
        if request_id is not None:
            entry["request_id"] = request_id
        if trace_id is not None:
            entry["trace_id"] = trace_id
        if span_id is not None:
            entry["span_id"] = span_id
        for name, value in record.__dict__.items():
            if name not in _STANDARD and name not in entry:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time level logger: message [request_id=... trace_id=...]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id, trace_id, _ = _context_ids()
        if request_id is None and trace_id is None:
            return line
        ids = " ".join(
            f"{name}={value}" for name, value in (("request_id", request_id), ("trace_id", trace_id)) if value
        )
        head, newline, rest = line.partition("\n")  # keep tracebacks below the ids
        return f"{head} [{ids}]{newline}{rest}"


class LogSettings(BaseSettings):
    """`SWITCHYARD_LOG_FORMAT` / `SWITCHYARD_LOG_LEVEL`; unset means the command's default."""

    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_", extra="ignore")

    log_format: LogFormat | None = None
    log_level: str = ""
    access_log: bool = False


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler configure_logging installed, so a second call replaces it."""


def _level(name: str, default: int) -> int:
    if not name:
        return default
    value = logging.getLevelName(name.strip().upper())
    if not isinstance(value, int):
        raise ValueError(f"SWITCHYARD_LOG_LEVEL={name!r} is not a log level")
    return value


def configure_logging(level: int = logging.INFO, default_format: LogFormat = "json") -> LogFormat:
    """Send every logger's records to stderr in the chosen format; returns the format.

    The environment (`LogSettings`) wins over the arguments. Idempotent: a later call
    replaces the handler an earlier one installed, and leaves foreign handlers alone."""
    settings = LogSettings()
    chosen: LogFormat = settings.log_format or default_format
    handler = _Handler(sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(_level(settings.log_level, level))
    # Its own level, so a debug root level alone does not log every call.
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO if settings.access_log else logging.WARNING)
    # uvicorn's loggers propagate to the root once its own config is skipped
    # (log_config=None); its access log stays off (one line per call).
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return chosen
