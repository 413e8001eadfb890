"""What ships around the code: the unit, the image, the dashboard and the alert rules."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from pollerd.config import parse_config
from pollerd.daemon.app import Daemon
from tests.conftest import Upstream, config_file, require, wait_for

ROOT = Path(__file__).resolve().parent.parent
BUILTIN = {"up"}  # series Prometheus makes itself
_METRIC = re.compile(r"\b(pollerd_[a-z_]+|up)\b")
_SUFFIXES = ("_bucket", "_sum", "_count")


def exported_names(tmp_path: Path) -> set[str]:
    """Every metric family name on /metrics of a daemon with one source of each kind of sink."""
    config = parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
            "sources": [{"name": "s", "kind": "http", "urls": ["http://127.0.0.1:9/a.json"], "sinks": ["k"]}],
            "sinks": [{"name": "k", "kind": "stdout"}],
        }
    )
    daemon = Daemon(config)
    daemon.metrics.initialise(["s"], ["k"])
    text = generate_latest(daemon.metrics.registry).decode()
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def used_names(text: str) -> set[str]:
    """Metric names an expression file uses (histogram series mapped to their family)."""
    names = set()
    for name in _METRIC.findall(text):
        for suffix in _SUFFIXES:
            if name.endswith(suffix):
                name = name.removesuffix(suffix)
        names.add(name)
    return names


def test_every_metric_in_the_dashboard_and_rules_is_exported(tmp_path: Path) -> None:
    """A renamed metric must not leave a blank panel or a silent alert behind."""
    exported = exported_names(tmp_path) | BUILTIN
    dashboard = json.loads((ROOT / "config/grafana/pollerd-dashboard.json").read_text())
    expressions = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    rules = (ROOT / "config/prometheus/pollerd-alerts.yml").read_text()
    for where, text in (("dashboard", expressions), ("alert rules", rules)):
        names = {
            n.removesuffix("_total") if n.removesuffix("_total") in exported else n for n in used_names(text)
        }
        assert names, where
        assert names <= exported, f"{where}: {sorted(names - exported)}"


def test_the_alert_rules_pass_promtool() -> None:
    """promtool check rules."""
    require(shutil.which("promtool") is not None, "promtool")
    result = subprocess.run(
        ["promtool", "check", "rules", str(ROOT / "config/prometheus/pollerd-alerts.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_verifies_and_scores_2_or_better(tmp_path: Path) -> None:
    """systemd-analyze verify passes (with the real executable) and security scores <= 2.0."""
    require(shutil.which("systemd-analyze") is not None, "systemd-analyze")
    unit = tmp_path / "pollerd.service"
    executable = shutil.which("pollerd") or str(Path(sys.executable).parent / "pollerd")
    unit.write_text(
        (ROOT / "systemd/pollerd.service").read_text().replace("/usr/local/bin/pollerd", executable)
    )
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert verify.returncode == 0, verify.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    score = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
    assert score is not None, security.stdout[-500:]
    assert float(score.group(1)) <= 2.0


def test_the_unit_as_shipped_verifies_after_the_readme_install() -> None:
    """The README's install puts the command at /usr/local/bin/pollerd, where the unit runs it
    (.ci/run does that install); then `systemd-analyze verify` passes on the unit as shipped."""
    require(shutil.which("systemd-analyze") is not None, "systemd-analyze")
    require(Path("/usr/local/bin/pollerd").exists(), "/usr/local/bin/pollerd (the README's install)")
    assert "ln -sf /opt/pollerd/bin/pollerd /usr/local/bin/pollerd" in (ROOT / "README.md").read_text()
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(ROOT / "systemd/pollerd.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr


def test_the_wheel_carries_the_demo_config_and_runs_outside_the_repository(tmp_path: Path) -> None:
    """Installed from a wheel, away from the checkout, the demo finds its configuration; the
    wheel has the LICENSE and the project's URLs."""
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("pollerd-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "pollerd/sim/data/demo.toml" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert "Project-URL: Repository, " in metadata and "Project-URL: Issues, " in metadata
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pollerd.cli import DEMO_CONFIG, main; "
            "print(DEMO_CONFIG); sys.exit(main(['check-config', str(DEMO_CONFIG)]))",
        ],
        cwd=elsewhere,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(str(tmp_path / "site")), check.stdout


def test_a_busy_simulator_port_is_one_clear_line(tmp_path: Path) -> None:
    """`pollerd sim` (and `demo`) with the port taken: exit 1 and one line, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args in (
            ["sim", "--port", str(port)],
            ["sim", "--port", "0", "--ap-port", str(port), "--dc-port", "0"],
        ):
            result = subprocess.run(
                [sys.executable, "-m", "pollerd", *args],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            assert result.returncode == 1
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and "address already in use" in lines[0], result.stderr


def dockerfile_json(instruction: str) -> list[str]:
    """The JSON argv of a Dockerfile instruction (CMD, ENTRYPOINT, HEALTHCHECK ... CMD)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith(instruction))
    argv: list[str] = json.loads(line[line.index("[") :])
    return argv


async def test_the_image_command_lines_work_outside_docker(upstream: Upstream, tmp_path: Path) -> None:
    """ENTRYPOINT + CMD runs the daemon; the HEALTHCHECK command says healthy; STOPSIGNAL stops
    it cleanly. The config path of the image is swapped for a temporary one."""
    upstream.file("/a.json", b"{}")
    config = config_file(tmp_path, [upstream.url("/a.json")], daemon=f'metrics = "0.0.0.0:{_free_port()}"')

    def local(argv: list[str]) -> list[str]:
        argv = [str(config) if a == "/etc/pollerd/pollerd.toml" else a for a in argv]
        return [sys.executable, "-m", "pollerd", *argv[1:]] if argv[0] == "pollerd" else argv

    entry = dockerfile_json("ENTRYPOINT") + dockerfile_json("CMD")
    health = dockerfile_json("HEALTHCHECK")
    assert entry[0] == "pollerd" and health[0] == "pollerd"
    assert "STOPSIGNAL SIGTERM" in (ROOT / "Dockerfile").read_text()
    process = await asyncio.create_subprocess_exec(
        *local(entry), stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL
    )
    try:

        async def healthy() -> bool:
            check = await asyncio.create_subprocess_exec(
                *local(health), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
            )
            return await check.wait() == 0

        for _ in range(100):
            if await healthy():
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail("the HEALTHCHECK command never passed")
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0
    await wait_for(lambda: (tmp_path / "out" / "files" / "a.json" / "latest.json").exists())


def test_healthcheck_fails_when_nothing_answers(tmp_path: Path) -> None:
    """No daemon: exit 1, and why."""
    config = tmp_path / "pollerd.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path}"\nmetrics = "127.0.0.1:{_free_port()}"\n'
        '[[sources]]\nname = "s"\nkind = "http"\nurls = ["http://127.0.0.1:9/a"]\n'
        'sinks = ["k"]\n[[sinks]]\nname = "k"\nkind = "stdout"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "pollerd", "healthcheck", "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1 and "cannot reach" in result.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_daemon_without_postgresql_or_an_object_store_loads_neither(tmp_path: Path) -> None:
    """psycopg and aiobotocore (about 20 MB at start) are imported only where a sink or the state
    needs them: a SQLite daemon with a filesystem sink, opened and closed, has loaded neither."""
    script = f"""
import asyncio, sys
from pollerd.cli import main
from pollerd.config import parse_config
from pollerd.daemon.app import Daemon
config = parse_config({{
    "daemon": {{"state_dir": {str(tmp_path / "state")!r}, "metrics": "off"}},
    "sources": [{{"name": "s", "kind": "http", "urls": ["http://127.0.0.1:9/a.json"], "sinks": ["out"]}}],
    "sinks": [{{"name": "out", "kind": "filesystem", "root": {str(tmp_path / "out")!r}}}],
}})
async def run():
    daemon = Daemon(config)
    await daemon.open()
    await daemon.close()
asyncio.run(run())
print(sorted(m for m in ("psycopg", "psycopg_pool", "aiobotocore", "botocore") if m in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
