"""Structured logs (structlog): readable lines on a terminal, JSON lines for log collectors.

Every line the process writes goes through the same renderer, so a log collector reading JSON never meets a plain
line: structlog's own events, the standard `logging` records of the libraries (uvicorn, APScheduler, the HTTP
clients) and uncaught exceptions in any thread (rendered with their traceback as a field).
"""

from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType
from typing import Any

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# Libraries that report routine work at INFO (APScheduler: "Running job ..." every cycle; uvicorn: every request).
_CHATTY = ("apscheduler", "uvicorn.access", "httpx", "httpcore", "urllib3")


class _CurrentStderr:
    """Whatever sys.stderr is at the moment of writing (test runners and the demo swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler on the root logger; marked so that configure() replaces it rather than adding another."""


def _level(level: int | str) -> int:
    if isinstance(level, int):
        return level
    return LEVELS.get(level.lower(), logging.INFO)


def configure(fmt: str = "console", level: int | str = logging.INFO) -> None:
    """Route structlog and standard logging to stderr in one format ("console" or "json") at `level`."""
    numeric = _level(level)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # JSON keeps a traceback as one string field (no frame locals: they may hold secrets); the console renderer
    # prints it as text below the line.
    tail: list[structlog.types.Processor] = [structlog.processors.format_exc_info] if fmt == "json" else []
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
    )
    handler = _Handler(_CurrentStderr())  # type: ignore[arg-type]
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING))
    _route_uncaught()


def _route_uncaught() -> None:
    """Uncaught exceptions (main thread and worker threads) become one error line with the traceback as a field."""
    log = structlog.get_logger("tracker_bridge")

    def on_main(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        log.critical("uncaught_exception", exc_info=(kind, value, tb))

    def on_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        exc_info: Any = (args.exc_type, args.exc_value, args.exc_traceback)
        thread = args.thread.name if args.thread else None
        log.error("thread.uncaught_exception", thread=thread, exc_info=exc_info)

    sys.excepthook = on_main
    threading.excepthook = on_thread
