"""Source kinds, by the ``kind`` key of a ``[[sources]]`` table."""

from __future__ import annotations

from pollerd.config import FsoSourceConfig, SourceConfig
from pollerd.fetch import HttpClient
from pollerd.sources.base import DiscoveryFailed, Source
from pollerd.sources.fso import FsoSource
from pollerd.sources.http import HttpSource

__all__ = ["DiscoveryFailed", "Source", "build_source"]


def build_source(config: SourceConfig, client: HttpClient) -> Source:
    """The source object for one ``[[sources]]`` table."""
    if isinstance(config, FsoSourceConfig):
        return FsoSource(config, client)
    return HttpSource(config)
