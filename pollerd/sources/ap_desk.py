"""The desk of one ``ap`` source: AP's calls judged as the source's ``calls`` rules and the desk's
standing calls say (``DeskRules``), and the desk's decisions applied by the poller that holds the
source, each announced as a version of the source's ``_desk`` resource (its payload: the
decision), committed with the decision marked applied, so it is announced once."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import orjson
import structlog

from pollerd.config.ap import ApSourceConfig
from pollerd.core.model import Download, Resource, ResourceState, Validators
from pollerd.desk.book import DESK_RESOURCE, Decision, DeskBook
from pollerd.desk.decide import Verdict, decide
from pollerd.desk.judge import DeskRules
from pollerd.election.ap import Race, scope
from pollerd.polling.recorder import ChangeRecorder
from pollerd.store.protocol import StateStore
from pollerd.telemetry.tasks import describe

DESK_URL = "pollerd:desk"


class ApDesk:
    """Judges AP's calls and applies the desk's decisions for one source."""

    def __init__(
        self,
        config: ApSourceConfig,
        rules: DeskRules,
        store: StateStore,
        recorder: ChangeRecorder,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self.rules = rules
        self._store = store
        self._recorder = recorder
        self._clock = clock
        self._log = structlog.get_logger("pollerd.desk").bind(source=config.name)

    def holds(self, office: str, state: str, race: str) -> bool:
        """Whether AP's calls of this race wait for the desk."""
        return holds(self._config, office, state, race)

    async def load(self) -> None:
        """The desk's standing calls and overrides, from the decisions applied so far."""
        self.rules.book = DeskBook.of(await self._store.decisions(self._config.name, "applied"))
        pending = await self._store.latest_told(self._config.name, "pending:")
        self.rules.held = {told["key"]: told["state"] for told in pending.values() if told["state"]}

    async def apply_pending(
        self, states: dict[str, ResourceState], race: Callable[[str], Awaitable[Race | None]]
    ) -> int:
        """Apply the decisions waiting for this source, oldest first, each against its race as
        AP's snapshots hold it now (``race``: found by key); how many were settled."""
        pending = await self._store.decisions(self._config.name, "pending")
        for decision in pending:
            await self._apply(decision, states, await race(decision.race))
        return len(pending)

    async def _apply(self, decision: Decision, states: dict[str, ResourceState], race: Race | None) -> None:
        book = self.rules.book
        where = scope(race) if race is not None else {}
        held = self.holds(str(where.get("office") or ""), str(where.get("state") or ""), decision.race)
        try:
            verdict = decide(decision, book, race, held)
        except Exception as exc:  # a bug must cost this decision (refused, said), never the polls
            self._log.exception("desk decision could not be judged", decision=decision.id)
            verdict = Verdict(f"could not be applied: {describe(exc)}")
        standing = book.calls.get(decision.race)
        settled = verdict.settled(decision, standing.state if standing else "", self._clock())
        if verdict.refusal is not None:
            self._log.warning("desk decision refused", decision=decision.id, reason=verdict.refusal)
            await self._store.settle_decision(settled)
            return
        state = states.setdefault(DESK_RESOURCE, ResourceState(DESK_RESOURCE))
        body = orjson.dumps(settled.to_json(), option=orjson.OPT_SORT_KEYS)
        digest = _sha256(body)
        download = Download(None, digest, len(body), "application/json", Validators(), DESK_URL, body=body)
        resource = Resource(DESK_RESOURCE, DESK_URL, "json")
        details = {"decision": decision.id, "race": decision.race, "action": decision.action}
        await self._recorder.record(
            resource, state, download, "json", details, told=verdict.facts, settles=settled
        )
        book.apply(settled, verdict.fields)
        self._log.info("desk decision applied", decision=decision.id, outcome=verdict.outcome)


def holds(config: ApSourceConfig, office: str, state: str, race: str) -> bool:
    """Whether the source holds AP's calls of this race for the desk."""
    return config.calls_for(office, state, race) == "hold"


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
