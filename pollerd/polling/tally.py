"""``SourceTally``: the one place a source's bookkeeping is done, whatever its kind. Each count
goes to the Prometheus metrics and, where the status page or the demo's summary need it, to the
source's own figures (``PollerStatus``): nothing reads values back out of the metrics registry."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pollerd.core.election import Fact
from pollerd.core.model import Outcome, PollReport, ResourceState
from pollerd.telemetry.alerts import Alerts
from pollerd.telemetry.metrics import Metrics


@dataclass
class PollerStatus:
    """What a source has done since the daemon started, and how it is doing now."""

    kind: str
    stopped: bool = False  # refused for good (a key, a User-Agent) until a restart
    last_clean_poll: float | None = None  # when a cycle last ended with nothing failing
    budget_limited: bool = False  # polled less often than configured, to fit a request budget
    spread: float = 0.0  # seconds between cycles the budget allows now
    fallback_active: bool = False
    changes: int = 0
    downloaded_bytes: int = 0
    url_switches: int = 0
    election_events: dict[str, int] = field(default_factory=dict)  # announced, by type
    discovery_error: str | None = None  # why the source's API could not be asked, while it cannot
    discovery_failing_since: float | None = None
    answered: bool = False  # a resource (or the API) answered at least once since the start


class SourceTally:
    """Counts what one source does, in its metrics (labelled with its name) and its status."""

    def __init__(self, name: str, kind: str, metrics: Metrics, alerts: Alerts | None = None) -> None:
        self.name = name
        self._metrics = metrics
        self._alerts = alerts or Alerts()
        self._status = PollerStatus(kind)
        self._failed_cycles = 0  # in a row
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def _labelled(self, metric: Any, *labels: str) -> Any:
        """The metric's child for this source and ``labels``, looked up once (counted per request)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(self.name, *labels)
        return child

    def status(self) -> PollerStatus:
        """A copy of the figures as they are now."""
        return dataclasses.replace(self._status, election_events=dict(self._status.election_events))

    def polled(self, outcome: Outcome) -> None:
        """One resource was polled."""
        self._labelled(self._metrics.polls, outcome.value).inc()

    def probed(self, seconds: float) -> None:
        """How long one resource's requests took."""
        self._labelled(self._metrics.probe_seconds).observe(seconds)

    def requested(self, method: str, status_class: str) -> None:
        """One HTTP request was answered (``error``: it was not)."""
        self._labelled(self._metrics.http_requests, method, status_class).inc()

    def downloaded(self, size: int) -> None:
        """Body bytes arrived."""
        self._status.downloaded_bytes += size
        self._labelled(self._metrics.downloaded_bytes).inc(size)

    def rejected(self, reason: str) -> None:
        """A payload was refused (it never reaches a sink)."""
        self._metrics.rejected.labels(self.name, reason).inc()

    def refused(self, reason: str) -> None:
        """A URL pointed where the source may not go."""
        self._metrics.refused_urls.labels(self.name, reason).inc()

    def same_bytes(self) -> None:
        """New validators, identical content: not a change."""
        self._metrics.same_bytes.labels(self.name).inc()

    def changed(self, now: float, published: float | None) -> None:
        """A new version was committed; ``published`` is the upstream's own time of it."""
        self._status.changes += 1
        self._metrics.changes.labels(self.name).inc()
        self._metrics.last_change.labels(self.name).set(now)
        if published is not None:
            self._metrics.version_age.labels(self.name).observe(max(0.0, now - published))

    def announced(self, fact: Fact) -> None:
        """An election event was committed; a conflict between AP and the desk is an alert."""
        kind = fact.type
        self._status.election_events[kind] = self._status.election_events.get(kind, 0) + 1
        self._metrics.election_events.labels(self.name, kind).inc()
        if kind == "call_conflict" and fact.state:
            self._alerts.raise_alert("call_conflict", self.name, f"{self.name}: {conflict_words(fact)}")

    def discovered(
        self, ok: bool, watched: int, error: str | None = None, since: float | None = None
    ) -> None:
        """The source's API was asked what to watch (``error``: why it failed, failing ``since``)."""
        self._metrics.discoveries.labels(self.name, "ok" if ok else "error").inc()
        self._metrics.resources_watched.labels(self.name).set(watched)
        self._status.discovery_error = None if ok else error
        self._status.discovery_failing_since = None if ok else since
        self._status.answered = self._status.answered or ok

    def rediscovered(self) -> None:
        """Failing resources sent the source back to its API."""
        self._metrics.rediscoveries.labels(self.name).inc()

    def url_switched(self, resource: str, host: str) -> None:
        """The upstream moved a resource to another URL (on ``host``)."""
        self._status.url_switches += 1
        self._metrics.url_switches.labels(self.name).inc()
        self._alerts.raise_alert(
            "url_switch", self.name, f"{self.name}: the upstream moved {resource} to {host}"
        )

    def host_switched(self, direction: str, mirror_active: bool) -> None:
        """pollerd moved the source to a mirror, or back to its primary host."""
        self._status.fallback_active = mirror_active
        self._metrics.fallback_switches.labels(self.name, direction).inc()
        self._metrics.fallback_active.labels(self.name).set(int(mirror_active))
        where = "its fallback host" if mirror_active else "its primary host again"
        self._alerts.raise_alert("host_switch", self.name, f"{self.name}: switched to {where}")

    def deferred(self) -> None:
        """A request was put off: its budget is spent for now."""
        self._metrics.quota_deferred.labels(self.name).inc()

    def over_quota(self) -> None:
        """The upstream said the quota was exceeded."""
        self._metrics.quota_exceeded.labels(self.name).inc()

    def paced(self, limited: bool, spread: float) -> None:
        """Whether the source is held back to fit its budget, and the spacing that allows."""
        self._status.budget_limited, self._status.spread = limited, spread
        self._metrics.budget_limited.labels(self.name).set(int(limited))

    def stopped(self, reason: str) -> None:
        """The source stopped for good (until a restart)."""
        self._status.stopped = True
        self._metrics.source_failed.labels(self.name).set(1)
        self._alerts.raise_alert("source_stopped", self.name, f"{self.name} stopped: {reason}")

    def cycle(self, report: PollReport, states: Iterable[ResourceState], watched: int, now: float) -> None:
        """A cycle ended: resources waiting out a backoff, resources watched, and, if something
        was asked and nothing failed (not even a resource skipped while it waits), the last clean
        poll."""
        self._metrics.in_backoff.labels(self.name).set(sum(1 for s in states if s.waiting(now)))
        self._metrics.resources_watched.labels(self.name).set(watched)
        self._count_failures(report)
        self._status.answered = self._status.answered or report.changed + report.unchanged > 0
        if report.clean and not report.idle:
            self._status.last_clean_poll = now
            self._metrics.last_success.labels(self.name).set(now)

    def _count_failures(self, report: PollReport) -> None:
        """Cycles that failed in a row, for the alerts (an idle cycle counts neither way)."""
        if report.idle:
            return
        if not report.ok:
            self._failed_cycles += 1
            what = "its API" if report.discovery_failed else f"{report.errors} resource(s)"
            text = f"{self.name} failing: {self._failed_cycles} polls in a row ({what})"
            self._alerts.raise_alert("source_failing", self.name, text, self._failed_cycles)
        elif self._failed_cycles:
            text = f"{self.name} recovered after {self._failed_cycles} failed polls"
            self._alerts.raise_alert("source_recovered", self.name, text, self._failed_cycles)
            self._failed_cycles = 0


def conflict_words(fact: Fact) -> str:
    """A conflict between AP and the desk, as the ops channel reads it."""
    new = fact.new or {}
    ap = f"calls it for {new.get('candidate')}" if fact.state.startswith("ap=X") else "does not call it"
    where = f"{new.get('state_name') or new.get('state') or ''} {new.get('race') or fact.key}".strip()
    return (
        f"CALL CONFLICT in {where}: AP {ap}, the desk calls it for {new.get('desk_candidate')}; "
        f"the desk's call stands until the desk changes or withdraws it (race {fact.key})"
    )
