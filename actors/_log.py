"""The library's structlog logger: silent below warnings until the application configures it."""

from __future__ import annotations

import logging
import sys
from typing import Any, final

import structlog

__all__ = ["debug", "logger"]

_quiet: Any = None


@final
class _StderrLogger:
    """Writes each rendered event to whatever `sys.stderr` is at the time (pytest swaps it)."""

    def msg(self, message: str) -> None:
        sys.stderr.write(message + "\n")

    log = debug = info = warn = warning = error = err = critical = exception = fatal = msg


def logger(**context: object) -> Any:
    """Return a structlog logger for actors with `context` bound.

    actors never configures structlog. Once the application has (`structlog.configure`,
    or `structlog.testing.capture_logs`), this is the application's logger, named
    `actors`, and every level the application lets through shows, debug events included.
    Before that, structlog's default would print debug events to stdout, so this falls back
    to a logger with structlog's default processors that writes warnings and errors to
    stderr and drops everything below.
    Call it where an event is logged, not at import, so a later configuration takes effect.
    """
    if structlog.is_configured():
        return structlog.get_logger("actors").bind(**context)
    global _quiet
    if _quiet is None:
        _quiet = structlog.wrap_logger(
            _StderrLogger(),
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            processors=structlog.get_config()["processors"],
        )
    return _quiet.bind(**context) if context else _quiet


def debug(event: str, **fields: object) -> None:
    """Log a debug event, at no cost while structlog is unconfigured (nothing would show).

    For the hot paths (closing and moving ports, starting actors).
    """
    if structlog.is_configured():
        structlog.get_logger("actors").debug(event, **fields)
