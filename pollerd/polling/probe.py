"""Asking one file whether it changed, the cheapest way that works (HEAD, conditional GET or a
plain GET and a hash), and recording it when it did."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from structlog.stdlib import BoundLogger

from pollerd.config.base import SourceBase
from pollerd.core.detect import (
    HEAD_REFUSED,
    HeadAction,
    Verdict,
    after_fetch,
    after_head,
    conditional_validators,
    probe_strategy,
    strategy_after_get,
)
from pollerd.core.model import Download, Outcome, Resource, ResourceState, Strategy
from pollerd.core.payload import (
    PayloadRejected,
    effective_format,
    extension_for,
    validate_body,
    validate_payload,
)
from pollerd.polling.answers import FetchFailure
from pollerd.polling.fetch import HttpClient, Terms
from pollerd.polling.recorder import ChangeRecorder
from pollerd.polling.source import Source
from pollerd.polling.tally import SourceTally
from pollerd.store.blobs import BlobStore


@dataclass
class Prober:
    """Probes the resources of one file source; raises FetchFailure or PayloadRejected."""

    config: SourceBase
    source: Source
    client: HttpClient
    blobs: BlobStore
    recorder: ChangeRecorder
    tally: SourceTally
    log: BoundLogger
    headers: dict[str, str]

    def __post_init__(self) -> None:
        self._strategy = Strategy(self.config.strategy)
        self._terms = Terms(
            self.tally, self.headers, self.config.timeout, self.config.max_bytes, self.source.policy
        )

    async def answers(self, url: str) -> bool:
        """Whether a host answers at all (a mirror's poller asks its primary)."""
        try:
            head = await self.client.head(self._terms, url)
        except (FetchFailure, PayloadRejected):
            return False
        return 200 <= head.status < 300 or head.status in HEAD_REFUSED - {403}

    async def check(self, resource: Resource, state: ResourceState, url: str) -> Outcome:
        """Probe ``url`` (where the resource is now); download and record it if it changed."""
        state.url = url
        strategy = probe_strategy(self._strategy, state)
        if strategy is Strategy.HEAD:
            action = await self._head(resource, state, url)
            if action in (HeadAction.UNCHANGED, HeadAction.ADOPT):
                state.learned_strategy = state.learned_strategy or Strategy.HEAD
                return Outcome.UNCHANGED
            if action is HeadAction.FALL_BACK:
                strategy = Strategy.CONDITIONAL
        answer = await self.client.get(self._terms, url, conditional_validators(strategy, state))
        if self._strategy is Strategy.AUTO:
            state.learned_strategy = strategy_after_get(self._strategy, strategy, answer.validators)
        if answer.download is None:
            return Outcome.UNCHANGED
        return await self._judge(resource, state, url, answer.download)

    async def _head(self, resource: Resource, state: ResourceState, url: str) -> HeadAction:
        head = await self.client.head(self._terms, url)
        action = after_head(self._strategy, state, head.status, head.validators, head.content_length)
        if action is HeadAction.FAIL:
            raise FetchFailure(
                "status", f"HTTP {head.status} on HEAD", status=head.status, retry_after=head.retry_after
            )
        if action is HeadAction.ADOPT:
            self.tally.same_bytes()
            self.log.info(
                "same content at this URL (its ETag is the content's MD5): "
                "validators adopted, nothing downloaded",
                resource=resource.id,
            )
            state.validators = head.validators
        if action is HeadAction.FALL_BACK:
            self.log.info(
                "HEAD is no help here; using conditional GET", resource=resource.id, status=head.status
            )
        return action

    async def _judge(self, resource: Resource, state: ResourceState, url: str, download: Download) -> Outcome:
        if self._unpublished(resource, state, download):
            await self.blobs.drop(download)
            state.validators, state.unpublished = download.validators, True
            return Outcome.UNCHANGED
        verdict = after_fetch(state, download.sha256, download.validators)
        if verdict is not Verdict.CHANGED:
            await self.blobs.drop(download)
            if verdict is Verdict.SAME_BYTES:
                self.tally.same_bytes()
                self.log.info("new validators, same bytes", resource=resource.id)
            state.validators = download.validators
            state.md5 = state.md5 or download.md5  # a state from before MD5s were kept learns it
            return Outcome.UNCHANGED
        fmt = effective_format(resource.format, url, download.content_type)
        try:
            if download.body is not None:  # small and in memory: no trip to a thread
                document, details = self._inspect(resource, download, fmt)
            else:
                document, details = await asyncio.to_thread(self._inspect, resource, download, fmt)
            await self.recorder.record(
                resource, state, download, extension_for(fmt, url), details, reading=document
            )
        except BaseException:  # a download recorded is in the blob store: this one is not
            await asyncio.shield(self.blobs.drop(download))
            raise
        return Outcome.CHANGED

    def _unpublished(self, resource: Resource, state: ResourceState, download: Download) -> bool:
        """An empty file where the upstream publishes empty files until its first results, and
        nothing was published here yet: "not published yet", not a version, not a failure."""
        empty = download.size == 0 or (download.body is not None and not download.body.strip())
        return (
            empty
            and state.sha256 is None
            and not resource.allow_empty
            and bool(getattr(self.source, "empty_until_published", False))
        )

    def _inspect(self, resource: Resource, download: Download, fmt: str) -> tuple[Any, dict[str, Any] | None]:
        """Validate the payload and read the source's details from it (in a worker thread, unless
        it is small and in memory): the document (parsed once, for the rules too) and the details."""
        if download.body is not None:
            document = validate_body(download.body, fmt, resource.allow_empty)
        else:
            assert download.path is not None
            document = validate_payload(download.path, fmt, resource.allow_empty)
        if document is None:
            return None, None
        try:
            return document, self.source.details(document)
        except Exception:  # details are a courtesy; they must never hold back a version
            self.log.exception("could not read details", resource=resource.id)
            return document, None
