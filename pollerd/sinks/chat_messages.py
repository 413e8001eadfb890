"""What the chat sink says, decided without I/O: one line per election event from its template,
lines grouped into messages, and each message in the JSON its service expects."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from pollerd.core.election import Fact
from pollerd.core.model import Event
from pollerd.core.templates import DEFAULT_TEMPLATES, render


@dataclass(frozen=True)
class Message:
    """One post: a title when it groups several lines, and the lines."""

    title: str | None
    lines: tuple[str, ...]
    ids: tuple[str, ...]  # the events it tells of (Matrix makes its transaction id from them)

    @property
    def text(self) -> str:
        """The message as plain text."""
        return "\n".join(([f"{self.title}:"] if self.title else []) + list(self.lines))

    @property
    def txn_id(self) -> str:
        """The same message always has the same id, so a homeserver drops a retried post."""
        return hashlib.sha256("\0".join(self.ids).encode()).hexdigest()[:32]


class Lines:
    """Renders events with the configured templates (the English defaults where none is set)."""

    def __init__(self, templates: dict[str, str]) -> None:
        self._templates = DEFAULT_TEMPLATES | templates

    def of(self, event: Event) -> list[tuple[str, str]]:
        """(id, line) for each election event of a version; for a version without any (a sink
        that takes versions), one line for the version."""
        if not event.election:
            fields = {"source": event.source, "resource": event.resource, "sequence": event.sequence}
            return [(event.event_id, render(self._templates["versions"], fields))]
        return [(fact.event_id(event.event_id), self.line(event, fact)) for fact in event.election]

    def line(self, event: Event, fact: Fact) -> str:
        """One election event as an editor reads it."""
        return self.fact_line(fact, event.source, event.resource, event.sequence)

    def fact_line(self, fact: Fact, source: str, resource: str, sequence: int | None = None) -> str:
        """One election event as an editor reads it, from where it came."""
        text = render(self._templates[fact.type], fact_fields(fact, source, resource, sequence))
        return render(self._templates["initial"], {"line": text}) if fact.initial else text

    def messages(self, events: list[Event], max_lines: int) -> list[Message]:
        """One message for one line; else grouped, ``max_lines`` lines a message at most."""
        lines = [line for event in events for line in self.of(event)]
        if len(lines) == 1:
            return [Message(None, (lines[0][1],), (lines[0][0],))]
        chunks = [lines[i : i + max_lines] for i in range(0, len(lines), max_lines)]
        title = render(self._templates["group"], {"count": len(lines)})
        return [
            Message(
                title if len(chunks) == 1 else f"{title} ({n}/{len(chunks)})",
                tuple(text for _, text in chunk),
                tuple(event_id for event_id, _ in chunk),
            )
            for n, chunk in enumerate(chunks, start=1)
        ]


def fact_fields(fact: Fact, source: str, resource: str, sequence: int | None) -> dict[str, Any]:
    """The fields a template may use: the event's scope and new values, the old ones as
    ``old_<field>``, and where and when it came from."""
    old = {f"old_{key}": value for key, value in (fact.old or {}).items()}
    return {
        **fact.scope,
        **(fact.new or {}),
        **old,
        "caller": "the desk" if fact.by == "desk" else "AP",
        "ap_says": _ap_says(fact),
        "type": fact.type,
        "key": fact.key,
        "at": fact.at,
        "source": source,
        "resource": resource,
        "sequence": sequence,
    }


def _ap_says(fact: Fact) -> str | None:
    """What AP says in a conflict with the desk, in words."""
    if fact.type != "call_conflict":
        return None
    if (fact.new or {}).get("resolved"):
        return "now agrees with the desk"
    return f"calls it for {(fact.new or {}).get('candidate')}" if "ap=X" in fact.state else "does not call it"


def slack_body(message: Message) -> dict[str, Any]:
    """Slack's incoming webhook (Mattermost and Rocket.Chat take the same ``text``)."""
    return {"text": message.text}


def teams_body(message: Message) -> dict[str, Any]:
    """A Teams incoming webhook (or Workflows) message holding one Adaptive Card."""
    body: list[dict[str, Any]] = []
    if message.title:
        body.append({"type": "TextBlock", "text": message.title, "weight": "Bolder", "wrap": True})
    body += [{"type": "TextBlock", "text": line, "wrap": True} for line in message.lines]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }


def matrix_body(message: Message) -> dict[str, Any]:
    """An ``m.room.message`` event (``m.notice``: what bots send, so other bots do not answer)."""
    return {"msgtype": "m.notice", "body": message.text}
