"""``pollerd healthcheck``: ask a running daemon's ``/healthz`` (for Docker's HEALTHCHECK)."""

from __future__ import annotations

import urllib.error
import urllib.request

from pollerd.config import Config


def check_health(config: Config, timeout: float) -> tuple[bool, str]:
    """(healthy, what /healthz said); an address bound to all interfaces is asked on loopback."""
    address = config.daemon.metrics
    if not address:
        return False, "daemon.metrics is off: there is no /healthz to ask"
    host, _, port = address.rpartition(":")
    if host in ("0.0.0.0", "", "[::]", "::"):  # noqa: S104  # a bind address, not one we listen on
        host = "127.0.0.1"
    url = f"http://{host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # http(s) only
            return True, response.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return False, f"{exc.code}: {exc.read().decode().strip()}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"cannot reach {url}: {exc}"
