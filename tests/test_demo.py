"""The README's main command: the demo runs, prints events, writes ./out, and summarises."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_prints_changes_and_writes_out(tmp_path: Path) -> None:
    """`pollerd demo` for a few seconds: JSON lines on stdout, versions under ./out, a summary."""
    port = free_port()
    text = (ROOT / "config" / "demo.toml").read_text()
    text = text.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("127.0.0.1:9108", "off")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "demo.toml").write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "pollerd", "demo", "--port", str(port), "--duration", "9"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    resources = {e["resource"] for e in events}
    assert resources == {"results.json", "turnout.json", "live.json"}
    assert len(events) >= 5
    for event in events:
        folder = tmp_path / "out" / "files" / event["resource"]
        assert any(p.name.endswith(f"-{event['sha256'][:8]}.json") for p in folder.iterdir())
    assert "demo: " in result.stderr and "changes seen" in result.stderr
