"""The sd_notify protocol: a datagram of ``KEY=value`` lines to the AF_UNIX socket systemd names
in ``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace). Without it (Docker, a
terminal) every call is a no-op."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable

import structlog


class Notifier:
    """Sends READY=1, STATUS=..., WATCHDOG=1, STOPPING=1 to the service manager."""

    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._socket: socket.socket | None = None
        self._warned = False
        if self._address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.setblocking(False)

    @property
    def enabled(self) -> bool:
        """Whether a service manager listens."""
        return self._socket is not None

    def send(self, *fields: str) -> bool:
        """One datagram with the given ``KEY=value`` fields; False if it could not be sent."""
        if self._socket is None:
            return False
        try:
            self._socket.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            if not self._warned:  # say it once: systemd may be restarting
                structlog.get_logger("pollerd.systemd").warning("sd_notify failed", error=str(exc))
                self._warned = True
            return False
        return True

    def close(self) -> None:
        """Close the socket."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval() -> float | None:
    """How often to send WATCHDOG=1 (half of ``$WATCHDOG_USEC``), or None when not asked to."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid.isdigit() and int(pid) != os.getpid()):
        return None
    return int(usec) / 1e6 / 2


async def watchdog(
    interval: float, notifier: Notifier, problem: Callable[[], str | None], summary: Callable[[], str]
) -> None:
    """WATCHDOG=1 every ``interval`` seconds, only while ``problem`` finds none (polls make progress)."""
    log = structlog.get_logger("pollerd")
    withheld = False
    while True:
        await asyncio.sleep(interval)
        found = problem()
        if found is None:
            notifier.send("WATCHDOG=1", f"STATUS={summary()}")
            withheld = False
        elif not withheld:
            log.error("withholding the systemd watchdog", reason=found)
            notifier.send(f"STATUS=unhealthy: {found}")
            withheld = True
