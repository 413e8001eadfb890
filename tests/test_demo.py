"""The README's main command: the election-night demo runs, prints changes, writes ./out, sums up."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

from pollerd.cli import DEMO_CONFIG
from pollerd.sim.democracyclub import POSTCODES
from tests.conftest import versions_on_disk

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_plays_the_night_and_sums_up(tmp_path: Path) -> None:
    """`pollerd demo` at high speed: one line per change, each version under ./out, a summary
    that counts the URL switches of the night."""
    text = DEMO_CONFIG.read_text()
    for port in ("8000", "8001", "8002"):
        text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}")
    text = text.replace("127.0.0.1:9108", "off")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "demo.toml").write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "pollerd", "demo", "-c", "config/demo.toml", "--speed", "4000"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    per_resource = Counter(words[1].split("/", 1)[1] for words in lines if words[1].startswith("nrw"))
    assert {words[1] for words in lines if words[1].startswith("ap/")} == {"ap/senate", "ap/pennsylvania"}
    assert set(per_resource) == {
        "sd-t-17.02-NRW2023-parteien.json",
        "sd-t-17.02-NRW2023-wahlbeteiligung.json",
        "sd-t-17.02-NRW2023-kandidierende.json",
        "sd-t-17.02-SRW2023-kandidierende.json",
        "sd-t-17.02-NRW2023-gewaehlte.json",
    }
    for resource, count in per_resource.items():
        assert len(versions_on_disk(tmp_path / "out", "nrw2023", resource)) == count
    summary = re.search(
        r"demo: \d+s, FSO: (\d+) changes seen of (\d+) versions published, "
        r"(\d+) URL switches",
        result.stderr,
    )
    assert summary is not None, result.stderr[-2000:]
    changes, published, switches = map(int, summary.groups())
    assert changes == sum(per_resource.values()) and 0 < changes <= published
    assert re.search(r"demo: \d+s, AP: \d+ snapshot changes, \d+ requests", result.stderr)
    assert re.search(r"demo: \d+s, Democracy Club: \d+ changes, \d+ requests", result.stderr)
    assert {words[1] for words in lines if words[1].startswith("democracyclub/postcode-")} == {
        f"democracyclub/postcode-{code}" for code in POSTCODES
    }
    assert switches >= 4  # at least the move to the fallback host (the DAM move may come late)
    told = re.search(r"demo: \d+s, election events: (\d+) \((.*)\)", result.stderr)
    assert told is not None, result.stderr[-2000:]
    counts = {kind: int(n) for n, kind in (part.split() for part in told.group(2).split(", "))}
    assert int(told.group(1)) == sum(counts.values()) == len([w for w in lines if w[1] == "*"])
    assert {"race_called", "canton_complete", "result_final", "ballot_cancelled"} <= set(counts)
