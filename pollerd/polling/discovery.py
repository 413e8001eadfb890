"""Keeping a file source's list of resources current: discovery at start, on schedule and while a
resource fails (the upstream may have moved it), the known list kept through an API outage, URLs
refused where the source may not go, and moves recorded in the resources' state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from structlog.stdlib import BoundLogger

from pollerd.core.backoff import Backoff
from pollerd.core.model import Resource, ResourceState, Validators
from pollerd.polling.source import DiscoveryFailed, Source
from pollerd.polling.tally import SourceTally
from pollerd.store.protocol import StateRefused, StateStore
from pollerd.telemetry.tasks import describe


@dataclass
class Discovery:
    """The resources of one source, as its API last told them (or as stored, until it does)."""

    source: Source
    store: StateStore
    tally: SourceTally
    backoff: Backoff
    log: BoundLogger
    clock: Callable[[], float]
    resources: list[Resource] = field(default_factory=list)
    states: dict[str, ResourceState] = field(default_factory=dict)  # the poller's: moves go there
    discovered_at: float | None = None
    refused: int = 0  # URLs refused in this cycle
    switched: list[str] = field(default_factory=list)  # moved since the poller last saved states
    error: str | None = None  # why the API could not be asked, while it cannot
    error_since: float | None = None
    _ids: frozenset[str] = frozenset()
    _failures: int = 0
    _retry_at: float = 0.0

    async def load(self, states: dict[str, ResourceState]) -> None:
        """The last good discovery, stored (the poller's ``states`` record moves)."""
        self.states = states
        self.resources = await self.store.load_discovery(self.tally.name) or []
        self._ids = frozenset(r.id for r in self.resources)

    def is_current(self, resource_id: str) -> bool:
        """Whether the source lists the resource now."""
        return resource_id in self._ids

    @property
    def allowed(self) -> bool:
        """False while a failing discovery API waits out its backoff."""
        return self.clock() >= self._retry_at

    async def refresh_if_due(self, failing: bool) -> bool:
        """Discover at start, every ``discovery_interval``, and every cycle while a resource
        fails (``failing``): the moment the upstream says where it went, pollerd follows. False
        when the resources could not be known now."""
        self.refused = 0
        interval = self.source.discovery_interval
        due = (
            self.discovered_at is None
            or failing
            or (interval is not None and self.clock() - self.discovered_at >= interval)
        )
        if not due:
            return True
        return self.allowed and await self.discover()

    async def moved(self) -> list[Resource]:
        """Discover now; the resources whose URL moved."""
        before = {r.id: r.url for r in self.resources}
        await self.discover()
        return [r for r in self.resources if r.id in before and before[r.id] != r.url]

    async def discover(self) -> bool:
        """Ask the source for its resources; on failure keep the known (persisted) ones."""
        now = self.clock()
        try:
            found = await self.source.discover(list(self.resources))
        except StateRefused:
            raise
        except Exception as exc:  # whatever the API answered, the known URLs are polled on
            await self._failed(now, exc)
            return False
        self._failures, self._retry_at = 0, 0.0
        if self.error is not None:
            self.log.info("discovery works again", failed_for=round(now - (self.error_since or now), 1))
            self.error = self.error_since = None
            await self.store.note_source(self.tally.name, "discovery", None)
        self.discovered_at = now
        found = [r for r in found if self._allowed(r)]
        if found != self.resources:
            self._apply(found)
            await self.store.save_discovery(self.tally.name, found)
        self.tally.discovered(True, len(self.resources))
        return True

    async def _failed(self, now: float, exc: Exception) -> None:
        """Count and say it, wait with backoff, and keep the reason where ``status`` reads it."""
        self._failures += 1
        delay = self.backoff.delay(self._failures)
        self._retry_at = now + delay
        reason = str(exc)
        if not isinstance(exc, DiscoveryFailed):
            reason = f"the API's answer broke its reader: {describe(exc)}"
        self.tally.discovered(False, len(self.resources), reason, self.error_since or now)
        self.log.warning(
            "discovery failed; polling the known URLs",
            error=reason,
            known=len(self.resources),
            retry_in=round(delay, 2),
            exc_info=not isinstance(exc, DiscoveryFailed),
        )
        if reason != self.error:
            self.error_since = self.error_since or now
            self.error = reason
            await self.store.note_source(self.tally.name, "discovery", reason)

    def _allowed(self, resource: Resource) -> bool:
        reason = self.source.policy.refusal(resource.url)
        if reason is None:
            return True
        self.refused += 1
        self.tally.refused(reason)
        self.log.error(
            "discovered URL refused: not polled",
            resource=resource.id,
            host=urlsplit(resource.url).hostname,
            reason=reason,
        )
        return False

    def _apply(self, found: list[Resource]) -> None:
        old = {r.id: r for r in self.resources}
        new = {r.id: r for r in found}
        added, removed = sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys())
        if old and added:
            self.log.info("resources added", added=added)
        if removed:
            self.log.warning("resources no longer listed; not polled any more", removed=removed)
        for rid in sorted(new.keys() & old.keys()):
            if new[rid].url != old[rid].url:
                self._url_moved(rid, old[rid].url, new[rid].url)
        self.resources = found
        self._ids = frozenset(new)

    def _url_moved(self, resource_id: str, old_url: str, new_url: str) -> None:
        """Same resource, new place: the old host's validators and backoff mean nothing there.

        The content hash is kept, so identical bytes at the new URL are not a change.
        """
        state = self.states.setdefault(resource_id, ResourceState(resource_id))
        first = (state.url_switch or {}).get("from", old_url)
        at = datetime.fromtimestamp(self.clock(), UTC).isoformat().replace("+00:00", "Z")
        state.url_switch = {"from": first, "to": new_url, "at": at}
        state.validators = Validators()
        state.learned_strategy = None
        state.failures = 0
        state.backoff_until = None
        self.switched.append(resource_id)
        self.tally.url_switched(resource_id, urlsplit(new_url).hostname or "?")
        self.log.warning("url switched", resource=resource_id, old_url=old_url, new_url=new_url)
