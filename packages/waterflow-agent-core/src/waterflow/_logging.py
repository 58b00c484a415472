"""The process log: loguru, one sink, JSON lines (or a console line) on stdout.

JSON lines carry `time` (UTC, ISO 8601 with milliseconds), `level`, `message`, then every field
bound with `logger.bind(...)` or passed as keyword arguments, then `error` (the exception's first
line) when one is attached, and its traceback only at debug level. Values that JSON cannot carry
are written with `str()`. Python's stdlib logging (temporalio's) can be routed in with
`intercept_stdlib_logging`.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from loguru import logger

if TYPE_CHECKING:
    from loguru import Message, Record

__all__ = ["intercept_stdlib_logging", "setup_logging"]

_LEVELS = {
    "debug": "DEBUG",
    "info": "INFO",
    "warning": "WARNING",
    "warn": "WARNING",
    "error": "ERROR",
}
_FORMATS = ("json", "console")
_RESERVED = ("time", "level", "message")  # extra fields with these names get an `extra_` prefix

_handler_id: int | None = None
# One encoder for every line: `json.dumps` with options builds a new one per call.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":"))


def _loguru_level(level: str) -> str:
    try:
        return _LEVELS[level.strip().lower()]
    except KeyError:
        raise ValueError(
            f"{level!r} is not a log level; use debug, info, warning or error"
        ) from None


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text


def _utc_time(record: Record) -> str:
    moment = record["time"].astimezone(UTC)
    second = moment.replace(microsecond=0)
    if second != _second[0]:
        _second[:] = [second, second.strftime("%Y-%m-%dT%H:%M:%S.")]
    return f"{_second[1]}{moment.microsecond // 1000:03d}Z"


def _error_text(error: BaseException | None, kind: type[BaseException] | None) -> str:
    lines = str(error).strip().splitlines() if error is not None else []
    if lines:
        return lines[0]
    return kind.__name__ if kind is not None else "error"


def _exception_parts(
    record: Record,
) -> tuple[type[BaseException], BaseException | None, TracebackType | None] | None:
    exception = record["exception"]
    if exception is None or exception.type is None:
        return None
    return exception.type, exception.value, exception.traceback


def _json_line(record: Record, *, with_traceback: bool) -> str:
    data: dict[str, Any] = {
        "time": _utc_time(record),
        "level": record["level"].name.lower(),
        "message": record["message"],
    }
    for key, value in record["extra"].items():
        data[f"extra_{key}" if key in _RESERVED else key] = value
    parts = _exception_parts(record)
    if parts is not None:
        kind, error, tb = parts
        data.setdefault("error", _error_text(error, kind))
        data.setdefault("error_type", kind.__name__)
        if with_traceback:
            data["traceback"] = "".join(traceback.format_exception(kind, error, tb)).rstrip()
    return _ENCODER.encode(data)


def _console_line(record: Record) -> str:
    moment = record["time"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    millis = record["time"].microsecond // 1000
    text = f"{moment}.{millis:03d} {record['level'].name:<7} {record['message']}"
    fields = " ".join(f"{key}={value}" for key, value in record["extra"].items())
    if fields:
        text = f"{text}  {fields}"
    parts = _exception_parts(record)
    if parts is not None:
        kind, error, tb = parts
        trace = "".join(traceback.format_exception(kind, error, tb)).rstrip()
        text = f"{text}\n{trace}"
    return text


class _Sink:
    """Writes one formatted line per record; `stream=None` means `sys.stdout` at write time."""

    def __init__(self, fmt: str, stream: TextIO | None, *, with_traceback: bool) -> None:
        self._fmt = fmt
        self._stream = stream
        self._with_traceback = with_traceback

    def __call__(self, message: Message) -> None:
        record = message.record
        if self._fmt == "json":
            line = _json_line(record, with_traceback=self._with_traceback)
        else:
            line = _console_line(record)
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write(line + "\n")
        stream.flush()


def setup_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Send loguru's records at `level` and above to `stream` (stdout by default) as `fmt`
    ("json" or "console"). Calling it again replaces the sink it added before, and loguru's
    default stderr handler is removed."""
    global _handler_id
    loguru_level = _loguru_level(level)
    if fmt not in _FORMATS:
        raise ValueError(f"{fmt!r} is not a log format; use json or console")
    for handler in (0, _handler_id):  # 0 is loguru's default stderr handler
        if handler is None:
            continue
        try:
            logger.remove(handler)
        except ValueError:
            pass  # already removed
    sink = _Sink(fmt, stream, with_traceback=loguru_level == "DEBUG")
    _handler_id = logger.add(sink, level=loguru_level, format="{message}", catch=True)


class _InterceptHandler(logging.Handler):
    """Passes stdlib records to loguru, keeping the level, the caller and the logger's name."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        try:
            message = record.getMessage()
        except Exception:  # a bad format string in someone else's log call
            self.handleError(record)
            return
        frame: FrameType | None = logging.currentframe()
        depth = 0
        while frame is not None and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.bind(logger=record.name).opt(depth=depth, exception=record.exc_info).log(
            level, message
        )


def intercept_stdlib_logging(level: str = "warning") -> None:
    """Route Python's stdlib logging (temporalio logs through it) into loguru, from `level` up.

    Calling it again replaces the handler it installed before; other handlers stay.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _InterceptHandler)]:
        root.removeHandler(handler)
    root.addHandler(_InterceptHandler())
    root.setLevel(_loguru_level(level))
