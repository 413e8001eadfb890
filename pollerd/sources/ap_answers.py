"""What AP's answers mean: its errors classified in its own words, and the facts an answer
carries (its timestamp, its signature) for the event."""

from __future__ import annotations

from typing import Any

from pollerd.core.payload import PayloadRejected, loose_json
from pollerd.polling.answers import FetchFailure

SIGNATURE_HEADER = "AP_SIGNATURE_SHA256"


class ApRefused(Exception):
    """AP answered, but not with data: ``kind`` is quota, auth, request, server or protocol."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.retry_after = retry_after


def classify(exc: Exception) -> ApRefused:
    """What an error means for AP: the status, and AP's own words from the body."""
    if isinstance(exc, ApRefused):
        return exc
    if isinstance(exc, PayloadRejected):
        return ApRefused("protocol", str(exc))
    assert isinstance(exc, FetchFailure)
    message = _error_message(exc.body) or exc.detail
    if exc.status == 401:
        return ApRefused("auth", f"HTTP 401: {message}")
    if exc.status == 429 or (exc.status == 403 and "quota" in message.lower()):
        return ApRefused("quota", f"HTTP {exc.status}: {message}", exc.retry_after)
    if exc.status is not None and 400 <= exc.status < 500:
        return ApRefused("request", f"HTTP {exc.status}: {message}")
    return ApRefused("server", f"{exc.reason}: {message}", exc.retry_after)


def _error_message(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    document = loose_json(body)
    if isinstance(document, dict):
        for key in ("errorMessage", "message", "Message"):
            if isinstance(document.get(key), str):
                return str(document[key])
    return text[:300]


def answer_facts(
    document: dict[str, Any], headers: dict[str, str], earlier: dict[str, Any]
) -> dict[str, Any]:
    facts = dict(earlier)
    if isinstance(document.get("timestamp"), str):
        facts["as_of"] = document["timestamp"]
    signature = next((v for k, v in headers.items() if k.upper() == SIGNATURE_HEADER), None)
    if signature is not None:
        facts["signature"] = signature
    return facts
