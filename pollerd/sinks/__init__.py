"""Sink kinds: one registry, ``kind`` → config table → sink factory.

A kind is its keys (a model in ``pollerd.config``, listed in ``SinkConfig``) and a module here,
joined by one line in ``SINK_KINDS``. A factory is given the table, the state directory (for
sinks that keep state) and the daemon's User-Agent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pollerd.config import (
    ChatSinkConfig,
    CommandSinkConfig,
    FilesystemSinkConfig,
    ObjectStoreSinkConfig,
    PostgresSinkConfig,
    StdoutSinkConfig,
    WebhookSinkConfig,
)
from pollerd.config.base import SinkBase
from pollerd.sinks.base import DeliveryFailed, Sink
from pollerd.sinks.chat import ChatSink
from pollerd.sinks.command import CommandSink
from pollerd.sinks.filesystem import FilesystemSink
from pollerd.sinks.stdout import StdoutSink
from pollerd.sinks.webhook import WebhookSink

__all__ = ["SINK_KINDS", "DeliveryFailed", "Sink", "SinkKind", "build_sink"]


@dataclass(frozen=True)
class SinkKind:
    """One kind of sink: the model of its table and how the sink is built."""

    config: type[SinkBase]
    build: Callable[[Any, Path, str], Sink]  # (an instance of ``config``, state_dir, user_agent)


SINK_KINDS: Mapping[str, SinkKind] = {
    "webhook": SinkKind(WebhookSinkConfig, WebhookSink),
    "chat": SinkKind(ChatSinkConfig, lambda c, _dir, agent: ChatSink(c, agent)),
    "objectstore": SinkKind(ObjectStoreSinkConfig, lambda c, _dir, agent: _objectstore(c, _dir, agent)),
    "postgres": SinkKind(PostgresSinkConfig, lambda c, _dir, agent: _postgres(c, agent)),
    "command": SinkKind(CommandSinkConfig, lambda c, _dir, _agent: CommandSink(c)),
    "filesystem": SinkKind(FilesystemSinkConfig, lambda c, _dir, _agent: FilesystemSink(c)),
    "stdout": SinkKind(StdoutSinkConfig, lambda c, _dir, _agent: StdoutSink(c)),
}


def _objectstore(config: ObjectStoreSinkConfig, state_dir: Path, user_agent: str) -> Sink:
    # imported here: aiobotocore costs about 15 MB of memory at start, paid only by its users
    from pollerd.sinks.objectstore import ObjectStoreSink

    return ObjectStoreSink(config, state_dir, user_agent)


def _postgres(config: PostgresSinkConfig, user_agent: str) -> Sink:
    from pollerd.sinks.postgres import PostgresSink  # psycopg's pool and the sink's tables

    return PostgresSink(config, user_agent)


def build_sink(config: SinkBase, state_dir: Path, user_agent: str) -> Sink:
    """The sink object for one ``[[sinks]]`` table."""
    kind = SINK_KINDS[config.kind]
    if not isinstance(config, kind.config):
        raise TypeError(f"sink {config.name}: a {kind.config.__name__} was expected")
    return kind.build(config, state_dir, user_agent)
