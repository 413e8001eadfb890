"""Every configured secret masked in every form it travels in, wherever text leaves the process or
is stored: log lines, errors kept in the state and the outbox, the status page and its JSON.

A secret goes out as itself, URL-encoded (a Democracy Club token in a query string: ``dc%2B...``,
or ``dc%2b...``: the hex digits in either case), and base64-encoded (HTTP Basic credentials); each
form is masked, in text and in bytes (a recorded body that echoes a key). The set of secrets is the
process's own, replaced whole at start and at every reload, so a secret added by a reload is
masked from that moment on.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
_SHORTEST = 4  # shorter values would mask ordinary words
_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def forms(secret: str) -> set[str]:
    """The ways ``secret`` can appear in text: raw, URL-encoded, base64."""
    raw = secret.encode()
    found = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        quote(secret),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
    }
    found |= {f.rstrip("=") for f in found}
    found |= {_ESCAPE.sub(lambda escape: escape.group().lower(), f) for f in found}
    return {f for f in found if len(f) >= _SHORTEST}


class Masker:
    """Replaces every known form of every secret in a text (longest first)."""

    def __init__(self) -> None:
        self._forms: list[str] = []
        self._byte_forms: list[bytes] = []

    def use(self, secrets: Iterable[str]) -> None:
        """Mask these secrets from now on (replacing the previous set)."""
        found = {form for secret in secrets if secret for form in forms(secret)}
        self._forms = sorted(found, key=len, reverse=True)
        self._byte_forms = [form.encode() for form in self._forms]

    def bytes(self, data: bytes) -> bytes:
        """``data`` with every form of every secret masked (the same bytes when none is in it)."""
        for form in self._byte_forms:
            if form in data:
                data = data.replace(form, MASK.encode())
        return data

    def __call__(self, text: str) -> str:
        """``text`` with every form of every secret masked."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def optional(self, text: str | None) -> str | None:
        """As ``__call__``, letting None through."""
        return None if text is None else self(text)


MASKED = Masker()  # the process's one set of secrets
