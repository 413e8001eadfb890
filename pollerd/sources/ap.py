"""``kind = "ap"``: AP Elections API queries, each a snapshot kept current the way AP asks.

``nextrequest`` mode: the first request fetches the full result; after that only the stored
``nextrequest`` link is followed (never rebuilt), each delta merged into the snapshot by race,
pages fetched at once while ``isTruncated``. The link and the snapshot are committed together, so a
restart continues from the cursor. ``etag`` mode: the full document with ``If-None-Match``.
Either way a change event means the merged snapshot changed; it names the races that did.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pollerd.config.ap import ApQuery, ApSourceConfig
from pollerd.core.canonical import dump
from pollerd.core.election import Fact
from pollerd.core.hosts import HostPolicy
from pollerd.core.model import Download, Outcome, PollReport, Resource, ResourceState, Validators
from pollerd.core.payload import PayloadRejected
from pollerd.desk.book import DeskBook
from pollerd.desk.judge import DeskRules
from pollerd.election.ap import ap_facts, race_facts, races_of
from pollerd.election.ap_numbers import number_facts
from pollerd.polling.answers import FetchFailure
from pollerd.polling.api_poller import NO_VALIDATORS, ApiPoller
from pollerd.polling.context import PollContext
from pollerd.polling.fetch import Terms
from pollerd.polling.quota import Spend
from pollerd.sources.ap_answers import ApRefused, answer_facts, classify
from pollerd.sources.ap_desk import ApDesk, holds
from pollerd.versions.snapshot import Snapshot, SnapshotReading
from pollerd.versions.stored import checkpoint_bytes, delta_bytes

MAX_PAGES = 100
_KEY_PARAMS = frozenset({"apikey", "api_key", "x-api-key"})


class ApPoller(ApiPoller):
    """Polls every query of one ``ap`` source, spending the key's budget, never more."""

    config: ApSourceConfig

    def __init__(self, config: ApSourceConfig, context: PollContext) -> None:
        rules = DeskRules(ap_rules, functools.partial(holds, config), DeskBook())
        super().__init__(config, context, "pollerd.ap", rules)
        self.config = config
        self.desk = ApDesk(config, rules, self._store, self._recorder, self._clock)
        self._cycle = asyncio.Lock()  # a cycle, or the desk's decisions: one at a time
        assert config.api_key is not None  # the config guarantees a key (or a key file, read)
        key = config.api_key.get_secret_value()
        self._budget = context.budgets.for_key(key, config.quota_per_minute, config.quota_window)
        headers = {
            **{k: v.get_secret_value() for k, v in config.headers.items()},
            "x-api-key": key,
            "Accept-Encoding": "gzip",
        }
        self._policy = HostPolicy(config.allowed_hosts or [], also=[urlsplit(config.api).hostname or ""])
        self._terms = Terms(self.tally, headers, config.timeout, config.max_bytes, self._policy)
        self._snapshots: dict[str, Snapshot] = {}
        self._last_asked: dict[str, float] = {}  # monotonic, by query
        self._resources = {q.name: Resource(q.name, config.query_url(q), "json") for q in config.queries}

    async def load(self) -> None:
        """Read the stored state (cursors, last snapshots) before the first poll."""
        await self._load_states()
        await self.desk.load()
        if self.config.rehearsal:
            self._log.warning(
                "REHEARSAL: this source polls AP TEST data (resultsType=t); "
                "nothing it delivers is a real result"
            )

    async def poll(self) -> PollReport:
        """One cycle: each query that is due and fits the budget, one after the other."""
        if self.stopped:
            return PollReport(errors=len(self.config.queries))
        async with self._cycle:
            await self._decide()
            if self._paced():
                return PollReport(skipped=len(self.config.queries))
            # the query answered longest ago first: one the budget put off goes first next time
            queries = sorted(self.config.queries, key=lambda q: self._last_asked.get(q.name, 0.0))
            outcomes = [await self._poll_query(query) for query in queries]
            await self._store.save_states(self.name, list(self.states.values()))
            return self._report(outcomes)

    async def apply_decisions(self) -> int:
        """Apply the desk's decisions waiting for this source (between cycles); how many."""
        if self.stopped:
            return 0
        async with self._cycle:
            return await self._decide()

    async def _decide(self) -> int:
        return await self.desk.apply_pending(self.states, self._race)

    async def _race(self, key: str) -> dict[str, Any] | None:
        """A race as this source's snapshots hold it now (None: no query carries it)."""
        for query in self.config.queries:
            state = self.states.get(query.name)
            if state is not None and state.sha256 is not None:
                race = (await self._snapshot(query.name, state)).races.get(key)
                if race is not None:
                    return race
        return None

    async def _poll_query(self, query: ApQuery) -> Outcome | None:
        state = self.states.setdefault(query.name, ResourceState(query.name))
        state.url = self._resources[query.name].url
        if state.waiting(self._clock()):
            return None
        spend = self._budget.try_take()
        if spend is None:
            self._deferring()
            return None
        started = self._last_asked[query.name] = time.monotonic()
        try:
            if self.config.mode == "etag":
                with spend:
                    changed = await self._refetch(query, state)
            else:
                changed = await self._follow(query, state, spend)
        except (ApRefused, FetchFailure, PayloadRejected) as exc:
            outcome = await self._failed(query, exc)
        else:
            outcome = Outcome.CHANGED if changed else Outcome.UNCHANGED
            state.succeeded(self._clock())
        finally:
            spend.settle()  # never used if the cycle failed before its first request
        self.tally.probed(time.monotonic() - started)
        return outcome

    def _room(self) -> bool:
        return self._budget.wait_needed() == 0

    def wake_in(self) -> float | None:
        """Put-off queries may be behind AP: the next cycle goes when the key's window frees a
        request, not an interval later."""
        return self._budget.wait_needed() if self._deferred else None

    def _watched(self) -> int:
        return len(self.config.queries) * (2 if self.config.raw_deltas else 1)

    async def _follow(self, query: ApQuery, state: ResourceState, spend: Spend) -> bool:
        """Follow the stored link (or make the first, full request), page by page; each page's
        request is counted against the key's budget until its answer is complete."""
        snapshot = await self._snapshot(query.name, state)
        date = snapshot.election_date
        url = state.cursor or self._resources[query.name].url
        changed: set[str] = set()
        delta: list[Any] = []
        facts: dict[str, Any] = {}
        try:
            for page in range(1, MAX_PAGES + 1):
                with spend:
                    document, headers = await self._get_json(url)
                changed |= await asyncio.to_thread(snapshot.merge, document)
                delta += document.get("races") or []
                facts = answer_facts(document, headers, facts)
                url = self._next_link(document)
                if not document.get("isTruncated"):
                    break
                if page == MAX_PAGES:
                    self._log.warning(
                        "still truncated after the page limit; continuing next cycle",
                        query=query.name,
                        pages=page,
                    )
                    break
                spend = await self._budget.take()  # "ask again now", within the budget
        except BaseException:
            spend.settle()
            self._snapshots.pop(query.name, None)  # partly merged: reload from the last commit
            raise
        if self.config.raw_deltas and delta:
            await self._record_delta(query, delta, facts)
        news = bool(changed) or snapshot.election_date != date or state.sha256 is None
        return await self._commit(query, state, snapshot, changed, news, facts, cursor=url)

    async def _refetch(self, query: ApQuery, state: ResourceState) -> bool:
        """The full document, conditionally on the stored ETag."""
        send = state.validators if state.sha256 is not None else Validators()
        self._counted()
        answer = await self._client.get(self._terms, self._resources[query.name].url, Validators(send.etag))
        if answer.download is None:
            return False
        document = await self._answer(answer.download)
        old = await self._snapshot(query.name, state)
        fresh = Snapshot()
        await asyncio.to_thread(fresh.merge, document)
        changed = {k for k in fresh.races.keys() | old.races.keys() if fresh.races.get(k) != old.races.get(k)}
        self._snapshots[query.name] = fresh
        news = bool(changed) or fresh.election_date != old.election_date or state.sha256 is None
        return await self._commit(
            query,
            state,
            fresh,
            changed,
            news,
            answer_facts(document, answer.headers, {}),
            cursor=None,
            validators=Validators(answer.validators.etag),
        )

    async def _commit(
        self,
        query: ApQuery,
        state: ResourceState,
        snapshot: Snapshot,
        changed: set[str],
        news: bool,
        facts: dict[str, Any],
        cursor: str | None,
        validators: Validators = NO_VALIDATORS,
    ) -> bool:
        """Record the snapshot if it changed (``news``); the cursor and validators are committed
        with it. The version is kept as its change from the last one, or whole every
        ``checkpoint_every`` versions (and the first)."""
        if not news:
            state.cursor, state.validators = cursor, validators
            return False
        reading = snapshot.reading(changed)
        digest, size = await asyncio.to_thread(snapshot.digest)
        if digest == state.sha256:
            state.cursor, state.validators = cursor, validators
            return False
        self._warn_if_test(snapshot, facts)
        whole = (
            state.sha256 is None
            or state.chain_length + 1 >= self.config.checkpoint_every
            or await self._blobs.has(digest)  # this very snapshot again (a call undone and redone)
        )
        if whole:
            body = await asyncio.to_thread(checkpoint_bytes, reading)
            chain: dict[str, Any] = {"chain_from": None, "chain_length": 0}
        else:
            assert state.sha256 is not None
            body = await asyncio.to_thread(delta_bytes, reading, state.sha256)
            since = state.sequence if state.chain_from is None else state.chain_from
            chain = {"chain_from": since, "chain_length": state.chain_length + 1}
        url = self._resources[query.name].url
        download = await self._payload(body, url, validators, identity=(digest, size))
        told = await self._recorder.facts(query.name, state.sha256, reading)  # the desk's held calls first
        await self._recorder.record(
            self._resources[query.name],
            state,
            download,
            "json",
            {"changed_races": sorted(changed), **facts, **self._desk_calls()},
            published_at=snapshot.last_updated(changed),
            reading=reading,
            told=told,
            cursor=cursor,
            **chain,
        )
        return True

    def _desk_calls(self) -> dict[str, Any]:
        """The races whose published call is the desk's, not AP's flag (none: nothing said)."""
        published = self.desk.rules.published()
        return {"desk_calls": published} if published else {}

    async def _record_delta(self, query: ApQuery, races: list[Any], facts: dict[str, Any]) -> None:
        """The raw delta as its own resource, ``<query>.delta``."""
        name = f"{query.name}.delta"
        state = self.states.setdefault(name, ResourceState(name))
        document = {"races": races, **facts}
        body = dump(document)
        digest = hashlib.sha256(body).hexdigest()
        if digest == state.sha256:
            return
        resource = Resource(name, self._resources[query.name].url, "json")
        download = await self._payload(body, resource.url)
        await self._recorder.record(resource, state, download, "json", facts, reading=document)

    async def _snapshot(self, query: str, state: ResourceState) -> Snapshot:
        """The query's snapshot: in memory, else the last committed one, else empty."""
        snapshot = self._snapshots.get(query)
        if snapshot is None:
            stored = None if state.sha256 is None else await self._versions.read(state.sha256)
            snapshot = Snapshot.of(stored) if isinstance(stored, SnapshotReading) else Snapshot()
            self._snapshots[query] = snapshot
        return snapshot

    async def _get_json(self, url: str) -> tuple[dict[str, Any], dict[str, str]]:
        self._counted()
        answer = await self._client.get(self._terms, url)
        assert answer.download is not None  # an unconditional GET has a body
        return await self._answer(answer.download), answer.headers

    async def _answer(self, download: Download) -> dict[str, Any]:
        """An AP answer: a JSON object (the downloaded file is not kept)."""
        document = await self._parse(download)
        await self._blobs.drop(download)
        if not isinstance(document, dict):
            raise PayloadRejected("invalid_json", "an AP answer is a JSON object")
        return document

    def _next_link(self, document: dict[str, Any]) -> str:
        """AP's link, stored as given, minus anything that looks like a key."""
        link = document.get("nextrequest")
        if not isinstance(link, str) or not link.startswith(("http://", "https://")):
            raise ApRefused("protocol", "the answer has no nextrequest link")
        parts = urlsplit(link)
        query = [
            (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in _KEY_PARAMS
        ]
        link = urlunsplit(parts._replace(query=urlencode(query, safe=",:")))
        if self._policy.refusal(link) is not None:
            raise ApRefused("protocol", f"nextrequest points at another host: {parts.hostname}")
        return link

    async def _failed(self, query: ApQuery, exc: Exception) -> Outcome:
        state = self.states[query.name]
        refusal = classify(exc)
        now = self._clock()
        state.failed(self._redact(f"{refusal.kind}: {refusal.message}"), None)
        self._rejected(exc)
        if refusal.kind == "auth":
            await self._stop(
                f"AP refused the API key (401): {state.last_error}; fix the key and restart pollerd"
            )
            return Outcome.ERROR
        if refusal.kind == "quota":
            pause = refusal.retry_after or random.uniform(
                self.config.quota_pause, 2 * self.config.quota_pause
            )
            self._budget.pause(pause)
            state.backoff_until = now + pause
            self.tally.over_quota()
            self._log.warning(
                "AP quota exceeded; waiting",
                query=query.name,
                retry_in=round(pause, 2),
                detail=state.last_error,
            )
            return Outcome.ERROR
        delay = self._backoff.delay(state.failures, refusal.retry_after)
        state.backoff_until = now + delay
        log = self._log.error if refusal.kind == "request" else self._log.warning
        log(
            "AP poll failed",
            query=query.name,
            detail=state.last_error,
            failures=state.failures,
            retry_in=round(delay, 2),
        )
        return Outcome.ERROR

    def _warn_if_test(self, snapshot: Snapshot, facts: dict[str, Any]) -> None:
        facts["test"] = any(race.get("test") is True for race in snapshot.races.values())
        if facts["test"] and not self.config.rehearsal:
            self._log.warning("AP marks these races as TEST data, but rehearsal is off")


def ap_rules(resource: str, old: Any, new: Any) -> list[Fact]:
    """Race calls from a query's snapshots (a ``.delta`` resource is raw deltas: none). From two
    readings, only the races the new one changed are looked at."""
    if resource.endswith(".delta"):
        return []
    if isinstance(new, SnapshotReading):
        before = old.races if isinstance(old, SnapshotReading) else None if old is None else races_of(old)
        changed = None if before is None else new.changed
        return race_facts(before, new.races, changed) + number_facts(before, new.races, changed)
    before = None if old is None else races_of(old)
    return ap_facts(old, new) + number_facts(before, races_of(new))
