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
from pollerd.polling.file_poller import SourcePoller
from pollerd.polling.poller import Poller
from pollerd.sources.ap import ApPoller
from pollerd.sources.democracyclub import DcPoller
from pollerd.sources.fso import FsoSource
from pollerd.sources.http import HttpSource


@dataclass(frozen=True)
class SourceKind:
    """One kind of source: the model of its table and how its poller is built."""

    config: type[SourceBase]
    build: Callable[[Any, PollContext], Poller]  # called with an instance of ``config``


SOURCE_KINDS: Mapping[str, SourceKind] = {
    "http": SourceKind(HttpSourceConfig, lambda c, ctx: SourcePoller(c, HttpSource(c), ctx)),
    "fso": SourceKind(
        FsoSourceConfig,
        lambda c, ctx: SourcePoller(c, FsoSource(c, ctx.client, ctx.tally(c.name, c.kind)), ctx),
    ),
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
