"""``kind = "http"``: a fixed list of URLs, for any server (including ones without validators)."""

from __future__ import annotations

from typing import Any

from pollerd.config import HttpSourceConfig
from pollerd.core.election import Rules
from pollerd.core.hosts import HostPolicy
from pollerd.core.model import Resource
from pollerd.core.names import name_from_url


class HttpSource:
    """Resources straight from the configuration; discovery never fails."""

    discovery_interval: float | None = None
    rules: Rules | None = None  # a generic URL tells of no election events

    def __init__(self, config: HttpSourceConfig) -> None:
        self.policy = HostPolicy(config.allowed_hosts)
        self._resources = _resources(config)

    async def discover(self, known: list[Resource]) -> list[Resource]:
        """The configured resources."""
        return list(self._resources)

    def details(self, document: Any) -> dict[str, Any] | None:
        """A generic file says nothing pollerd understands."""
        return None


def _resources(config: HttpSourceConfig) -> list[Resource]:
    resources = [
        Resource(
            id=item.id,
            url=item.url,
            format=item.format or config.format,
            allow_empty=config.allow_empty if item.allow_empty is None else item.allow_empty,
        )
        for item in config.resources
    ]
    taken = {resource.id for resource in resources}
    for url in config.urls:
        base = name_from_url(url)
        rid, n = base, 2
        while rid in taken:
            rid, n = f"{base}-{n}", n + 1
        taken.add(rid)
        resources.append(Resource(rid, url, config.format, config.allow_empty))
    return resources
