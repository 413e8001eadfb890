"""Source kinds, by the ``kind`` key of a ``[[sources]]`` table."""

from __future__ import annotations

from pollerd.config import FsoSourceConfig, HttpSourceConfig
from pollerd.polling.fetch import HttpClient
from pollerd.polling.source import DiscoveryFailed, Source
from pollerd.sources.fso import FsoSource
from pollerd.sources.http import HttpSource

__all__ = ["DiscoveryFailed", "Source", "build_source"]


def build_source(config: HttpSourceConfig | FsoSourceConfig, client: HttpClient) -> Source:
    """The source object of a ``[[sources]]`` table whose resources are files (``http``, ``fso``)."""
    if isinstance(config, FsoSourceConfig):
        return FsoSource(config, client)
    return HttpSource(config)
