"""Values shared by every part of the pipeline: resources, validators, state, events."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pollerd.core.election import Fact

_EVENT_NAMESPACE = uuid.UUID("6f1c1a2e-4f0b-4d51-9a51-70c1d3e0e5a1")


class Strategy(StrEnum):
    """How a resource is probed for change."""

    AUTO = "auto"
    HEAD = "head"
    CONDITIONAL = "conditional"
    ALWAYS = "always"


@dataclass(frozen=True)
class Validators:
    """HTTP validators exactly as the server sent them."""

    etag: str | None = None
    last_modified: str | None = None

    def __bool__(self) -> bool:
        return self.etag is not None or self.last_modified is not None


@dataclass(frozen=True)
class Resource:
    """One thing a source watches: a stable id, where it is now, and what it should contain."""

    id: str
    url: str
    format: str = "auto"
    allow_empty: bool = False
    key: str | None = None  # the upstream's own identity (a CKAN resource id), when it has one

    def to_json(self) -> dict[str, Any]:
        """A plain dict, for persisting the last good discovery."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Resource:
        """The inverse of to_json."""
        return cls(
            id=data["id"],
            url=data["url"],
            format=data.get("format", "auto"),
            allow_empty=bool(data.get("allow_empty", False)),
            key=data.get("key"),
        )


@dataclass
class ResourceState:
    """What pollerd knows about one resource between polls; persisted after every poll."""

    resource_id: str
    url: str = ""
    learned_strategy: Strategy | None = None
    validators: Validators = field(default_factory=Validators)
    sha256: str | None = None
    size: int | None = None
    content_type: str | None = None
    sequence: int = 0
    last_change_at: float | None = None
    last_success_at: float | None = None
    last_error: str | None = None
    failures: int = 0
    backoff_until: float | None = None
    url_switch: dict[str, str] | None = None  # a move not yet reported by an event
    cursor: str | None = None  # where a stateful API continues (AP's nextrequest link)
    content_key: str | None = None  # hash of the canonical form, where bytes alone are too noisy
    md5: str | None = None  # of the content held: S3-style ETags are this, so a moved file is known
    chain_from: int | None = None  # the checkpoint's sequence, where the current version is a delta
    chain_length: int = 0  # deltas since that checkpoint
    unpublished: bool = False  # an empty file where the upstream publishes empty files until results

    def succeeded(self, now: float) -> None:
        """The resource answered: no failures, no backoff, no error."""
        self.failures, self.backoff_until, self.last_error = 0, None, None
        self.last_success_at = now

    def failed(self, error: str, retry_at: float | None) -> None:
        """The resource failed once more; not asked again before ``retry_at``."""
        self.failures += 1
        self.last_error = error
        self.backoff_until = retry_at

    def waiting(self, now: float) -> bool:
        """Whether the resource waits out a backoff at ``now``."""
        return (self.backoff_until or 0) > now


class Outcome(StrEnum):
    """The result of polling one resource once."""

    UNCHANGED = "unchanged"
    CHANGED = "changed"
    ERROR = "error"


@dataclass(frozen=True)
class PollReport:
    """What one cycle of a source did."""

    changed: int = 0
    unchanged: int = 0
    errors: int = 0
    skipped: int = 0
    discovery_failed: bool = False
    refused_urls: int = 0
    failing: int = 0  # resources whose last poll failed, this cycle or before (waiting out a backoff)
    wrote: bool = False  # the state took a write this cycle (a change committed, states saved)

    @classmethod
    def of(
        cls,
        outcomes: Iterable[Outcome | None],
        *,
        skipped: int = 0,
        discovery_failed: bool = False,
        refused_urls: int = 0,
        failing: int = 0,
        wrote: bool = False,
    ) -> PollReport:
        """The report of a cycle's outcomes (``None``: a resource skipped, as are ``skipped``)."""
        results = list(outcomes)
        return cls(
            changed=results.count(Outcome.CHANGED),
            unchanged=results.count(Outcome.UNCHANGED),
            errors=results.count(Outcome.ERROR),
            skipped=results.count(None) + skipped,
            discovery_failed=discovery_failed,
            refused_urls=refused_urls,
            failing=failing,
            wrote=wrote,
        )

    @property
    def ok(self) -> bool:
        """No resource failed, the resources are known, and none points where it must not."""
        return self.errors == 0 and not self.discovery_failed and self.refused_urls == 0

    @property
    def clean(self) -> bool:
        """ok, and no resource is still failing from an earlier cycle (``pollerd once``'s exit)."""
        return self.ok and self.failing == 0

    @property
    def idle(self) -> bool:
        """Everything was skipped: nothing was asked this cycle."""
        return self.skipped > 0 and self.changed + self.unchanged + self.errors == 0


@dataclass(frozen=True)
class Download:
    """A body received, with what the server said about it: streamed to a local file (``path``),
    or, when it is small, held in memory (``body``; ``path`` is then None: it is written once,
    where it is kept, when it is adopted)."""

    path: Path | None
    sha256: str
    size: int
    content_type: str | None
    validators: Validators
    final_url: str
    md5: str | None = None
    body: bytes | None = None

    def read_bytes(self) -> bytes:
        """The body (from the file, when it is on disk: call it in a worker thread then)."""
        if self.body is not None:
            return self.body
        assert self.path is not None
        return self.path.read_bytes()


@dataclass(frozen=True)
class Event:
    """One change: new content of one resource, as handed to every sink."""

    event_id: str
    source: str
    resource: str
    url: str
    sequence: int
    sha256: str
    previous_sha256: str | None
    size: int
    content_type: str | None
    validators: Validators
    detected_at: datetime
    extension: str
    upstream_id: str | None = None
    url_switch: dict[str, str] | None = None
    details: dict[str, Any] | None = None
    election: tuple[Fact, ...] = ()  # what happened on the night, told by this version
    # kept, not published: the sequence of the checkpoint this version's payload (a delta) builds
    # on, so the store keeps every payload between them while this version may still be read
    chain_from: int | None = None

    @staticmethod
    def make_id(source: str, resource: str, sequence: int, sha256: str) -> str:
        """A deterministic id: the same change always gets the same id (the idempotency key)."""
        return str(uuid.uuid5(_EVENT_NAMESPACE, f"{source}\0{resource}\0{sequence}\0{sha256}"))

    def election_events(self) -> list[dict[str, Any]]:
        """The election events of this version, as stored and published (ids from this one's)."""
        return [fact.to_json(self.event_id) for fact in self.election]

    def to_json(self) -> dict[str, Any]:
        """The event as sinks publish it (``election`` only where the version told of any)."""
        data: dict[str, Any] = {
            "event_id": self.event_id,
            "source": self.source,
            "resource": self.resource,
            "url": self.url,
            "sequence": self.sequence,
            "sha256": self.sha256,
            "previous_sha256": self.previous_sha256,
            "size": self.size,
            "content_type": self.content_type,
            "validators": {"etag": self.validators.etag, "last_modified": self.validators.last_modified},
            "detected_at": self.detected_at.isoformat().replace("+00:00", "Z"),
            "upstream_id": self.upstream_id,
            "url_switch": self.url_switch,
            "details": self.details,
        }
        if self.election:
            data["election"] = self.election_events()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], extension: str) -> Event:
        """The inverse of to_json (the extension is stored beside it)."""
        validators = data.get("validators") or {}
        return cls(
            event_id=data["event_id"],
            source=data["source"],
            resource=data["resource"],
            url=data["url"],
            sequence=int(data["sequence"]),
            sha256=data["sha256"],
            previous_sha256=data.get("previous_sha256"),
            size=int(data["size"]),
            content_type=data.get("content_type"),
            validators=Validators(validators.get("etag"), validators.get("last_modified")),
            detected_at=datetime.fromisoformat(data["detected_at"]).astimezone(UTC),
            extension=extension,
            upstream_id=data.get("upstream_id"),
            url_switch=data.get("url_switch"),
            details=data.get("details"),
            election=tuple(Fact.from_json(fact) for fact in data.get("election") or ()),
        )
