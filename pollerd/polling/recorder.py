"""Committing a new version: the payload adopted into the blob store, then the event, the new
state and one pending delivery per sink in one transaction, before any sink sees it."""

from __future__ import annotations

import asyncio
import dataclasses
from contextlib import suppress
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import structlog

from pollerd.core.election import Fact, Rules
from pollerd.core.model import Download, Event, Resource, ResourceState
from pollerd.core.payload import kept_json, stored_json
from pollerd.desk.book import Decision
from pollerd.polling.context import PollContext
from pollerd.polling.tally import SourceTally
from pollerd.store.group_commit import GroupCommit
from pollerd.store.protocol import Change, StateRefused


def upstream_time(details: dict[str, Any] | None, download: Download) -> float | None:
    """When the upstream says this version was made: the file's own ``timestamp`` (read into
    the details), else ``Last-Modified``; None when it says nothing."""
    stamp = (details or {}).get("timestamp")
    if isinstance(stamp, str):
        with suppress(ValueError):
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    if download.validators.last_modified:
        with suppress(TypeError, ValueError):
            return parsedate_to_datetime(download.validators.last_modified).timestamp()
    return None


class ChangeRecorder:
    """Turns a validated download into an event of one source; shared by every poller kind."""

    def __init__(
        self,
        source: str,
        sinks: list[str],
        context: PollContext,
        tally: SourceTally,
        rules: Rules | None = None,
    ) -> None:
        self._source = source
        self._rules = rules
        self._sinks = sinks
        self._context = context
        self._tally = tally
        self._log = structlog.get_logger("pollerd.poll").bind(source=source)
        self._commits = GroupCommit(context.store, context.blobs)

    async def record(
        self,
        resource: Resource,
        state: ResourceState,
        download: Download,
        ext: str,
        details: dict[str, Any] | None,
        published_at: float | None = None,
        reading: Any = None,
        told: list[Fact] | None = None,
        settles: Decision | None = None,
        **state_changes: Any,
    ) -> Event:
        """Commit the change; ``state`` becomes the resource's new state once it is committed
        (with ``state_changes``), and stays as it was if the commit fails. The event as committed.

        ``published_at``: the upstream's own time of this version, where the poller knows it
        better than ``details["timestamp"]`` or ``Last-Modified`` (for the version-age histogram).
        ``reading``: the version as the poller read it (parsed once: the rules and the sinks take
        it; a source without rules keeps none in memory). ``state_changes`` may say the payload
        is a delta (``chain_from``): the event then names the checkpoint it builds on.
        ``told``: the version's election events, where the poller made them (the source's rules
        are not run); ``settles``: the desk's decision this version announces.
        """
        now = self._context.clock()
        updated = _next_version(state, download, now, state_changes)
        event = self._event(resource, state, updated, download, ext, details, now)
        event = dataclasses.replace(event, chain_from=updated.chain_from)
        if told is not None:
            event = dataclasses.replace(event, election=tuple(told))
        elif self._rules is not None:
            if reading is None:
                reading = await asyncio.to_thread(_stored_json, download)
            facts = await self.facts(resource.id, state.sha256, reading)
            event = dataclasses.replace(event, election=tuple(facts))
        change = Change(self._source, updated, event, self._sinks, download, settles)
        event = await self._commits.commit(change)
        updated.sequence = event.sequence
        if self._rules is not None and reading is not None:
            self._context.readings.put(event.sha256, reading, download.size)
        previous, previous_at = state.sha256, state.last_change_at
        for field in dataclasses.fields(state):
            setattr(state, field.name, getattr(updated, field.name))
        store = self._context.store
        if previous is not None and not store.retention.keeps(previous_at):
            await self._context.blobs.release(previous, store)  # (one still kept for redelivery: the sweep's)
        self._tally.changed(now, published_at or upstream_time(details, download))
        for fact in event.election:
            self._tally.announced(fact)
        self._log.info(
            "change",
            resource=resource.id,
            sequence=event.sequence,
            sha256=event.sha256,
            size=event.size,
            event_id=event.event_id,
            election=[f"{fact.type} {fact.key}" for fact in event.election] or None,
        )
        self._context.on_change()
        return event

    async def facts(self, resource: str, previous: str | None, new: Any) -> list[Fact]:
        """The election events between the resource's last committed version (its reading held
        in memory, else read back) and this one, in a thread; a version the rules cannot read
        tells nothing (it is recorded all the same)."""
        assert self._rules is not None
        if new is None:
            return []
        try:
            old = None if previous is None else await self._context.versions.read(previous)
            return await asyncio.to_thread(self._rules, resource, old, new)
        except StateRefused:  # the state cannot be read now: the cycle fails and is retried
            raise
        except Exception:  # the rules must never cost a version: it is recorded without events
            self._log.exception("election rules failed on this version", resource=resource)
            return []

    def _event(
        self,
        resource: Resource,
        state: ResourceState,
        updated: ResourceState,
        download: Download,
        ext: str,
        details: dict[str, Any] | None,
        now: float,
    ) -> Event:
        return Event(
            event_id=Event.make_id(self._source, resource.id, updated.sequence, download.sha256),
            source=self._source,
            resource=resource.id,
            url=download.final_url,
            sequence=updated.sequence,
            sha256=download.sha256,
            previous_sha256=state.sha256,
            size=download.size,
            content_type=download.content_type,
            validators=download.validators,
            detected_at=datetime.fromtimestamp(now, UTC),
            extension=ext,
            upstream_id=resource.key,
            url_switch=state.url_switch,
            details=details,
        )


def _stored_json(download: Download) -> Any:
    """The download parsed, as a stored payload is (None when it is no JSON)."""
    if download.path is None:
        return kept_json(download.read_bytes())
    return stored_json(download.path)


def _next_version(
    state: ResourceState, download: Download, now: float, changes: dict[str, Any]
) -> ResourceState:
    """The resource's state once ``download`` is its new version (``changes`` too)."""
    return dataclasses.replace(
        state,
        sha256=download.sha256,
        size=download.size,
        validators=download.validators,
        content_type=download.content_type,
        sequence=state.sequence + 1,
        last_change_at=now,
        url_switch=None,
        md5=download.md5,
        **({"chain_from": None, "chain_length": 0, "unpublished": False} | changes),
    )
