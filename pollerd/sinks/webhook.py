"""``kind = "webhook"``: one signed POST per change, as the payload, the event, or a JSON Patch.

Every request carries ``Idempotency-Key`` (the event id, the same on every retry) and
``X-Pollerd-Signature``. TLS is verified (``ca_bundle`` adds a CA); redirects are not followed.
2xx acknowledges; 408, 425, 429, 5xx, timeouts and connection errors are retried; any other
status is permanent (dead letter, with the status and the start of the answer).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import jsonpatch

from pollerd.config import WebhookSinkConfig
from pollerd.core.backoff import parse_retry_after
from pollerd.core.canonical import dump
from pollerd.core.model import Event
from pollerd.core.names import safe_name
from pollerd.core.payload import PayloadRejected, strict_json
from pollerd.core.signature import HEADER, sign
from pollerd.sinks.base import DeliveryFailed
from pollerd.store.durable import atomic_copy
from pollerd.versions.payload import Payload

RETRY_STATUSES = frozenset({408, 425, 429})
_ANSWER_BYTES = 512


class WebhookSink:
    """POSTs each change to one URL; keeps the last delivered payload per resource for patches."""

    def __init__(self, config: WebhookSinkConfig, state_dir: Path, user_agent: str) -> None:
        assert config.secret is not None  # the config guarantees one (or a file, read)
        self.name = config.name
        self._config = config
        self._secret = config.secret.get_secret_value()
        self._bases = state_dir / "sinks" / safe_name(config.name)
        self._headers = {
            "User-Agent": user_agent,
            **{k: v.get_secret_value() for k, v in config.headers.items()},
        }
        self._session: aiohttp.ClientSession | None = None

    async def deliver(self, event: Event, payload: Payload, epoch: int | None = None) -> None:
        """POST the change; raise DeliveryFailed (permanent for a refusal) when not acknowledged."""
        body, content_type, mode, base_sha = await self._body(event, payload)
        headers = {
            **self._headers,
            **_event_headers(event),
            "Content-Type": content_type,
            "X-Pollerd-Body": mode,
            HEADER: sign(self._secret, body),
        }
        if epoch is not None:
            headers["X-Pollerd-Epoch"] = str(epoch)
        if base_sha is not None:
            headers["X-Pollerd-Base-Sha256"] = base_sha
        status, answer, retry_after = await self._post(body, headers)
        if 200 <= status < 300:
            if self._config.body == "patch":
                await asyncio.to_thread(_keep_base, self._base_path(event), await payload.path())
            return
        detail = f"HTTP {status}: {answer}" if answer else f"HTTP {status}"
        if status in RETRY_STATUSES or status >= 500:
            raise DeliveryFailed(detail, retry_after=retry_after)
        if 300 <= status < 400:
            detail += " (redirects are not followed: configure the final URL)"
        raise DeliveryFailed(detail, permanent=True)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()

    async def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, float | None]:
        session = self._session or self._open()
        timeout = aiohttp.ClientTimeout(total=self._config.timeout)
        try:
            async with session.post(
                self._config.url, data=body, headers=headers, allow_redirects=False, timeout=timeout
            ) as response:
                answer = (await response.content.read(_ANSWER_BYTES)).decode("utf-8", "replace")
                return (
                    response.status,
                    " ".join(answer.split()),
                    parse_retry_after(response.headers.get("Retry-After")),
                )
        except TimeoutError:
            raise DeliveryFailed(f"no answer within {self._config.timeout:g}s") from None
        except aiohttp.ClientSSLError as exc:
            raise DeliveryFailed(f"TLS: {type(exc).__name__} (is ca_bundle set?)") from None
        except aiohttp.ClientError as exc:
            raise DeliveryFailed(f"connection: {type(exc).__name__}") from None

    def _open(self) -> aiohttp.ClientSession:
        context = ssl.create_default_context(cafile=self._config.ca_bundle)
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
        return self._session

    async def _body(self, event: Event, payload: Payload) -> tuple[bytes, str, str, str | None]:
        """The request body, its content type, the mode used, and the patch base's sha256."""
        mode = self._config.body
        if mode == "delta":  # an AP snapshot's changed races; any other payload whole
            change = await payload.change()
            if change is not None:
                return await asyncio.to_thread(dump, change), "application/json", mode, None
        data = await asyncio.to_thread((await payload.path()).read_bytes)
        if mode == "event":
            document = {**event.to_json(), **_inline(data, self._config.inline_max_bytes)}
            return dump(document), "application/json", mode, None
        if mode == "patch":
            base_path = self._base_path(event)
            patched = await asyncio.to_thread(_patch, base_path, data)
            if patched is not None:
                patch, base_sha = patched
                return patch, "application/json-patch+json", mode, base_sha
        return data, event.content_type or "application/octet-stream", "payload", None

    def _base_path(self, event: Event) -> Path:
        return self._bases / safe_name(event.source) / f"{safe_name(event.resource)}.base"


def _keep_base(path: Path, payload: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_copy(payload, path)


def _event_headers(event: Event) -> dict[str, str]:
    def value(text: object) -> str:
        return quote(str(text), safe="-._~:/@")

    return {
        "Idempotency-Key": event.event_id,
        "X-Pollerd-Event-Id": event.event_id,
        "X-Pollerd-Source": value(event.source),
        "X-Pollerd-Resource": value(event.resource),
        "X-Pollerd-Sequence": str(event.sequence),
        "X-Pollerd-Sha256": event.sha256,
        "X-Pollerd-Url": value(event.url),
    }


def _inline(data: bytes, limit: int) -> dict[str, Any]:
    if len(data) > limit:
        return {"payload_omitted": True}
    try:
        return {"payload": strict_json(data)}
    except PayloadRejected:  # not JSON as receivers read it: sent as bytes
        return {"payload_base64": base64.b64encode(data).decode()}


def _patch(base_path: Path, data: bytes) -> tuple[bytes, str] | None:
    """An RFC 6902 patch from the last delivered version (or from nothing) to ``data``, with
    the base's sha256 ("none"); None when ``data`` is not JSON."""
    try:
        new = strict_json(data)
    except PayloadRejected:
        return None
    try:
        base_bytes = base_path.read_bytes()
        base = strict_json(base_bytes)
    except (OSError, PayloadRejected):
        operations: list[dict[str, Any]] = [{"op": "add", "path": "", "value": new}]
        return json.dumps(operations, ensure_ascii=False).encode(), "none"
    patch = jsonpatch.make_patch(base, new)
    return patch.to_string().encode(), hashlib.sha256(base_bytes).hexdigest()
