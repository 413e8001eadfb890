"""The README's example of a new source kind, as written there: it works through the registry,
the one file poller and the whole pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pollerd.config import Config, DaemonConfig, StdoutSinkConfig
from pollerd.config.base import HttpUrl, SourceBase
from pollerd.core.hosts import ANY_HOST
from pollerd.core.model import Resource
from pollerd.core.names import name_from_url
from pollerd.polling.fetch import HttpClient, Terms
from pollerd.polling.tally import SourceTally
from pollerd.sources import SOURCE_KINDS, SourceKind, file_kind
from tests.conftest import Upstream, opened


class IndexSourceConfig(SourceBase):
    """``kind = "index"``: every URL that a JSON list at ``url`` names."""

    kind: Literal["index"]
    url: HttpUrl


class IndexSource:
    """The files an index lists, asked for again every minute."""

    discovery_interval: float | None = 60.0
    policy = ANY_HOST

    def __init__(self, config: IndexSourceConfig, client: HttpClient, tally: SourceTally) -> None:
        self._url, self._client, self._terms = config.url, client, Terms(tally, {}, config.timeout, 1 << 20)

    async def discover(self, known: list[Resource]) -> list[Resource]:
        """The URLs the index lists now."""
        return [
            Resource(name_from_url(u), u) for u in json.loads(await self._client.read(self._terms, self._url))
        ]

    def details(self, document: Any) -> dict[str, Any] | None:
        """Nothing to add."""
        return None


INDEX = SourceKind(IndexSourceConfig, file_kind(IndexSource))  # the registry line


async def test_a_new_kind_plugs_in_through_the_registry(upstream: Upstream, tmp_path: Path) -> None:
    """The index's files are discovered, polled and delivered like any file source's."""
    urls = [upstream.file("/a.json", b'{"v": 1}'), upstream.file("/b.json", b'{"v": 2}')]
    index = upstream.file("/index.json", json.dumps(urls).encode())
    source = IndexSourceConfig.model_validate(
        {"kind": "index", "name": "listed", "url": index, "sinks": ["console"]}
    )
    config = Config.model_construct(
        daemon=DaemonConfig.model_validate({"state_dir": str(tmp_path / "state")}),
        sources=[source],
        sinks=[StdoutSinkConfig.model_validate({"kind": "stdout", "name": "console"})],
    )
    async with opened(config, {**SOURCE_KINDS, "index": INDEX}) as daemon:
        assert await daemon.run_once()
        poller = daemon.pollers["listed"]
        assert poller.kind == "index"
        assert sorted(poller.states) == ["a.json", "b.json"]
        assert poller.status().changes == 2
