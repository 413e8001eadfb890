"""Switching a source between its primary host and configured mirrors (``fallback_urls``)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from structlog.stdlib import BoundLogger

from pollerd.polling.tally import SourceTally


def rebase(url: str, mirror: str) -> str:
    """The URL on a mirror: the mirror's origin and path prefix, then the URL's path and query."""
    parts = urlsplit(url)
    base = urlsplit(mirror)
    path = base.path.rstrip("/") + parts.path
    return urlunsplit((base.scheme, base.netloc, path, parts.query, ""))


class HostFallback:
    """Counts consecutive failures at the active host and moves to the next mirror past a limit.

    The primary is never given up on: while a mirror is active the poller keeps probing the
    primary and calls ``back_to_primary`` when it answers again.
    """

    def __init__(self, mirrors: list[str], threshold: int, tally: SourceTally, log: BoundLogger) -> None:
        self._mirrors = mirrors
        self._threshold = threshold
        self._tally = tally
        self._log = log
        self._index = 0  # 0 is the primary, i is mirrors[i - 1]
        self._failures = 0

    @property
    def active(self) -> bool:
        """Whether a mirror is in use."""
        return self._index > 0

    def rewrite(self, url: str) -> str:
        """Where to fetch ``url`` now."""
        return url if self._index == 0 else rebase(url, self._mirrors[self._index - 1])

    def succeeded(self) -> None:
        """The active host answered."""
        self._failures = 0

    def failed(self) -> bool:
        """The active host failed; return True when this switched to another mirror."""
        self._failures += 1
        if not self._mirrors or self._failures < self._threshold:
            return False
        previous = self._index
        self._index = self._index % len(self._mirrors) + 1
        self._failures = 0
        if self._index == previous:
            return False
        self._log.warning(
            "host switch",
            direction="to_fallback",
            mirror=self._mirrors[self._index - 1],
            after_failures=self._threshold,
        )
        self._tally.host_switched("to_fallback", self.active)
        return True

    def back_to_primary(self) -> None:
        """The primary answers again: use it."""
        self._index = 0
        self._failures = 0
        self._log.warning("host switch", direction="to_primary")
        self._tally.host_switched("to_primary", self.active)
