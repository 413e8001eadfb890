"""Source kinds: one registry, ``kind`` → config table → poller factory.

A kind is its keys (a model in ``pollerd.config``, listed in ``SourceConfig``) and its behaviour
(a module here), joined by one line in ``SOURCE_KINDS``. A kind whose resources are files needs
only a ``Source`` (what to watch, what a payload says) driven by the one file poller; a kind whose
resources are API answers is an ``ApiPoller`` of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pollerd.config import FsoSourceConfig, HttpSourceConfig
from pollerd.config.ap import ApSourceConfig
from pollerd.config.base import SourceBase
from pollerd.config.dc import DcSourceConfig
from pollerd.polling.context import PollContext
from pollerd.polling.fetch import HttpClient
from pollerd.polling.file_poller import SourcePoller
from pollerd.polling.poller import Poller
from pollerd.polling.source import Source
from pollerd.polling.tally import SourceTally
from pollerd.sources.ap import ApPoller
from pollerd.sources.democracyclub import DcPoller
from pollerd.sources.fso import FsoSource
from pollerd.sources.http import HttpSource


@dataclass(frozen=True)
class SourceKind:
    """One kind of source: the model of its table and how its poller is built."""

    config: type[SourceBase]
    build: Callable[[Any, PollContext], Poller]  # called with an instance of ``config``


def file_kind(make: Callable[[Any, HttpClient, SourceTally], Source]) -> Callable[[Any, PollContext], Poller]:
    """The factory of a kind whose resources are files: its ``Source`` (made from the table, the
    HTTP client and the source's tally, for a discovery API's requests) in the file poller."""
    return lambda c, ctx: SourcePoller(c, make(c, ctx.client, ctx.tally(c.name, c.kind)), ctx)


SOURCE_KINDS: Mapping[str, SourceKind] = {
    "http": SourceKind(HttpSourceConfig, file_kind(lambda c, _client, _tally: HttpSource(c))),
    "fso": SourceKind(FsoSourceConfig, file_kind(FsoSource)),
    "ap": SourceKind(ApSourceConfig, ApPoller),
    "democracyclub": SourceKind(DcSourceConfig, DcPoller),
}


def build_poller(
    config: SourceBase, context: PollContext, kinds: Mapping[str, SourceKind] = SOURCE_KINDS
) -> Poller:
    """The poller of one ``[[sources]]`` table."""
    kind = kinds[config.kind]
    if not isinstance(config, kind.config):
        raise TypeError(f"source {config.name}: a {kind.config.__name__} was expected")
    return kind.build(config, context)
