"""Names from upstream become safe path components; secrets never reach a log line."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from pollerd.core.names import name_from_url, safe_name
from pollerd.telemetry.logs import configure_logging


@pytest.mark.parametrize(
    "raw", ["../../etc/passwd", "..", ".hidden", "a/b", "/abs", "x\x00y", "tab\there", "ä-ü", "", "-rf"]
)
def test_safe_name_is_one_harmless_component(raw: str) -> None:
    """No separators, no leading dot or dash, no control characters, never empty."""
    name = safe_name(raw)
    assert name and "/" not in name and ".." not in name
    assert not name.startswith((".", "-"))
    assert all(c.isalnum() or c in "._-" for c in name)


def test_safe_names_do_not_collide() -> None:
    """Two different upstream names stay different after cleaning."""
    assert safe_name("a/b") != safe_name("a_b")
    assert safe_name("results.json") == "results.json"


def test_name_from_url_uses_the_last_segment() -> None:
    """The resource id is the file name of the URL."""
    assert name_from_url("https://x.example/v4/ogd/sd-t-17.02-NRW2023-parteien.json") == (
        "sd-t-17.02-NRW2023-parteien.json"
    )
    assert "/" not in name_from_url("http://x/a/..%2F..%2Fescape.json")


def test_secrets_are_masked_in_every_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A secret value is replaced wherever it appears: message, fields, nested values."""
    configure_logging("json", "info", ["hunter2-token"])
    log = structlog.get_logger("test")
    log.warning(
        "failed with hunter2-token",
        url="http://x/?key=hunter2-token",
        nested={"headers": ["Bearer hunter2-token"]},
    )
    logging.getLogger("aiohttp.client").warning("stdlib says hunter2-token")
    err = capsys.readouterr().err
    assert "hunter2" not in err
    lines = [json.loads(line) for line in err.splitlines()]
    assert lines[0]["url"] == "http://x/?key=***"
    assert lines[1]["event"] == "stdlib says ***"
