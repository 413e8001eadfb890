"""Source kinds, by the ``kind`` key of a ``[[sources]]`` table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pollerd.config import SourceConfig
from pollerd.sources.base import DiscoveryFailed, Source
from pollerd.sources.http import HttpSource

__all__ = ["DiscoveryFailed", "Source", "build_source"]

_BUILDERS: dict[str, Callable[[Any], Source]] = {
    "http": HttpSource,
}


def build_source(config: SourceConfig) -> Source:
    """The source object for one ``[[sources]]`` table."""
    return _BUILDERS[config.kind](config)
