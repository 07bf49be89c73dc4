"""The library's structlog logging, which can never change what the library does.

actors never configures structlog. Once the application has (`structlog.configure`, or
`structlog.testing.capture_logs`), events go to the application's logger, named `actors`,
and every level the application lets through shows, debug events included. Before that,
structlog's default would print debug events to stdout, so warnings and errors go to stderr
through structlog's default processors and everything below is dropped.

A failure of logging (a processor that raises, a closed pipe, a full disk, a value whose
`repr()` raises) is contained here: the call returns as if it had logged. As OTP's logger
drops a failing handler rather than harm a supervisor, actors drops the event. The first
failure of a process is reported once on the interpreter's original stderr, if that works;
`failures()` counts them all.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, final

import structlog

__all__ = ["debug", "describe", "error", "failures", "info", "logger", "summary", "warning"]

_quiet: Any = None
_failed = 0


@final
class _StderrLogger:
    """Writes each rendered event to whatever `sys.stderr` is at the time (pytest swaps it)."""

    def msg(self, message: str) -> None:
        sys.stderr.write(message + "\n")

    log = debug = info = warn = warning = error = err = critical = exception = fatal = msg


def _target() -> Any:
    if structlog.is_configured():
        return structlog.get_logger("actors")
    global _quiet
    if _quiet is None:
        _quiet = structlog.wrap_logger(
            _StderrLogger(),
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            processors=structlog.get_config()["processors"],
        )
    return _quiet


def _emit(level: str, event: str, context: dict[str, Any] | None, fields: dict[str, Any]) -> None:
    try:
        target = _target()
        if context:
            target = target.bind(**context)
        getattr(target, level)(event, **fields)
    except Exception as exc:
        _report(exc, event)


def _report(exc: Exception, event: str) -> None:
    global _failed
    _failed += 1
    if _failed > 1:
        return
    try:
        stream = sys.__stderr__
        if stream is not None:
            stream.write(
                f"actors: logging {event!r} raised {type(exc).__name__}; actors goes on without"
                " that event (later failures of logging are not reported)\n"
            )
    except Exception:  # the report may fail the same way: nothing more to do
        pass


def failures() -> int:
    """How many log calls of actors have failed in this process (for tests)."""
    return _failed


def debug(event: str, **fields: Any) -> None:
    """Log a debug event, at no cost while structlog is unconfigured (nothing would show).

    For the hot paths (closing and moving ports, starting actors).
    """
    if structlog.is_configured():
        _emit("debug", event, None, fields)


def info(event: str, **fields: Any) -> None:
    """Log an info event."""
    _emit("info", event, None, fields)


def warning(event: str, **fields: Any) -> None:
    """Log a warning event."""
    _emit("warning", event, None, fields)


def error(event: str, **fields: Any) -> None:
    """Log an error event (give the exception as `exc_info=`)."""
    _emit("error", event, None, fields)


@final
class logger:
    """A logger with `context` bound, whose calls can never raise."""

    __slots__ = ("_context",)

    def __init__(self, **context: Any) -> None:
        self._context = context

    def debug(self, event: str, **fields: Any) -> None:
        if structlog.is_configured():
            _emit("debug", event, self._context, fields)

    def info(self, event: str, **fields: Any) -> None:
        _emit("info", event, self._context, fields)

    def warning(self, event: str, **fields: Any) -> None:
        _emit("warning", event, self._context, fields)

    def error(self, event: str, **fields: Any) -> None:
        _emit("error", event, self._context, fields)


def summary(exc: BaseException | None) -> str | None:
    """`"Type: message"` for an exception (`None` for `None`), never raising."""
    if exc is None:
        return None
    name = type(exc).__qualname__
    try:
        text = str(exc)
    except Exception:
        return name
    return f"{name}: {text}" if text else name


def describe(obj: object) -> str:
    """A name for `obj` in a log event: its `__qualname__`, else its `repr()`, never raising."""
    try:
        name = getattr(obj, "__qualname__", None)
        if isinstance(name, str):
            return name
        return repr(obj)
    except Exception:
        return f"<{type(obj).__qualname__} object>"
