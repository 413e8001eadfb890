"""Every Prometheus metric pollerd exports, defined in one place on one registry.

Label values are bounded: configured source and sink names and small enums, never URLs.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from pollerd import __version__

POLL_OUTCOMES = ("unchanged", "changed", "error")
DELIVERY_OUTCOMES = ("delivered", "failed", "dead", "superseded", "filtered")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "error")
SWITCH_DIRECTIONS = ("to_fallback", "to_primary")
REJECT_REASONS = ("empty", "html", "invalid_json", "oversize", "truncated")
REFUSAL_REASONS = ("host", "scheme")


class Metrics:
    """The daemon's metrics; each daemon owns its registry so several can live in one process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # *_created series double the output and no dashboard reads them
        disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.build_info = Gauge(
            "pollerd_build_info", "Always 1; the version as a label.", ["version"], registry=r
        )
        self.polls = Counter(
            "pollerd_polls_total", "Resource polls by outcome.", ["source", "outcome"], registry=r
        )
        self.http_requests = Counter(
            "pollerd_http_requests_total",
            "Upstream HTTP requests by method and status class.",
            ["source", "method", "status_class"],
            registry=r,
        )
        self.downloaded_bytes = Counter(
            "pollerd_downloaded_bytes_total",
            "Body bytes downloaded from upstream (decoded).",
            ["source"],
            registry=r,
        )
        self.changes = Counter("pollerd_changes_total", "New versions detected.", ["source"], registry=r)
        self.same_bytes = Counter(
            "pollerd_validator_only_changes_total",
            "New validators with identical bytes (not a change).",
            ["source"],
            registry=r,
        )
        self.rejected = Counter(
            "pollerd_rejected_payloads_total",
            "Downloaded bodies refused before any sink saw them.",
            ["source", "reason"],
            registry=r,
        )
        self.probe_seconds = Histogram(
            "pollerd_probe_duration_seconds",
            "Time to probe (and fetch, if changed) one resource.",
            ["source"],
            registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.in_backoff = Gauge(
            "pollerd_resources_in_backoff",
            "Resources currently waiting out a backoff.",
            ["source"],
            registry=r,
        )
        self.rediscoveries = Counter(
            "pollerd_rediscoveries_total", "Discoveries forced by failing resources.", ["source"], registry=r
        )
        self.discoveries = Counter(
            "pollerd_discoveries_total", "Discoveries by outcome.", ["source", "outcome"], registry=r
        )
        self.skipped_runs = Counter(
            "pollerd_skipped_polls_total",
            "Intervals that passed while the source's previous cycle still ran.",
            ["source"],
            registry=r,
        )
        self.cycle_seconds = Histogram(
            "pollerd_source_cycle_seconds",
            "How long a source's poll cycle took.",
            ["source"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.source_behind = Gauge(
            "pollerd_source_behind",
            "1 while the source's last cycle outlasted its interval (the next began at once).",
            ["source"],
            registry=r,
        )
        self.last_success = Gauge(
            "pollerd_last_success_timestamp_seconds",
            "When a poll of the source last completed without error.",
            ["source"],
            registry=r,
        )
        self.last_change = Gauge(
            "pollerd_last_change_timestamp_seconds",
            "When the source last produced a change.",
            ["source"],
            registry=r,
        )
        self.fallback_active = Gauge(
            "pollerd_fallback_active",
            "1 while the source is served from a fallback host.",
            ["source"],
            registry=r,
        )
        self.fallback_switches = Counter(
            "pollerd_fallback_switches_total",
            "Switches between primary and fallback hosts.",
            ["source", "direction"],
            registry=r,
        )
        self.refused_urls = Counter(
            "pollerd_refused_urls_total",
            "URLs and redirects not fetched: host or scheme not allowed.",
            ["source", "reason"],
            registry=r,
        )
        self.url_switches = Counter(
            "pollerd_url_switches_total",
            "Resources whose discovered URL moved (same resource, new URL).",
            ["source"],
            registry=r,
        )
        self.resources_watched = Gauge(
            "pollerd_resources_watched", "Resources the source currently polls.", ["source"], registry=r
        )
        self.quota_deferred = Counter(
            "pollerd_quota_deferred_total",
            "Requests put off because the key's per-minute budget was spent.",
            ["source"],
            registry=r,
        )
        self.quota_exceeded = Counter(
            "pollerd_quota_exceeded_total",
            "Quota answers from upstream (403 quota, 429).",
            ["source"],
            registry=r,
        )
        self.source_failed = Gauge(
            "pollerd_source_failed",
            "1 when a source stopped for good (e.g. its API key was refused).",
            ["source"],
            registry=r,
        )
        self.election_events = Counter(
            "pollerd_election_events_total",
            "Election events announced (race calls, cantons finished, ballots cancelled...), by type.",
            ["source", "type"],
            registry=r,
        )
        self.deliveries = Counter(
            "pollerd_deliveries_total", "Delivery attempts by outcome.", ["sink", "outcome"], registry=r
        )
        self.outbox_depth = Gauge(
            "pollerd_outbox_depth", "Deliveries waiting for the sink.", ["sink"], registry=r
        )
        self.dead_letters = Gauge(
            "pollerd_dead_letters", "Deliveries in the dead-letter list.", ["sink"], registry=r
        )
        self.delivery_seconds = Histogram(
            "pollerd_delivery_duration_seconds",
            "Time for a sink to take one event.",
            ["sink"],
            registry=r,
            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.source_interval = Gauge(
            "pollerd_source_interval_seconds",
            "The source's configured poll interval (for staleness alerts).",
            ["source"],
            registry=r,
        )
        self.outbox_bytes = Gauge(
            "pollerd_outbox_bytes", "Payload bytes waiting for the sink.", ["sink"], registry=r
        )
        self.version_age = Histogram(
            "pollerd_version_age_seconds",
            "How old a version was when pollerd committed it, from the upstream's own time "
            "(Last-Modified, the FSO file's timestamp, AP's lastUpdated).",
            ["source"],
            registry=r,
            buckets=(1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600),
        )
        self.task_failures = Counter(
            "pollerd_task_failures_total",
            "Errors of the daemon's long-running tasks (a sink's delivery "
            "loop, a source's polls, ...): retried, or the task died.",
            ["task"],
            registry=r,
        )
        self.budget_limited = Gauge(
            "pollerd_budget_limited",
            "1 while the source polls less often than configured, to fit a request budget.",
            ["source"],
            registry=r,
        )
        self.leases_held = Gauge(
            "pollerd_leases_held",
            "1 while this replica holds the lease (a sink, a source or a group of sources).",
            ["lease"],
            registry=r,
        )
        self.lease_takeovers = Counter(
            "pollerd_lease_takeovers_total",
            "Leases this replica took over after another holder's expired.",
            ["lease"],
            registry=r,
        )
        self.fenced_writes = Counter(
            "pollerd_fenced_writes_total",
            "Writes refused because this replica's lease was lost (its work stopped at once).",
            ["lease"],
            registry=r,
        )

    def initialise_leases(self, names: Iterable[str]) -> None:
        """The lease series of a replica, at zero."""
        for name in names:
            for family in (self.leases_held, self.lease_takeovers, self.fenced_writes):
                family.labels(name)

    def initialise(self, sources: Iterable[str], sinks: Iterable[str]) -> None:
        """Create every labelled series at zero so dashboards see them before the first event."""
        self.build_info.labels(__version__).set(1)
        for source in sources:
            self._initialise_source(source)
        for sink in sinks:
            self.task_failures.labels(f"deliver:{sink}")
            for outcome in DELIVERY_OUTCOMES:
                self.deliveries.labels(sink, outcome)
            for family in (self.outbox_depth, self.outbox_bytes, self.dead_letters, self.delivery_seconds):
                family.labels(sink)

    def _initialise_source(self, source: str) -> None:
        self.task_failures.labels(f"poll:{source}")
        for family, values in (
            (self.polls, POLL_OUTCOMES),
            (self.rejected, REJECT_REASONS),
            (self.fallback_switches, SWITCH_DIRECTIONS),
            (self.discoveries, ("ok", "error")),
            (self.refused_urls, REFUSAL_REASONS),
        ):
            for value in values:
                family.labels(source, value)
        for series in (
            self.downloaded_bytes,
            self.changes,
            self.same_bytes,
            self.rediscoveries,
            self.skipped_runs,
            self.probe_seconds,
            self.in_backoff,
            self.fallback_active,
            self.last_success,
            self.last_change,
            self.url_switches,
            self.resources_watched,
            self.quota_deferred,
            self.quota_exceeded,
            self.source_failed,
            self.version_age,
            self.budget_limited,
        ):
            series.labels(source)
        for method in ("HEAD", "GET"):
            for status_class in STATUS_CLASSES:
                self.http_requests.labels(source, method, status_class)
