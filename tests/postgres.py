"""A throwaway PostgreSQL cluster for the tests: ``initdb`` and ``pg_ctl`` from the Debian
``postgresql`` package, on a free port and a socket in a temporary folder, run as the ``postgres``
user when the tests run as root. Each test gets a database of its own."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

SUPERUSER = "pollerd"


def server_binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl`` (Debian keeps them out of PATH), or None."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[4]))
    return versions[-1].parent if versions else None


class Cluster:
    """One running cluster; ``database(name)`` makes a fresh database and returns its URL."""

    def __init__(self, binaries: Path, root: Path, settings: tuple[str, ...] = ()) -> None:
        self._bin = binaries
        self._settings = "".join(f" -c {setting}" for setting in settings)  # name=value
        self.data = root / "data"
        self.port = _free_port()
        self._made = 0
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            os.chown(root, pwd.getpwnam(self._user).pw_uid, -1)

    def start(self) -> None:
        """``initdb`` (trust auth on loopback), then ``pg_ctl start``, waiting until it accepts."""
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync")
        self.restart()

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop`` (``immediate``: as a crash would)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        """Start the cluster (again, after ``stop``: on the same port)."""
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off{self._settings}"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.data / "log"), "-w", "start")

    def url(self, database: str = "postgres") -> str:
        """The libpq URL of a database of this cluster."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new, empty database; its URL."""
        self._made += 1
        name = f"test_{self._made}"
        self._run(
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            "postgres",
            "-q",
            "-c",
            f"CREATE DATABASE {name}",
        )
        return self.url(name)

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        executable = self._bin / tool if (self._bin / tool).exists() else Path(shutil.which(tool) or tool)
        command = [str(executable), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        subprocess.run(command, check=check, capture_output=True, cwd="/")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cluster(settings: tuple[str, ...] = ()) -> Iterator[Cluster | None]:
    """A started cluster for a test session (None when PostgreSQL is not installed); ``settings``:
    server settings as ``name=value``."""
    binaries = server_binaries()
    if binaries is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="pollerd-pg-", ignore_cleanup_errors=True) as root:
        running = Cluster(binaries, Path(root), settings)
        running.start()
        try:
            yield running
        finally:
            running.stop("immediate")
