"""Sink kinds, by the ``kind`` key of a ``[[sinks]]`` table."""

from __future__ import annotations

from pathlib import Path

from pollerd.config import (
    CommandSinkConfig,
    FilesystemSinkConfig,
    SinkConfig,
    StdoutSinkConfig,
    WebhookSinkConfig,
)
from pollerd.sinks.base import DeliveryFailed, Sink
from pollerd.sinks.command import CommandSink
from pollerd.sinks.filesystem import FilesystemSink
from pollerd.sinks.stdout import StdoutSink
from pollerd.sinks.webhook import WebhookSink

__all__ = ["DeliveryFailed", "Sink", "build_sink"]


def build_sink(config: SinkConfig, state_dir: Path, user_agent: str) -> Sink:
    """The sink object for one ``[[sinks]]`` table (``state_dir`` for sinks that keep state)."""
    match config:
        case WebhookSinkConfig():
            return WebhookSink(config, state_dir, user_agent)
        case CommandSinkConfig():
            return CommandSink(config)
        case FilesystemSinkConfig():
            return FilesystemSink(config)
        case StdoutSinkConfig():
            return StdoutSink(config)
