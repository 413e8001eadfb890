"""Sink kinds, by the ``kind`` key of a ``[[sinks]]`` table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pollerd.config import SinkConfig
from pollerd.sinks.base import DeliveryFailed, Sink
from pollerd.sinks.filesystem import FilesystemSink
from pollerd.sinks.stdout import StdoutSink

__all__ = ["DeliveryFailed", "Sink", "build_sink"]

_BUILDERS: dict[str, Callable[[Any], Sink]] = {
    "stdout": StdoutSink,
    "filesystem": FilesystemSink,
}


def build_sink(config: SinkConfig) -> Sink:
    """The sink object for one ``[[sinks]]`` table."""
    return _BUILDERS[config.kind](config)
