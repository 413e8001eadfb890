"""What a new config file changes: per table family, the names whose tables must go (removed or
changed) and be built (added or changed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pollerd.config import Config


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
