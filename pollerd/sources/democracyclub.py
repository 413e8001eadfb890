"""``kind = "democracyclub"``: postcodes, addresses, the elections list and the ballots feed.

The service sends no validators, so change is decided on canonical JSON (re-serialisation is not
a change); sinks get the bytes as served. The key is a query parameter: it is added to the
request and to nothing else (URLs in state and events never carry it). ``next`` links are not
followed as given (they drop the key and the filters): the elections list is walked by
limit/offset and de-duplicated by ``election_id``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from pollerd.config.dc import DcSourceConfig
from pollerd.core.canonical import canonical, canonical_hash
from pollerd.core.hosts import HostPolicy
from pollerd.core.model import Download, Outcome, PollReport, Resource, ResourceState
from pollerd.core.payload import PayloadRejected
from pollerd.election.dc import dc_facts
from pollerd.polling.answers import FetchFailure, host_of
from pollerd.polling.api_poller import ApiPoller
from pollerd.polling.context import PollContext
from pollerd.polling.fetch import Terms
from pollerd.sources.dc_answers import DcRefused, cursor_after, picker_slugs, refusal, updated_at
from pollerd.sources.dc_summary import postcode_summary, record_summary

PAGE = 100
MAX_PAGES = 200
WALKS = 3
FEED = "ballots-feed"
_WALKS = frozenset({FEED, "elections"})  # states of list walks, not resources
VANISHED = "vanished"
Summarise = Callable[[dict[str, Any] | None, dict[str, Any]], dict[str, Any]]


class DcPoller(ApiPoller):
    """Polls one ``democracyclub`` source: each watch, within the host's request budget."""

    config: DcSourceConfig

    def __init__(self, config: DcSourceConfig, context: PollContext) -> None:
        super().__init__(config, context, "pollerd.democracyclub", dc_facts)
        self.config = config
        self._budgets = context.budgets
        self._token = config.auth_token.get_secret_value() if config.auth_token else None
        self._api = config.api.rstrip("/") + ("/sandbox" if config.sandbox else "")
        hosts = [urlsplit(u).hostname or "" for u in (config.api, config.candidates_api)]
        policy = HostPolicy(config.allowed_hosts or [], also=hosts)
        self._terms = Terms(self.tally, {}, config.timeout, config.max_bytes, policy)
        self._picked: dict[str, list[str]] = {}

    async def load(self) -> None:
        """Stored state, and the addresses that postcodes' pickers listed last time."""
        await self._load_states()
        for code in self.config.postcodes:
            answer = await self._stored(self.states.get(f"postcode-{code}"))
            self._picked[code] = picker_slugs(answer)

    async def poll(self) -> PollReport:
        """One cycle over every watch."""
        if self.stopped:
            return PollReport(errors=1)
        if self._paced():
            return PollReport(skipped=self._watched())
        outcomes: list[Outcome | None] = []
        for code in self.config.postcodes:
            outcome = await self._watch(f"postcode-{code}", f"{self._api}/postcode/{code}/", postcode_summary)
            outcomes.append(outcome)
            self._picked[code] = picker_slugs(await self._stored(self.states.get(f"postcode-{code}")))
        for slug in self._addresses():
            outcomes.append(
                await self._watch(f"address-{slug}", f"{self._api}/address/{slug}/", postcode_summary)
            )
        if self.config.elections is not None and not self.stopped:
            outcomes += await self._guarded("elections", self._elections)
        if self.config.candidates and not self.stopped:
            outcomes += await self._guarded(FEED, self._ballots)
        await self._store.save_states(self.name, list(self.states.values()))
        return self._report(outcomes)

    def _watched(self) -> int:
        return sum(
            1 for rid, state in self.states.items() if rid not in _WALKS and state.content_key != VANISHED
        )

    def _addresses(self) -> list[str]:
        picked = {slug for slugs in self._picked.values() for slug in slugs}
        return sorted(set(self.config.addresses) | picked)

    async def _watch(self, rid: str, url: str, summarise: Summarise) -> Outcome | None:
        """One postcode or address: fetch, compare canonically, record with a summary."""
        state = self.states.setdefault(rid, ResourceState(rid, url=url))
        if self.stopped or state.waiting(self._clock()):
            return None
        try:
            download, document = await self._fetch(url)
        except (DcRefused, FetchFailure, PayloadRejected) as exc:
            return await self._failed(state, exc)
        except _OverBudget:
            return None
        return await self._judge(Resource(rid, url, "json"), state, download, document, summarise)

    async def _judge(
        self,
        resource: Resource,
        state: ResourceState,
        download: Download,
        document: Any,
        summarise: Summarise,
    ) -> Outcome:
        key = await asyncio.to_thread(canonical_hash, document)
        state.succeeded(self._clock())
        if key == state.content_key:
            await self._blobs.drop(download)
            return Outcome.UNCHANGED
        old = await self._stored(state)
        details = {"summary": summarise(old, document)}
        await self._recorder.record(resource, state, download, "json", details, content_key=key)
        return Outcome.CHANGED

    async def _elections(self) -> list[Outcome | None]:
        """Walk /elections/ by limit/offset, merge pages by election_id, confirm vanished ones."""
        assert self.config.elections is not None
        filters = self.config.elections.params()
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(WALKS):  # the order moves between pages: a row can repeat or be skipped
            count = await self._walk(filters, seen)
            if len(seen) >= count:
                break
        known = {
            rid.removeprefix("election-")
            for rid, s in self.states.items()
            if rid.startswith("election-") and s.content_key not in (None, VANISHED)
        }
        vanished = []
        for election_id in sorted(known - seen.keys()):  # skipped by the paging, or really gone?
            try:
                seen[election_id] = await self._document(f"{self._api}/elections/{election_id}/")
            except DcRefused as exc:
                if exc.status != 404:
                    raise
                vanished.append(election_id)
        outcomes: list[Outcome | None] = [
            await self._record(f"election-{eid}", f"{self._api}/elections/{eid}/", row)
            for eid, row in sorted(seen.items())
        ]
        outcomes += [
            await self._record(f"election-{eid}", f"{self._api}/elections/{eid}/", None) for eid in vanished
        ]
        return outcomes

    async def _walk(self, filters: list[tuple[str, str]], seen: dict[str, dict[str, Any]]) -> int:
        """One walk over every page (limit/offset, the key re-added); the count the API gives."""
        offset, count = 0, 0
        for _ in range(MAX_PAGES):
            url = f"{self._api}/elections/?{urlencode([*filters, ('limit', PAGE), ('offset', offset)])}"
            page = await self._document(url)
            count = int(page.get("count") or 0)
            rows = [r for r in page.get("results") or [] if isinstance(r, dict) and "election_id" in r]
            seen.update((row["election_id"], row) for row in rows)
            offset += PAGE
            if not rows or offset >= count:
                break
        return count

    async def _ballots(self) -> list[Outcome | None]:
        """The candidates site's feed after the stored cursor; each changed ballot an event."""
        feed = self.states.setdefault(FEED, ResourceState(FEED))
        base = self.config.candidates_api.rstrip("/")
        outcomes: list[Outcome | None] = []
        for _ in range(MAX_PAGES):
            query = [("page_size", str(PAGE))] + ([("last_updated", feed.cursor)] if feed.cursor else [])
            page = await self._document(f"{base}/ballots/?{urlencode(query)}")
            rows = [
                r
                for r in page.get("results") or []
                if isinstance(r, dict) and "ballot_paper_id" in r and isinstance(r.get("last_updated"), str)
            ]
            for row in rows:
                bid = row["ballot_paper_id"]
                outcomes.append(await self._record(f"ballot-{bid}", f"{base}/ballots/{bid}/", row))
            if rows:
                feed.cursor = cursor_after(rows, full=len(rows) >= PAGE, current=feed.cursor)
            if len(rows) < PAGE:
                break
        return outcomes

    async def _record(self, rid: str, url: str, row: dict[str, Any] | None) -> Outcome:
        """A record from a list (an election, a ballot): the payload is its canonical JSON;
        ``None`` records that it vanished."""
        state = self.states.setdefault(rid, ResourceState(rid, url=url))
        state.succeeded(self._clock())
        key = VANISHED if row is None else canonical_hash(row)
        if key == state.content_key:
            return Outcome.UNCHANGED
        old = await self._stored(state)
        body = canonical(row if row is not None else {"id": rid, "vanished": True})
        download = await self._payload(body, url)
        details = {"summary": record_summary(old, row)}
        await self._recorder.record(
            Resource(rid, url, "json"), state, download, "json", details, updated_at(row), content_key=key
        )
        return Outcome.CHANGED

    async def _guarded(self, name: str, walk: Callable[[], Any]) -> list[Outcome | None]:
        """A list walk: one failure fails the walk (it is retried whole next cycle); its state
        holds the error and the backoff."""
        state = self.states.setdefault(name, ResourceState(name))
        if state.waiting(self._clock()):
            return [None]
        try:
            result: list[Outcome | None] = await walk()
        except _OverBudget:
            return [None]
        except (DcRefused, FetchFailure, PayloadRejected) as exc:
            return [await self._failed(state, exc)]
        state.succeeded(self._clock())
        return result

    async def _document(self, url: str) -> dict[str, Any]:
        download, document = await self._fetch(url)
        await self._blobs.drop(download)
        if not isinstance(document, dict):
            raise PayloadRejected("invalid_json", "expected a JSON object")
        return document

    async def _fetch(self, url: str) -> tuple[Download, Any]:
        """GET with the key added, within the host's budget; the body parsed as JSON."""
        budget = self._budgets.for_key(host_of(url), *self.config.request_budget)
        spend = budget.try_take()
        if spend is None:
            self._deferring()
            raise _OverBudget
        started = time.monotonic()
        self._counted()
        try:
            with spend:
                answer = await self._client.get(self._terms, self._with_key(url))
        except FetchFailure as exc:
            raise refusal(exc) from None
        finally:
            self.tally.probed(time.monotonic() - started)
        assert answer.download is not None
        download = dataclasses.replace(answer.download, final_url=url)  # never the keyed URL
        return download, await self._parse(download)

    def _with_key(self, url: str) -> str:
        if self._token is None or self.config.sandbox:
            return url
        return f"{url}{'&' if '?' in url else '?'}{urlencode({'auth_token': self._token})}"

    async def _stored(self, state: ResourceState | None) -> dict[str, Any] | None:
        if state is not None and state.content_key == VANISHED:
            return None
        document = await self._stored_json(state)
        return document if isinstance(document, dict) else None

    async def _failed(self, state: ResourceState, exc: Exception) -> Outcome:
        refusal = exc if isinstance(exc, DcRefused) else DcRefused(None, str(exc))
        self._rejected(exc)
        message = self._redact(refusal.message)
        state.failed(message, state.backoff_until)
        if refusal.status == 401:
            await self._stop(f"the Democracy Club key was refused (401): {message}")
        elif refusal.status == 418:
            await self._stop(
                f"the candidates site refused our User-Agent "
                f"{self._client.user_agent!r} (418, a bot filter): set daemon.user_agent "
                "to one that names your organisation"
            )
        else:
            wait = refusal.wait or self._backoff.delay(state.failures)
            state.backoff_until = self._clock() + wait
            if refusal.status == 429:
                self.tally.over_quota()
                self._budgets.for_key(
                    host_of(state.url or self.config.api), *self.config.request_budget
                ).pause(wait)
            hint = (
                f" (a firewall or bot filter; User-Agent {self._client.user_agent!r})"
                if refusal.status == 403
                else ""
            )
            self._log.warning(
                "request failed",
                resource=state.resource_id,
                error=message + hint,
                failures=state.failures,
                retry_in=round(wait, 2),
            )
        return Outcome.ERROR


class _OverBudget(Exception):
    """The host's request budget is spent for now; the request waits for a later cycle."""
