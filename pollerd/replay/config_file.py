"""A ready configuration for a replay: each recorded source as it was configured, pointed at the
replay's ports, its pace compressed by the replay's speed, its secrets replaced by the replay's
(which accepts any key)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pollerd.core.durations import format_duration, parse_duration
from pollerd.record.archive import Recording

REPLAY_KEY = "replay"  # the replay accepts any key; the config needs one
_PACE = ("interval", "discovery_interval", "jitter")
_FASTEST = 0.05  # seconds: a compressed interval is never shorter
_LOCAL_ONLY = ["127.0.0.1"]
_NOT_REPLAYED = ("record", "allowed_hosts", "fallback_urls", "sinks", "api_key_file", "auth_token_file")


def replay_sources(
    recordings: list[Recording], local_url: Callable[[str], str], speed: float
) -> list[dict[str, Any]]:
    """Each recorded source's table, pointed at the replay."""
    return [_source(r, local_url, speed) for r in recordings]


def _source(recording: Recording, local_url: Callable[[str], str], speed: float) -> dict[str, Any]:
    table = {k: v for k, v in recording.info.config.items() if k not in _NOT_REPLAYED}
    table = _pointed(table, local_url)
    for key in _PACE:
        if isinstance(table.get(key), str):
            table[key] = format_duration(
                max(parse_duration(table[key]) / speed, _FASTEST if key != "jitter" else 0)
            )
    kind = recording.info.kind
    if kind == "ap":
        table["api_key"] = REPLAY_KEY
        if isinstance(table.get("quota_per_minute"), int):
            table["quota_per_minute"] = int(table["quota_per_minute"] * speed)
    if kind == "democracyclub":
        table["auth_token"] = REPLAY_KEY
    table["allowed_hosts"] = _LOCAL_ONLY
    table["sinks"] = ["console"]
    return {"name": recording.info.name, "kind": kind, **table}


def _pointed(value: Any, local_url: Callable[[str], str]) -> Any:
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return local_url(value)
    if isinstance(value, dict):
        return {k: _pointed(v, local_url) for k, v in value.items()}
    if isinstance(value, list):
        return [_pointed(v, local_url) for v in value]
    return value


def write_config(path: Path, sources: list[dict[str, Any]], state_dir: str = "state/replay") -> None:
    """Write a configuration that runs these sources into one console sink."""
    lines = [
        "# Written by `pollerd replay --config`: the recorded sources, pointed at the replay.",
        "# Run it with `pollerd run -c` this file while the replay serves.",
        "",
        "[daemon]",
        f"state_dir = {_value(state_dir)}",
        'metrics = "off"',
        "",
    ]
    for source in sources:
        lines += ["[[sources]]", *(f"{k} = {_value(v)}" for k, v in source.items()), ""]
    lines += [
        "[[sinks]]",
        'name = "console"',
        'kind = "stdout"',
        'format = "text"',
        'events = ["versions", "election"]',
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def _value(value: Any) -> str:
    """A TOML value (inline tables for tables: every value on its key's line)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {type(value).__name__}")


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)
