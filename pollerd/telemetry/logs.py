"""Logging setup: structlog to stderr, JSON lines by default, readable on a terminal.

Configured once, at start. Every known secret is masked in every line, in every form, whatever
key or message carries it; a reload replaces the set of secrets.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from pollerd.core.masking import MASKED


class Redactor:
    """A structlog processor that masks every secret (``masking.MASKED``, in all its forms) inside
    any string of an event; the set follows reloads."""

    def __call__(
        self, logger: object, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """Mask secrets in every value."""
        for key, value in event.items():
            event[key] = self._mask(value)
        return event

    def _mask(self, value: Any) -> Any:
        if isinstance(value, str):
            return MASKED(value)
        if isinstance(value, list | tuple):
            return [self._mask(v) for v in value]
        if isinstance(value, dict):
            return {k: self._mask(v) for k, v in value.items()}
        return value


def configure_logging(fmt: str = "auto", level: str = "info", secrets: Iterable[str] = ()) -> None:
    """Set up structlog and route the standard library's logging (APScheduler, aiohttp) into it;
    ``secrets`` become the process's masked set."""
    MASKED.use(secrets)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info if use_json else structlog.processors.StackInfoRenderer(),
        Redactor(),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(  # a line below the level is dropped before any work is done on it
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("apscheduler").setLevel(max(root.level, logging.WARNING))
