"""Which hosts a source may talk to: discovered URLs and redirects are checked before any request."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

_REMEMBERED = 65_536  # URLs whose verdict is kept


class HostPolicy:
    """Exact host names and ``*.suffix`` patterns; ``None`` patterns allow every http(s) host.

    Ports are not part of the match: a host is trusted or it is not.
    """

    def __init__(self, patterns: Iterable[str] | None, also: Iterable[str] = ()) -> None:
        self._any = patterns is None
        names = {p.lower() for p in patterns or ()} | {h.lower() for h in also}
        self._exact = frozenset(n for n in names if not n.startswith("*."))
        self._suffixes = tuple(n[1:] for n in names if n.startswith("*."))
        self._judged: dict[str, str | None] = {}  # every request asks again: a verdict per URL

    def refusal(self, url: str) -> str | None:
        """Why the URL must not be fetched ("scheme" or "host"), or None when it may be."""
        if url not in self._judged:
            if len(self._judged) >= _REMEMBERED:
                self._judged.clear()
            self._judged[url] = self._judge(url)
        return self._judged[url]

    def _judge(self, url: str) -> str | None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "scheme"
        if self._any:
            return None
        host = parts.hostname.lower().rstrip(".")
        if host in self._exact or host.endswith(self._suffixes):
            return None
        return "host"


ANY_HOST = HostPolicy(None)
