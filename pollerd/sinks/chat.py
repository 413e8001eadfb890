"""``kind = "chat"``: election events as messages in the newsroom's channel.

A burst (what one poll cycle committed, or a backlog after the service said wait) goes out as one
digest, split only where the platform's size limit says, its parts paced at the platform's rate
(Slack: one a second), so a channel catches up instead of falling behind and a webhook is never
flooded. A 429 or a 5xx is retried after ``Retry-After`` (Matrix: ``retry_after_ms``), without the
parts already posted and with whatever came meanwhile; any other refusal dead-letters the group.
Operational alerts (``ops = true``) are best effort: queued, grouped the same way, dropped after a
few failed attempts, never stored.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
import structlog
from yarl import URL

from pollerd.config.sinks import ChatSinkConfig
from pollerd.core.backoff import parse_retry_after
from pollerd.core.model import Event
from pollerd.core.payload import loose_json
from pollerd.sinks.base import DeliveryFailed
from pollerd.sinks.chat_digest import Digest, DigestShape, Message, Told
from pollerd.sinks.chat_messages import (
    MESSAGE_SIZE,
    MIN_INTERVAL,
    Lines,
    body_bytes,
    matrix_body,
    measure,
    slack_body,
    teams_body,
)
from pollerd.telemetry.alerts import Alert
from pollerd.versions.payload import Payload

RETRY_STATUSES = frozenset({408, 425, 429})
ALERT_QUEUE = 200  # alerts kept while the channel is slow; older ones go first
ALERT_ATTEMPTS = 3
_ANSWER_BYTES = 512
_POSTED_REMEMBERED = 20_000  # event ids of parts already posted, so a retried digest skips them


class ChatSink:
    """Posts election events (and, with ``ops``, alerts) to one chat channel."""

    def __init__(self, config: ChatSinkConfig, user_agent: str) -> None:
        self.name = config.name
        self.group_window = config.group_window
        self._config = config
        self._lines = Lines(config.templates, config.language)
        shape = DigestShape(
            config.max_message_size or MESSAGE_SIZE[config.format], config.max_lines, config.counts_shown
        )
        self._digest = Digest(self._lines.words, measure(config.format), shape)
        interval = config.min_interval if config.min_interval is not None else MIN_INTERVAL[config.format]
        self._pace = Pace(interval)
        self._posted: OrderedDict[str, None] = OrderedDict()
        self._headers = {"User-Agent": user_agent}
        if config.access_token is not None:
            self._headers["Authorization"] = f"Bearer {config.access_token.get_secret_value()}"
        self._session: aiohttp.ClientSession | None = None
        self._alerts: deque[Alert] = deque(maxlen=ALERT_QUEUE)
        self._alerting: asyncio.Task[None] | None = None
        self._log = structlog.get_logger("pollerd.chat").bind(sink=config.name)

    async def deliver(self, event: Event, payload: Payload, epoch: int | None = None) -> None:
        """One version's events as one message (the deliverer normally hands groups)."""
        await self.deliver_group([event], epoch)

    async def deliver_group(self, events: list[Event], epoch: int | None = None) -> None:
        """Post the events as one digest; DeliveryFailed if the channel did not take it all (the
        parts it took are not posted again when the group is retried)."""
        every = [item for event in events for item in self._lines.of(event)]
        for message in self._digest.messages([item for item in every if item.ids[0] not in self._posted]):
            await self._post(message)
            self._remember(message.ids)
        for item in every:  # all taken: a redelivery asked for later is posted again
            self._posted.pop(item.ids[0], None)

    def _remember(self, ids: tuple[str, ...]) -> None:
        for event_id in ids:
            self._posted[event_id] = None
        while len(self._posted) > _POSTED_REMEMBERED:
            self._posted.popitem(last=False)

    def alert(self, alert: Alert) -> None:
        """Queue an operational alert, if this channel takes them (``ops``)."""
        if not self._config.ops or not self._worth_telling(alert):
            return
        self._alerts.append(alert)
        if self._alerting is None or self._alerting.done():
            self._alerting = asyncio.get_running_loop().create_task(
                self._tell_alerts(), name=f"alerts:{self.name}"
            )

    async def close(self) -> None:
        """Stop telling alerts; close the HTTP session."""
        if self._alerting is not None:
            self._alerting.cancel()
            await asyncio.gather(self._alerting, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def _worth_telling(self, alert: Alert) -> bool:
        """A failing source is told once it failed ``ops_after`` cycles in a row, and its recovery
        only then."""
        if alert.kind == "source_failing":
            return alert.count == self._config.ops_after
        if alert.kind == "source_recovered":
            return alert.count >= self._config.ops_after
        return True

    async def _tell_alerts(self) -> None:
        await asyncio.sleep(self.group_window)
        attempts = 0
        while self._alerts:
            batch = list(self._alerts)
            told = [Told((f"{a.kind}:{a.subject}:{id(a)}",), f"⚠ {a.text}", "other") for a in batch]
            try:
                title = "pollerd" if len(told) == 1 else f"pollerd: {len(told)} alerts"
                for message in self._digest.plain(title, [(None, told)]):
                    await self._post(message)
            except Exception as exc:  # best effort: an alert must never take the daemon down
                attempts += 1
                if attempts >= ALERT_ATTEMPTS:
                    self._log.warning("alerts dropped: the channel did not take them", error=str(exc))
                    self._alerts.clear()
                    return
                wait = exc.retry_after if isinstance(exc, DeliveryFailed) else None
                await asyncio.sleep(wait or self._config.retry_base * 2**attempts)
                continue
            for _ in batch:
                self._alerts.popleft()
            attempts = 0

    async def _post(self, message: Message) -> None:
        """One message, in its turn (the channel's rate: events and alerts share it)."""
        async with self._pace.turn() as turn:
            method, url, body, content_type = self._request(message)
            session = self._session or self._open()
            timeout = aiohttp.ClientTimeout(total=self._config.timeout)
            headers = self._headers | {"Content-Type": content_type}
            try:
                async with session.request(
                    method, url, data=body, headers=headers, allow_redirects=False, timeout=timeout
                ) as response:
                    answer = (await response.content.read(_ANSWER_BYTES)).decode("utf-8", "replace")
                    status, retry_header = response.status, response.headers.get("Retry-After")
            except TimeoutError:
                raise DeliveryFailed(f"no answer within {self._config.timeout:g}s") from None
            except aiohttp.ClientError as exc:
                raise DeliveryFailed(f"connection: {type(exc).__name__}") from None
            if 200 <= status < 300:
                return
            detail = f"HTTP {status}: {' '.join(answer.split())}" if answer.strip() else f"HTTP {status}"
            if status in RETRY_STATUSES or status >= 500:
                wait = _retry_after(retry_header, answer)
                turn.hold(wait, self._pace.interval)
                raise DeliveryFailed(detail, retry_after=wait)
            raise DeliveryFailed(detail, permanent=True)

    def _request(self, message: Message) -> tuple[str, str | URL, bytes, str]:
        """(method, URL, body, content type) of the message in the channel's format."""
        url = self._config.url.get_secret_value()
        form = self._config.format
        if form == "text":
            return "POST", url, message.text.encode(), "text/plain; charset=utf-8"
        if form == "matrix":
            assert self._config.room is not None  # the config requires one
            room = quote(self._config.room, safe="")
            path = f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{message.txn_id}"
            # encoded as given: the spec wants the room id's "!" and ":" escaped, as Synapse expects
            target = URL(url.rstrip("/") + path, encoded=True)
            return "PUT", target, body_bytes(matrix_body(message)), "application/json"
        body = teams_body(message) if form == "teams" else slack_body(message)
        return "POST", url, body_bytes(body), "application/json"

    def _open(self) -> aiohttp.ClientSession:
        self._session = aiohttp.ClientSession()
        return self._session


class Pace:
    """One post at a time to a channel, ``interval`` seconds apart counted from the end of the
    last (so the service sees them at least that far apart), longer after it said wait."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = asyncio.Lock()
        self._next = 0.0

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[Turn]:
        """Wait for the channel's next turn; the post is made inside it."""
        async with self._lock:
            await asyncio.sleep(max(self._next - time.monotonic(), 0.0))
            turn = Turn()
            try:
                yield turn
            finally:
                held = self.interval if turn.held is None else max(self.interval, turn.held)
                self._next = time.monotonic() + held


@dataclass
class Turn:
    """One post's turn; ``held``: the service said wait this long (None: it did not)."""

    held: float | None = None

    def hold(self, seconds: float | None, interval: float) -> None:
        """No post before ``seconds`` from now (twice the interval when the service said no time)."""
        self.held = seconds if seconds is not None else 2 * interval


def _retry_after(header: str | None, answer: str) -> float | None:
    """``Retry-After``, or Matrix's ``retry_after_ms`` in the JSON answer."""
    wait = parse_retry_after(header)
    if wait is not None:
        return wait
    document = loose_json(answer)
    millis = document.get("retry_after_ms") if isinstance(document, dict) else None
    return millis / 1000 if isinstance(millis, int | float) else None
