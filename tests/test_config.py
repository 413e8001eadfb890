"""Configuration: the public keys, durations, secrets, and errors reported by key path."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pollerd.cli import DEMO_CONFIG, main
from pollerd.config import ConfigError, load_config, parse_config
from pollerd.core.durations import parse_duration, parse_size

ROOT = Path(__file__).resolve().parent.parent


def minimal(**source: Any) -> dict[str, Any]:
    """A valid raw config with one http source and one stdout sink."""
    return {
        "sources": [
            {
                "name": "files",
                "kind": "http",
                "urls": ["http://127.0.0.1:8000/a.json"],
                "sinks": ["console"],
                **source,
            }
        ],
        "sinks": [{"name": "console", "kind": "stdout"}],
    }


def problems(raw: dict[str, Any]) -> list[str]:
    """The problems parse_config reports."""
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("30s", 30), ("2m", 120), ("1h", 3600), ("1.5s", 1.5)]
)
def test_durations(text: str, seconds: float) -> None:
    """Durations are written with a unit."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "s", "2 minutes", "-1s", ""])
def test_bad_durations(text: str) -> None:
    """A duration without a known unit is refused."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_sizes() -> None:
    """Sizes accept plain bytes and units."""
    assert parse_size(1000) == 1000
    assert parse_size("2MiB") == 2 * 1024 * 1024
    assert parse_size("50MB") == 50_000_000


def test_example_and_demo_configs_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped configs load (the example's token comes from the environment)."""
    monkeypatch.setenv("RESULTS_TOKEN", "t0ken")
    monkeypatch.setenv("AP_API_KEY", "k3y")
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("DC_API_KEY", "dc-k3y")
    monkeypatch.setenv("CMS_TOKEN", "cms-t0ken")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.example/services/T0/B0/x")
    monkeypatch.setenv("RESULTS_DATABASE_URL", "postgresql://results@db.internal/results")
    for name in ("example.toml", "fso-2023.toml", "ap-2026.toml", "democracyclub-sandbox.toml"):
        load_config(ROOT / "config" / name)
    load_config(DEMO_CONFIG)


def test_errors_carry_key_paths() -> None:
    """Every error names its key path, and all errors are reported at once."""
    raw = minimal()
    raw["sources"].append(
        {
            "name": "more",
            "kind": "http",
            "urls": ["ftp://x"],
            "interval": "10",
            "sinks": ["nowhere"],
            "intervall": "5s",
        }
    )
    found = problems(raw)
    assert "sources[1].urls[0]: not an http(s) URL (its scheme is 'ftp', its host 'x')" in found
    assert any(p.startswith("sources[1].interval: ") and "duration" in p for p in found)
    assert "sources[1].intervall: unknown key (check its spelling)" in found


def test_reference_errors_are_reported() -> None:
    """Duplicate names and sinks that do not exist are errors."""
    raw = minimal()
    raw["sources"].append({**raw["sources"][0], "sinks": ["nowhere"]})
    raw["sinks"].append({"name": "console", "kind": "stdout"})
    found = problems(raw)
    assert "sources[1].name: 'files' is used twice" in found
    assert "sinks[1].name: 'console' is used twice" in found
    assert "sources[1].sinks[0]: no sink is called 'nowhere'" in found


def test_unknown_kind_is_refused() -> None:
    """A kind that does not exist is an error at the kind key."""
    raw = minimal()
    raw["sinks"][0]["kind"] = "carrier-pigeon"
    assert any(p.startswith("sinks[0]: ") or p.startswith("sinks[0].kind") for p in problems(raw))


def test_secrets_from_env_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Headers take ${ENV} and *_files; secrets never show in a repr."""
    monkeypatch.setenv("FEED_TOKEN", "s3cret-env")
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-file\n")
    config = parse_config(
        minimal(headers={"Authorization": "Bearer ${FEED_TOKEN}"}, header_files={"X-Key": str(token_file)})
    )
    source = config.sources[0]
    assert source.headers["Authorization"].get_secret_value() == "Bearer s3cret-env"
    assert source.headers["X-Key"].get_secret_value() == "s3cret-file"
    assert "s3cret" not in repr(config)
    assert set(config.secret_values()) == {"Bearer s3cret-env", "s3cret-file"}


def test_missing_secrets_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset variable or a missing file is named, without any secret value."""
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    found = problems(minimal(headers={"Authorization": "${NOT_SET_ANYWHERE}"}))
    assert found == ["sources[0].headers.Authorization: environment variable NOT_SET_ANYWHERE is not set"]
    found = problems(minimal(header_files={"X-Key": str(tmp_path / "missing")}))
    assert found[0].startswith("sources[0].header_files.X-Key: ")


def test_check_config_exits_2_with_key_paths(tmp_path: Path) -> None:
    """`pollerd check-config` prints each problem with its path and exits 2 (as a real process)."""
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[sources]]\nname = "a"\nkind = "http"\nurls = ["http://x/a"]\n'
        'interval = "soon"\nsinks = ["s"]\n[[sinks]]\nname = "s"\nkind = "stdout"\n'
        'colour = "red"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "pollerd", "check-config", str(bad)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "sources[0].interval: " in result.stderr
    assert "sinks[0].colour: unknown key" in result.stderr


def test_run_refuses_bad_config_before_doing_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pollerd run` with a bad file exits 2 and creates no state directory."""
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n[[sources]]\nname = "a"\n')
    assert main(["run", "-c", str(bad)]) == 2
    assert "sources[0].kind" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


def test_check_config_accepts_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    """A good file exits 0."""
    assert main(["check-config", str(DEMO_CONFIG)]) == 0
    assert "OK" in capsys.readouterr().out


def test_busy_metrics_port_is_a_clear_startup_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A port already in use: one line naming the key, exit 1, no traceback."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = tmp_path / "c.toml"
        config.write_text(
            f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n'
            f'metrics = "127.0.0.1:{port}"\n'
            '[[sources]]\nname = "a"\nkind = "http"\nurls = ["http://127.0.0.1:9/a"]\n'
            'sinks = ["s"]\n[[sinks]]\nname = "s"\nkind = "stdout"\n'
        )
        assert main(["run", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"daemon.metrics: cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err


def test_a_webhook_secret_can_come_from_a_file(tmp_path: Path) -> None:
    """secret_file is read at load; a missing one names its key path; one of the two is required."""
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    raw = minimal()
    raw["sinks"].append(
        {"name": "hook", "kind": "webhook", "url": "https://example.org/h", "secret_file": str(secret)}
    )
    config = parse_config(raw)
    assert "from-a-file" in config.secret_values()
    raw["sinks"][1]["secret_file"] = str(tmp_path / "missing")
    assert problems(raw)[0].startswith("sinks[1].secret_file: ")
    del raw["sinks"][1]["secret_file"]
    assert "a webhook is signed" in problems(raw)[0]
