"""Reloading the config file into a running daemon (SIGHUP): what the new file changes (per table
family, the names whose tables must go, removed or changed, and be built, added or changed), and
applying it with state and pending deliveries kept."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import structlog

from pollerd.config import Config, ConfigError, SourceConfig, load_config
from pollerd.core.masking import MASKED
from pollerd.daemon.poll_runs import PollRuns
from pollerd.daemon.systemd import Notifier
from pollerd.delivery.deliverer import Deliverer
from pollerd.polling.poller import Poller
from pollerd.record.answer_log import Recordings
from pollerd.sinks import Sink, build_sink

if TYPE_CHECKING:  # psycopg: only with [daemon] database
    from pollerd.daemon.shared_work import SharedWork


class Reloadable(Protocol):
    """What a reload changes in the running daemon (the daemon is one; this module does not
    import it, so the two never import each other)."""

    config: Config
    shared: SharedWork | None
    pollers: dict[str, Poller]
    runs: PollRuns
    recordings: Recordings
    notifier: Notifier
    deliverer: Deliverer
    sinks: dict[str, Sink]
    user_agent: str

    async def poller(self, config: SourceConfig) -> Poller:
        """The source's poller, its stored state loaded."""
        ...

    def plan_budgets(self) -> None:
        """Share the request budgets among the pollers again."""
        ...

    def initialise_metrics(self) -> None:
        """Every source's and sink's series, at zero where new."""
        ...

    def summary(self) -> str:
        """One line of what runs (for systemd's STATUS)."""
        ...


@dataclass(frozen=True)
class TableDiff:
    """Names whose tables must go (removed or changed) and be built (added or changed)."""

    gone: set[str]
    fresh: set[str]

    @staticmethod
    def between(old: Mapping[str, object], new: Mapping[str, object]) -> TableDiff:
        """The diff of two tables by name."""
        changed = {name for name in old.keys() & new.keys() if old[name] != new[name]}
        return TableDiff(gone=(old.keys() - new.keys()) | changed, fresh=(new.keys() - old.keys()) | changed)

    def words(self, family: str) -> dict[str, list[str]]:
        """For the log line: what was added, removed and changed."""
        return {
            f"{family}_added": sorted(self.fresh - self.gone),
            f"{family}_removed": sorted(self.gone - self.fresh),
            f"{family}_changed": sorted(self.gone & self.fresh),
        }


@dataclass(frozen=True)
class ConfigDiff:
    """What applying ``new`` over ``old`` changes."""

    sources: TableDiff
    sinks: TableDiff

    @staticmethod
    def between(old: Config, new: Config) -> ConfigDiff:
        """The diff of two configs (``[daemon]`` is not applied until a restart)."""
        return ConfigDiff(
            sources=TableDiff.between({s.name: s for s in old.sources}, {s.name: s for s in new.sources}),
            sinks=TableDiff.between({s.name: s for s in old.sinks}, {s.name: s for s in new.sinks}),
        )


class Reloader:
    """Applies a new config file to a running daemon, one reload at a time (two SIGHUPs in a row
    apply in turn, each against what the one before left)."""

    def __init__(self, daemon: Reloadable) -> None:
        self._daemon = daemon
        self._lock = asyncio.Lock()
        self._log = structlog.get_logger("pollerd")

    async def reload(self, path: Path) -> bool:
        """Re-read the config file and apply it: sources and sinks added, removed or changed,
        state and pending deliveries kept. An invalid file changes nothing (and says why).

        Reloads run one at a time (two SIGHUPs in a row apply in turn, each against what the
        one before left)."""
        async with self._lock:
            try:
                return await self._reload(path)
            except Exception as exc:
                self._log.exception(
                    "reload failed part-way; restart pollerd to apply the file", error=str(exc)
                )
                return False

    async def _reload(self, path: Path) -> bool:
        try:
            new = load_config(path)
        except ConfigError as exc:
            self._log.error("reload refused; running on the previous configuration", problems=exc.problems)
            self._daemon.notifier.send("STATUS=reload refused: " + "; ".join(exc.problems)[:200])
            return False
        if new.daemon != self._daemon.config.daemon:
            self._log.warning("[daemon] changes take effect at the next restart")
        diff = ConfigDiff.between(self._daemon.config, new)
        if self._daemon.shared is not None:  # the leases are made anew from the new file
            await self._daemon.shared.give_back("the configuration changed")
        for name in diff.sources.gone & set(self._daemon.pollers):
            await self._daemon.runs.unschedule(name, self._daemon.config.daemon.drain_grace)
            del self._daemon.pollers[name]
        await self._apply_sinks(diff.sinks, new)
        for config in new.sources:
            if config.name in diff.sources.fresh and self._daemon.shared is None:
                self._daemon.pollers[config.name] = await self._daemon.poller(config)
                self._daemon.runs.schedule(self._daemon.pollers[config.name])
        self._daemon.config = new.model_copy(update={"daemon": self._daemon.config.daemon})
        daemon = self._daemon.config.daemon
        await self._daemon.recordings.configure(daemon.record, daemon.state_dir, new.sources)
        if self._daemon.shared is not None:
            self._daemon.shared.configure()  # taken again at the next round of the lease keeper
        MASKED.use(new.secret_values())  # a secret this file added is masked from now on
        self._daemon.plan_budgets()
        self._daemon.initialise_metrics()
        self._log.info("reloaded", **diff.sources.words("sources"), **diff.sinks.words("sinks"))
        self._daemon.notifier.send(f"STATUS=reloaded: {self._daemon.summary()}")
        return True

    async def _apply_sinks(self, diff: TableDiff, new: Config) -> None:
        for name in diff.gone:
            await self._daemon.deliverer.remove_sink(name, self._daemon.config.daemon.drain_grace)
            await self._close_sink(name, self._daemon.sinks.pop(name))
        for config in new.sinks:
            if config.name in diff.fresh:
                sink = build_sink(config, self._daemon.config.daemon.state_dir, self._daemon.user_agent)
                self._daemon.sinks[config.name] = sink
                if self._daemon.shared is None:  # replicas: once its lease is held
                    self._daemon.deliverer.add_sink(config.name, sink, config)

    async def _close_sink(self, name: str, sink: Sink) -> None:
        try:
            await sink.close()
        except Exception as exc:  # a sink that cannot close must not stop the reload
            self._log.warning("could not close a removed sink", sink=name, error=str(exc))
