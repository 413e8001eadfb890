"""``pollerd healthcheck``: ask a running daemon's ``/healthz`` and ``/readyz`` (Docker's
HEALTHCHECK): healthy while the daemon is alive and making progress (``/healthz``) and every
source has known what to watch and had an answer since the start, past ``startup_grace``
(``/readyz``). A source whose API has never answered keeps the container unhealthy, with why."""

from __future__ import annotations

import urllib.error
import urllib.request

from pollerd.config import Config


def check_health(config: Config, timeout: float) -> tuple[bool, str]:
    """(healthy, what the daemon said); an address bound to all interfaces is asked on loopback."""
    address = config.daemon.metrics
    if not address:
        return False, "daemon.metrics is off: there is no /healthz to ask"
    host, _, port = address.rpartition(":")
    if host in ("0.0.0.0", "", "[::]", "::"):  # noqa: S104  # a bind address, not one we listen on
        host = "127.0.0.1"
    answers = []
    for endpoint in ("healthz", "readyz"):
        healthy, said = _ask(f"http://{host}:{port}/{endpoint}", timeout)
        if not healthy:
            return False, f"/{endpoint} {said}"
        answers.append(said)
    return True, answers[0]


def _ask(url: str, timeout: float) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  # http only
            return True, response.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return False, f"{exc.code}: {exc.read().decode().strip()}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"cannot reach {url}: {exc}"
