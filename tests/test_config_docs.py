"""The shipped configuration files cannot drift from the code that reads them."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from pollerd.cli import main
from pollerd.config import (
    Config,
    ConfigError,
    DaemonConfig,
    FsoSelector,
    ResourceConfig,
    SinkConfig,
    SourceConfig,
    load_config,
    parse_config,
)
from pollerd.config.ap import ApQuery
from pollerd.config.base import SinkBase, SourceBase
from pollerd.config.dc import DcElections
from tests.test_packaging import ROOT

EXAMPLE = ROOT / "config" / "example.toml"
NESTED: dict[str, type[BaseModel]] = {
    "resources": ResourceConfig,
    "select": FsoSelector,
    "queries": ApQuery,
    "elections": DcElections,
}
_COMMENTED_KEY = re.compile(r"^\s*#\s*([A-Za-z_]+)\s*=", re.MULTILINE)


def keys_of(model: type[BaseModel]) -> set[str]:
    """The keys a table of this model takes, as written in TOML (AP's spellings included)."""
    return {field.alias or name for name, field in model.model_fields.items()}


def kinds(union: Any) -> dict[str, type[BaseModel]]:
    """kind -> model, for a discriminated union of tables."""
    return {
        get_args(model.model_fields["kind"].annotation)[0]: model for model in get_args(get_args(union)[0])
    }


def shown(tables: list[dict[str, Any]]) -> Iterator[tuple[type[BaseModel], set[str]]]:
    """(model, keys written) for each table of a list and its nested tables."""
    for table in tables:
        for key, value in table.items():
            nested = NESTED.get(key)
            if nested is not None:
                rows = value if isinstance(value, list) else [value]
                yield nested, {k for row in rows for k in row}


def test_the_example_shows_every_key_of_every_kind() -> None:
    """A key the code reads and example.toml neither sets nor shows commented out fails this."""
    text = EXAMPLE.read_text()
    raw = tomllib.loads(text)
    commented = set(_COMMENTED_KEY.findall(text))
    written: dict[type[BaseModel], set[str]] = {DaemonConfig: set(raw.get("daemon", {}))}
    for table, union in (("sources", SourceConfig), ("sinks", SinkConfig)):
        models = kinds(union)
        for row in raw[table]:
            written.setdefault(models[row["kind"]], set()).update(row)
        for model, keys in shown(raw[table]):
            written.setdefault(model, set()).update(keys)
        missing_kinds = set(models) - {row["kind"] for row in raw[table]}
        assert not missing_kinds, f"{table}: no example of kind {sorted(missing_kinds)}"
    # the keys every source (sink) kind shares need showing once; each kind's own, in its table
    families: list[tuple[type[BaseModel], Any]] = [(SourceBase, SourceConfig), (SinkBase, SinkConfig)]
    for family, union in families:
        written[family] = set().union(*(written.get(m, set()) for m in kinds(union).values()))
    everything: list[type[BaseModel]] = [
        DaemonConfig,
        SourceBase,
        SinkBase,
        *NESTED.values(),
        *kinds(SourceConfig).values(),
        *kinds(SinkConfig).values(),
    ]
    missing = {}
    for model in everything:
        shared = next(
            (base for base in (SourceBase, SinkBase) if issubclass(model, base) and model is not base), None
        )
        own = keys_of(model) - (keys_of(shared) if shared else set())
        missing[model.__name__] = sorted(own - written.get(model, set()) - commented)
    assert {name: keys for name, keys in missing.items() if keys} == {}


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_config_checks_clean(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 0 as shipped, with no environment; no schedule that cannot fit its budget."""
    for name in (
        "RESULTS_TOKEN",
        "AP_API_KEY",
        "DC_API_KEY",
        "WEBHOOK_SECRET",
        "CMS_TOKEN",
        "SLACK_WEBHOOK_URL",
        "RESULTS_DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "does not fit" not in out


def test_missing_environment_is_a_problem_for_run_and_a_note_for_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`run` refuses a file whose ${VAR} is not set; check-config only notes it."""
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
        load_config(EXAMPLE)
    missing: list[str] = []
    assert isinstance(load_config(EXAMPLE, missing), Config)
    assert any("WEBHOOK_SECRET" in line for line in missing)


def minimal(**source: Any) -> dict[str, Any]:
    """A raw config with one http source (``source`` keys added) and one stdout sink."""
    return {
        "sources": [
            {"name": "s", "kind": "http", "urls": ["http://127.0.0.1:9/a"], "sinks": ["k"], **source}
        ],
        "sinks": [{"name": "k", "kind": "stdout"}],
    }


def test_a_bare_number_is_not_a_duration() -> None:
    """`interval = 10` is refused with the fix, not silently taken as seconds."""
    with pytest.raises(ConfigError) as raised:
        parse_config(minimal(interval=10))
    assert raised.value.problems == [
        'sources[0].interval: 10 has no unit; write "10s" for seconds (or "500ms", "2m", "1h")'
    ]


def test_an_unknown_sink_is_reported_among_the_other_problems() -> None:
    """A bad value elsewhere does not hide the sink that does not exist."""
    with pytest.raises(ConfigError) as raised:
        parse_config(minimal(interval="soon", sinks=["k", "nowhere"]))
    assert sorted(raised.value.problems) == [
        "sources[0].interval: 'soon' is not a duration; write it like '500ms', '30s', '2m' or '1h'",
        "sources[0].sinks[1]: no sink is called 'nowhere'",
    ]


def test_the_compose_file_runs_the_shipped_replica_config() -> None:
    """compose.replicas.yaml mounts config/replicas.toml, which shares its state on the compose
    file's postgres service, with the password from the environment, never from a file."""
    compose = (ROOT / "compose.replicas.yaml").read_text()
    assert "./config/replicas.toml:/etc/pollerd/pollerd.toml:ro" in compose
    assert compose.count("<<: *pollerd") == 3 and "PGPASSWORD:" in compose
    config = load_config(ROOT / "config" / "replicas.toml")
    assert config.daemon.database is not None
    assert config.daemon.database.get_secret_value().startswith("postgresql://pollerd@postgres:5432/")
    assert ":" not in config.daemon.database.get_secret_value().split("@")[0].removeprefix("postgresql://")
