"""What the commands tell people and scripts: exit codes for cron, words instead of ``None``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pollerd.cli import main
from tests.conftest import Upstream, config_file
from tests.test_single_writer import cli


async def test_once_exits_1_while_a_resource_is_failing_even_in_backoff(
    upstream: Upstream, tmp_path: Path
) -> None:
    """The second `once` only waits out the 404's backoff, and still says the source fails."""
    upstream.host.add("/missing.json")  # declared, never published: 404
    good = upstream.file("/good.json", b"{}")
    config = config_file(tmp_path, [good, upstream.url("/missing.json")], source='backoff_base = "10m"')
    assert await cli("once", "-c", str(config)) == 1
    assert await cli("once", "-c", str(config)) == 1
    healthy = config_file(tmp_path, [good])
    assert await cli("once", "-c", str(healthy)) == 0


async def test_status_speaks_in_words(
    upstream: Upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No `None`, no '1 sources', no '... of dead deliveries'."""
    upstream.host.add("/missing.json")
    config = config_file(tmp_path, [upstream.file("/a.json", b"{}"), upstream.url("/missing.json")])
    await cli("once", "-c", str(config))
    capsys.readouterr()
    assert await cli("status", "-c", str(config)) == 0
    assert await cli("redeliver", "-c", str(config), "--dead") == 1
    assert main(["check-config", str(config)]) == 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "None" not in text
    assert "source files: 2 resources" in text
    assert "sink out: 0 deliveries pending" in text
    assert "1 sources" not in text and "(1 source, 1 sink)" in text
    assert "of dead deliveries" not in text and "nothing to redeliver" in text
    assert "failing (1 failure in a row" in text


def test_status_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """`pollerd status | true` (the reader gone before the first line): no traceback."""
    config = config_file(tmp_path, ["http://127.0.0.1:9/a.json"])
    for command in ("status", "deliveries"):
        result = subprocess.run(
            ["bash", "-c", f"{sys.executable} -m pollerd {command} -c {config} | true"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert result.stderr == "", result.stderr
