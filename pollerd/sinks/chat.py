"""``kind = "chat"``: election events as messages in the newsroom's channel.

A burst (what one poll cycle committed, or a backlog after the service said wait) goes out as one
grouped message, so a rate-limited channel catches up instead of falling behind. A 429 or a 5xx
is retried after ``Retry-After`` (Matrix: ``retry_after_ms``); any other refusal dead-letters the
group. Operational alerts (``ops = true``) are best effort: queued, grouped the same way, dropped
after a few failed attempts, never stored.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog
from yarl import URL

from pollerd.config.sinks import ChatSinkConfig
from pollerd.core.backoff import parse_retry_after
from pollerd.core.model import Event
from pollerd.core.payload import loose_json
from pollerd.sinks.base import DeliveryFailed
from pollerd.sinks.chat_messages import Lines, Message, matrix_body, slack_body, teams_body
from pollerd.telemetry.alerts import Alert
from pollerd.versions.payload import Payload

RETRY_STATUSES = frozenset({408, 425, 429})
ALERT_QUEUE = 200  # alerts kept while the channel is slow; older ones go first
ALERT_ATTEMPTS = 3
_ANSWER_BYTES = 512


class ChatSink:
    """Posts election events (and, with ``ops``, alerts) to one chat channel."""

    def __init__(self, config: ChatSinkConfig, user_agent: str) -> None:
        self.name = config.name
        self.group_window = config.group_window
        self._config = config
        self._lines = Lines(config.templates)
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
        """Post the events' lines, grouped; DeliveryFailed if the channel did not take them all."""
        for message in self._lines.messages(events, self._config.max_lines):
            await self._post(message)

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
            lines = tuple(f"⚠ {a.text}" for a in batch)
            title = "pollerd" if len(lines) == 1 else f"pollerd: {len(lines)} alerts"
            try:
                await self._post(Message(title, lines, tuple(f"{a.kind}:{a.subject}:{id(a)}" for a in batch)))
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
            raise DeliveryFailed(detail, retry_after=_retry_after(retry_header, answer))
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
            return "PUT", target, _json(matrix_body(message)), "application/json"
        body = teams_body(message) if form == "teams" else slack_body(message)
        return "POST", url, _json(body), "application/json"

    def _open(self) -> aiohttp.ClientSession:
        self._session = aiohttp.ClientSession()
        return self._session


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def _retry_after(header: str | None, answer: str) -> float | None:
    """``Retry-After``, or Matrix's ``retry_after_ms`` in the JSON answer."""
    wait = parse_retry_after(header)
    if wait is not None:
        return wait
    document = loose_json(answer)
    millis = document.get("retry_after_ms") if isinstance(document, dict) else None
    return millis / 1000 if isinstance(millis, int | float) else None
