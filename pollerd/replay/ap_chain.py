"""AP's ``nextrequest`` chains, replayed so that a client polling at any interval gets a
consistent snapshot.

A recorded AP query is a chain: the first, full answer, then the answers to each ``nextrequest``
link, each a delta merged by race (pages of a truncated delta count as one answer). The chain is
folded into steps: at each recorded moment, the races that changed and how they then read.

The replay issues its own links, ``…&minDateTime=<step time>&replayStep=<n>``. A request for the
query's own URL gets the full snapshot as of now; a link of step ``n`` gets every race that
changed after step ``n`` up to now, as it reads now: the answers recorded for a link and for its
successors, merged into one. A client polling faster than the recording gets AP's "nothing new"
(200 with only the link); one polling slower skips steps but still ends at the same snapshot.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pollerd.record.archive import Answer
from pollerd.replay.timeline import origin_of, request_key
from pollerd.versions.snapshot import Race, Snapshot

CURSOR = ("minDateTime", "untilStep", "offset", "replayStep", "setZeroCounts")
_KEPT = ("apiVersion", "apiBuild", "electionDate")


@dataclass
class ApChain:
    """One AP query over the night: its steps, each the races changed then, as they then read."""

    origin: str
    query: str  # the query's request key, without cursor or credentials
    meta: dict[str, Any] = field(default_factory=dict)  # electionDate, apiVersion as AP sent them
    times: list[float] = field(default_factory=list)
    changed: list[dict[str, Race]] = field(default_factory=list)

    def step_at(self, moment: float) -> int:
        """The last step at or before ``moment`` (-1: none yet)."""
        return bisect.bisect_right(self.times, moment) - 1

    def races(self, step: int, since: int = -1) -> list[Race]:
        """The races that changed after ``since`` up to ``step``, as they read at ``step``."""
        current: dict[str, Race] = {}
        for changed in self.changed[since + 1 : step + 1]:
            current.update(changed)
        return [current[key] for key in sorted(current)]

    def etag(self, step: int) -> str:
        """The full document's ETag at a step."""
        digest = hashlib.sha256(f"{self.origin}{self.query}#{step}".encode()).hexdigest()[:16]
        return f'"{digest}"'


def build_chains(answers: Iterable[Answer], bodies: Any) -> dict[tuple[str, str], ApChain]:
    """Fold one AP source's recorded answers into chains, by (origin, query key); ``bodies``
    reads a stored body by its SHA-256."""
    chains: dict[tuple[str, str], ApChain] = {}
    snapshots: dict[tuple[str, str], Snapshot] = {}
    pending: dict[tuple[str, str], set[str]] = {}
    owner: dict[tuple[str, str], tuple[str, str]] = {}  # a link -> its chain
    for answer in sorted(answers, key=lambda a: a.at):
        document = _document(answer, bodies)
        if document is None:
            continue
        origin = origin_of(answer.url)
        chain_key = owner.get((origin, request_key(answer.url))) or (
            origin,
            request_key(answer.url, CURSOR),
        )
        chain = chains.setdefault(chain_key, ApChain(*chain_key))
        chain.meta = chain.meta or {k: document[k] for k in _KEPT if k in document}
        snapshot = snapshots.setdefault(chain_key, Snapshot())
        changed = pending.setdefault(chain_key, set())
        changed |= snapshot.merge(document)
        link = document.get("nextrequest")
        if isinstance(link, str):
            owner[(origin_of(link), request_key(link))] = chain_key
        if document.get("isTruncated") is True:
            continue  # the pages of one delta are one step
        if changed:
            chain.times.append(answer.at)
            chain.changed.append({key: snapshot.races[key] for key in changed})
            changed.clear()
    return chains


def _document(answer: Answer, bodies: Any) -> dict[str, Any] | None:
    if answer.method != "GET" or answer.body is None or answer.status is None:
        return None
    if not 200 <= answer.status < 300:
        return None
    try:
        document = json.loads(bodies(answer.body))
    except ValueError:
        return None
    return document if isinstance(document, dict) and "nextrequest" in document else None


def zero_counts(race: Race) -> Race:
    """A race as AP's ``setZeroCounts=true`` serves it: every count zero, no winner."""
    return _zeroed(race)  # type: ignore[no-any-return]


_COUNTS = frozenset({"voteCount", "precinctsReporting", "eevp", "delegateCount", "electWon"})
_PERCENTS = frozenset({"precinctsReportingPct", "votePct", "eevp"})
_CALLS = frozenset({"winner", "winnerDateTime"})


def _zeroed(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in _CALLS:
                continue
            if (key in _COUNTS or key in _PERCENTS) and _number(item):
                out[key] = type(item)(0)
            elif key == "raceCallStatus":
                out[key] = "Too Early to Call"
            else:
                out[key] = _zeroed(item)
        return out
    if isinstance(value, list):
        return [_zeroed(item) for item in value]
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
