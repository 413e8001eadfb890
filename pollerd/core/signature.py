"""Webhook signatures: HMAC-SHA256 over ``<timestamp>.<body>``, sent as
``X-Pollerd-Signature: t=<unix seconds>,v1=<hex>``. A receiver recomputes it with the shared
secret and rejects old timestamps (replays). See the README for a receiver's few lines."""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Pollerd-Signature"
TOLERANCE = 300.0


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for ``body``."""
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


def verify(secret: str, header: str, body: bytes, tolerance: float = TOLERANCE) -> bool:
    """Whether ``header`` signs ``body`` with ``secret``, made within ``tolerance`` seconds."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        moment = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - moment) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields.get("v1", ""))
