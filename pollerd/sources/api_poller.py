"""What the pollers of API sources share (AP, Democracy Club): their resources are API answers,
not files, so they poll on their own terms, but report, record, write and stop the same way."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

import structlog

from pollerd.backoff import Backoff
from pollerd.config_base import SourceBase
from pollerd.context import PollContext
from pollerd.model import Download, ResourceState, Validators
from pollerd.payload import BOM, PayloadRejected
from pollerd.poller import Outcome, PollReport
from pollerd.recorder import ChangeRecorder

NO_VALIDATORS = Validators()


class ApiPoller:
    """The common part: state, the recorder, backoff, the cycle report, stopping for good."""

    def __init__(self, config: SourceBase, context: PollContext, logger: str) -> None:
        self.name = config.name
        self.states: dict[str, ResourceState] = {}
        self.failed = False
        self._client = context.client
        self._store = context.store
        self._blobs = context.blobs
        self._metrics = context.metrics
        self._clock = context.clock
        self._recorder = ChangeRecorder(self.name, list(config.sinks), context)
        self._backoff = Backoff(config.backoff_base, config.backoff_max)
        self._secrets = [s for s in config.secret_values() if s]
        self._log = structlog.get_logger(logger).bind(source=self.name)

    @property
    def ready(self) -> bool:
        """Answered at least once (now, or in an earlier run)."""
        return any(s.last_success_at is not None or s.sha256 is not None
                   for s in self.states.values())

    async def _load_states(self) -> None:
        """Stored state; a restart clears a stop (the key may have been fixed)."""
        self.states = await self._store.load_states(self.name)
        await self._store.mark_stopped(self.name, None)

    def _report(self, outcomes: list[Outcome | None]) -> PollReport:
        """The cycle's report (``None``: skipped); a clean cycle is the source's last success."""
        done = [o for o in outcomes if o is not None]
        report = PollReport(changed=done.count(Outcome.CHANGED),
                            unchanged=done.count(Outcome.UNCHANGED),
                            errors=done.count(Outcome.ERROR), skipped=outcomes.count(None))
        if done and report.errors == 0:
            self._metrics.last_success.labels(self.name).set(self._clock())
        return report

    async def _write(self, body: bytes, url: str, validators: Validators = NO_VALIDATORS) -> Download:
        """A payload pollerd made itself (a snapshot, a record), ready for the recorder."""
        path = self._blobs.tmp_dir / f"{uuid.uuid4().hex}.part"
        await asyncio.to_thread(path.write_bytes, body)
        return Download(path, hashlib.sha256(body).hexdigest(), len(body), "application/json",
                        validators, url)

    async def _stored_json(self, state: ResourceState | None) -> Any:
        """The last recorded payload of a resource, parsed (None if there is none)."""
        if state is None or state.sha256 is None:
            return None
        path = self._blobs.path(state.sha256)
        try:
            return await asyncio.to_thread(lambda: json.loads(path.read_bytes().removeprefix(BOM)))
        except (OSError, ValueError):
            return None

    async def _parse(self, download: Download) -> Any:
        """A downloaded body as JSON; PayloadRejected (and the file discarded) if it is not."""
        try:
            return await asyncio.to_thread(_read_json, download)
        except PayloadRejected:
            await self._blobs.discard(download.path)
            raise

    async def _stop(self, reason: str) -> None:
        """Stop the source for good (until a restart): metric, status and one clear log line."""
        self.failed = True
        self._metrics.source_failed.labels(self.name).set(1)
        await self._store.mark_stopped(self.name, reason)
        self._log.error("source stopped", reason=reason)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text


def _read_json(download: Download) -> Any:
    try:
        return json.loads(download.path.read_bytes().removeprefix(BOM))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadRejected("invalid_json", str(exc)[:200]) from None
