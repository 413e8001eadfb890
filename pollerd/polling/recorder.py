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

from pollerd.core.model import Download, Event, Resource, ResourceState
from pollerd.polling.context import PollContext


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
        published_at: float | None = None,
        **state_changes: Any,
    ) -> ResourceState:
        """Commit the change; the resource's new state (``state_changes`` are committed with it).

        ``published_at``: the upstream's own time of this version, where the poller knows it
        better than ``details["timestamp"]`` or ``Last-Modified`` (for the version-age histogram).
        """
        now = self._clock()
        updated = dataclasses.replace(
            state,
            sha256=download.sha256,
            size=download.size,
            validators=download.validators,
            content_type=download.content_type,
            sequence=state.sequence + 1,
            last_change_at=now,
            url_switch=None,
            md5=download.md5,
            **state_changes,
        )
        event = Event(
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
        async with self._blobs.lock:
            await self._blobs.adopt(download.path, download.sha256)
            event = await asyncio.shield(self._store.record_change(self._source, updated, event, self._sinks))
        updated.sequence = event.sequence
        if state.sha256 is not None:
            await self._blobs.release(state.sha256, self._store)
        self._metrics.changes.labels(self._source).inc()
        self._metrics.last_change.labels(self._source).set(now)
        published = published_at or upstream_time(details, download)
        if published is not None:
            self._metrics.version_age.labels(self._source).observe(max(0.0, now - published))
        self._log.info(
            "change",
            resource=resource.id,
            sequence=event.sequence,
            sha256=event.sha256,
            size=event.size,
            event_id=event.event_id,
        )
        self._on_change()
        return updated
