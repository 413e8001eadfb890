"""Committing a new version: the payload adopted into the blob store, then the event, the new
state and one pending delivery per sink in one transaction, before any sink sees it."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Any

import structlog

from pollerd.context import PollContext
from pollerd.model import Download, Event, Resource, ResourceState


class ChangeRecorder:
    """Turns a validated download into an event of one source; shared by every poller kind."""

    def __init__(self, source: str, sinks: list[str], context: PollContext) -> None:
        self._source = source
        self._sinks = sinks
        self._store = context.store
        self._blobs = context.blobs
        self._metrics = context.metrics
        self._on_change = context.on_change
        self._clock = context.clock
        self._log = structlog.get_logger("pollerd.poll").bind(source=source)

    async def record(
        self,
        resource: Resource,
        state: ResourceState,
        download: Download,
        ext: str,
        details: dict[str, Any] | None,
        **state_changes: Any,
    ) -> ResourceState:
        """Commit the change; the resource's new state (``state_changes`` are committed with it)."""
        now = self._clock()
        updated = dataclasses.replace(
            state, sha256=download.sha256, size=download.size, validators=download.validators,
            content_type=download.content_type, sequence=state.sequence + 1, last_change_at=now,
            url_switch=None, **state_changes,
        )
        event = Event(
            event_id=Event.make_id(self._source, resource.id, updated.sequence, download.sha256),
            source=self._source, resource=resource.id, url=download.final_url,
            sequence=updated.sequence, sha256=download.sha256, previous_sha256=state.sha256,
            size=download.size, content_type=download.content_type,
            validators=download.validators, detected_at=datetime.fromtimestamp(now, UTC),
            extension=ext, upstream_id=resource.key, url_switch=state.url_switch, details=details,
        )
        async with self._blobs.lock:
            await self._blobs.adopt(download.path, download.sha256)
            await asyncio.shield(self._store.record_change(self._source, updated, event, self._sinks))
        if state.sha256 is not None:
            await self._blobs.release(state.sha256, self._store)
        self._metrics.changes.labels(self._source).inc()
        self._metrics.last_change.labels(self._source).set(now)
        self._log.info("change", resource=resource.id, sequence=event.sequence,
                       sha256=event.sha256, size=event.size, event_id=event.event_id)
        self._on_change()
        return updated
