"""What the chat sink says, decided without I/O: one line per election event from its template in
the channel's language, and each message in the JSON its service expects, with its size as the
service counts it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pollerd.core.cantons import canton_code, canton_name
from pollerd.core.election import Fact
from pollerd.core.languages import LANGUAGES, Language, LanguageCode
from pollerd.core.model import Event
from pollerd.core.template_texts import TEMPLATES
from pollerd.core.templates import render
from pollerd.sinks.chat_digest import Message, Told, section_of


class Lines:
    """Renders events with the configured templates (the language's where none is set), its
    numbers and words, and the cantons' names in that language."""

    def __init__(self, templates: dict[str, str], language: LanguageCode = "en") -> None:
        self._templates = TEMPLATES[language] | templates
        self.language = LANGUAGES[language]

    def of(self, event: Event) -> list[Told]:
        """The lines of a version's election events; for a version without any (a sink that
        takes versions), one line for the version."""
        if not event.election:
            fields = {"source": event.source, "resource": event.resource, "sequence": event.sequence}
            text = render(self._templates["versions"], fields, self.language)
            return [Told((event.event_id,), text, "other")]
        return [
            Told(
                (fact.event_id(event.event_id),), self.line(event, fact), section_of(fact.type), _weight(fact)
            )
            for fact in event.election
        ]

    def line(self, event: Event, fact: Fact) -> str:
        """One election event as an editor reads it."""
        return self.fact_line(fact, event.source, event.resource, event.sequence)

    def fact_line(self, fact: Fact, source: str, resource: str, sequence: int | None = None) -> str:
        """One election event as an editor reads it, from where it came."""
        fields = fact_fields(fact, source, resource, sequence, self)
        text = render(self._templates[_template_of(fact)], fields, self.language)
        return render(self._templates["initial"], {"line": text}, self.language) if fact.initial else text

    def words(self, name: str, count: int | None) -> str:
        """A digest's own words: its title, a section's heading, "and N more"."""
        return self.template(name, {"count": count})

    def template(self, name: str, fields: dict[str, Any]) -> str:
        """One of the templates filled from ``fields``."""
        return render(self._templates[name], fields, self.language)


def _template_of(fact: Fact) -> str:
    new = fact.new or {}
    if fact.type == "votes_counted" and new.get("correction"):
        return "votes_corrected"
    if fact.type == "proposal_decided" and "favours" in new:
        return "deciding_question"
    return fact.type


def _weight(fact: Fact) -> float:
    """How much moved (the Counts section tells the heaviest first)."""
    new = fact.new or {}
    moved = new.get("votes_added", new.get("counted_added", 0))
    return abs(float(moved)) if isinstance(moved, int | float) else 0.0


def fact_fields(fact: Fact, source: str, resource: str, sequence: int | None, lines: Lines) -> dict[str, Any]:
    """The fields a template may use: the event's scope and new values, the old ones as
    ``old_<field>``, and where and when it came from; words in ``lines``' language."""
    language = lines.language
    new, old = fact.new or {}, fact.old or {}
    fields = {
        **fact.scope,
        **new,
        **{f"old_{key}": value for key, value in old.items()},
        "caller": language.word("desk" if fact.by == "desk" else "ap"),
        "ap_says": _ap_says(fact, language),
        "type": fact.type,
        "key": fact.key,
        "at": fact.at,
        "source": source,
        "resource": resource,
        "sequence": sequence,
    }
    for name in ("proposal", "favours", "in_force"):  # the FSO's titles, in the channel's language
        titles = new.get(f"{name}_titles")
        if isinstance(titles, dict) and titles.get(language.code):
            fields[name] = titles[language.code]
    for name in ("outcome", "side", "old_side"):
        if isinstance(fields.get(name), str):
            fields[name] = language.word(fields[name])
    if "majority" in new:
        fields["what"] = language.word(new["majority"])
        fields["standing"] = _standing(new, new["majority"], language)
    if "canton" in fact.scope:
        fields["canton_code"] = canton_code(fact.scope["canton"])
        fields["canton_name"] = canton_name(fact.scope["canton"], language.code) or new.get("canton_name")
    if "candidates_batch" in new:
        fields["batch_shares"] = ", ".join(
            f"{c['candidate']} {language.percent(c['share_of_batch'])}"
            for c in new["candidates_batch"]
            if c.get("share_of_batch") is not None
        )
    if fact.type == "canton_progress":
        fields["running"] = _running(new, language)
    if "proposal" in new and "ballot" in new:  # a canton of a vote: the proposal names it
        fields["ballot"] = fields["proposal"]
    if "favours" in new:
        fields["outcome_of_question"] = lines.template("favours", fields)
        fields["standing"] = _standing(new, "people", language)
        fields["in_force"] = lines.template("in_force" if new.get("in_force") else "in_force_none", fields)
    return fields


def _standing(figures: dict[str, Any], majority: str, language: Language) -> str:
    """Where a proposal stands, in the people's share or the cantons' count."""
    if majority == "people":
        share = figures.get("yes_pct")
        return language.word("share_yes").format(pct=language.number(share)) if share is not None else ""
    return language.word("cantons_count").format(
        yes=language.number(figures.get("cantons_yes") or 0),
        no=language.number(figures.get("cantons_no") or 0),
    )


def _running(figures: dict[str, Any], language: Language) -> str:
    """A canton's running figures: a vote's yes share, an election's strongest parties."""
    if figures.get("yes_pct") is not None:
        return _standing(figures, "people", language)
    return ", ".join(f"{p['party']} {language.percent(p['share'])}" for p in figures.get("parties") or [])


def _ap_says(fact: Fact, language: Language) -> str | None:
    """What AP says in a conflict with the desk, in words."""
    if fact.type != "call_conflict":
        return None
    new = fact.new or {}
    if new.get("resolved"):
        return language.word("ap_agrees")
    if "ap=X" in fact.state:
        return language.word("ap_calls").format(candidate=new.get("candidate"))
    return language.word("ap_uncalls")


def slack_body(message: Message) -> dict[str, Any]:
    """Slack's incoming webhook (Mattermost and Rocket.Chat take the same ``text``): headings in
    bold."""
    head = [f"{message.title}:"] if message.title else []
    lines = [f"*{line}*" if n in message.headings else line for n, line in enumerate(message.lines)]
    return {"text": "\n".join(head + lines)}


def teams_body(message: Message) -> dict[str, Any]:
    """A Teams incoming webhook (or Workflows) message holding one Adaptive Card."""
    body: list[dict[str, Any]] = []
    if message.title:
        body.append({"type": "TextBlock", "text": message.title, "weight": "Bolder", "wrap": True})
    body += [
        {"type": "TextBlock", "text": line, "wrap": True}
        | ({"weight": "Bolder", "spacing": "Medium"} if n in message.headings else {})
        for n, line in enumerate(message.lines)
    ]
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


def body_bytes(body: dict[str, Any]) -> bytes:
    """A JSON body as it is sent."""
    return json.dumps(body, ensure_ascii=False).encode()


MESSAGE_SIZE = {
    # Slack: keep ``text`` within 4,000 characters (it truncates beyond 40,000); Teams: 28 KB a
    # message; Matrix: 65,536 bytes an event, envelope and signatures included (half is kept for
    # them); a plain-text hook: Slack's figure
    "slack": 4000,
    "teams": 28_000,
    "matrix": 32_768,
    "text": 4000,
}
MIN_INTERVAL = {"slack": 1.0, "teams": 0.25, "matrix": 1.0, "text": 1.0}
"""Seconds between two posts to one channel: Slack's about one a second per webhook, Teams'
four a second; a homeserver's limits are its own (Synapse: a burst, then one in five seconds:
its 429 and ``retry_after_ms`` slow us down further)."""


def measure(form: str) -> Callable[[Message], int]:
    """The size of a message as the platform ``form`` counts it."""
    if form == "slack":
        return lambda message: len(slack_body(message)["text"])
    if form == "teams":
        return lambda message: len(body_bytes(teams_body(message)))
    if form == "matrix":
        return lambda message: len(body_bytes(matrix_body(message)))
    return lambda message: len(message.text.encode())
