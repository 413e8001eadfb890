"""Message templates: ``{field}`` placeholders filled from an event's fields, nothing else (no
attribute access, no indexing, no code), ``{{`` and ``}}`` for braces. A field the event lacks is
left empty, so one template serves events with and without, say, a party.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pollerd.core.election import ELECTION_TYPES

_TOKEN = re.compile(r"\{\{|\}\}|\{([a-z_][a-z0-9_]*)\}|[{}]")

DEFAULT_TEMPLATES: dict[str, str] = {
    "race_called": "{state_name}: {caller} calls {race} for {candidate} ({party}): {share}%, "
    "{precincts_reporting_pct}% of precincts reporting",
    "call_changed": "{state_name}: {caller} changed its call in {race}: {candidate} ({party}), "
    "not {old_candidate}",
    "call_retracted": "{state_name}: {caller} retracted its call in {race} "
    "(was {old_candidate}, {old_party})",
    "call_pending": "{state_name}: AP calls {race} for {candidate} ({party}): HELD for the desk "
    "(pollerd calls accept {key})",
    "call_conflict": "{state_name}: CALL CONFLICT in {race}: AP {ap_says}; the desk calls it for "
    "{desk_candidate} ({desk_party}), and that call stands",
    "runoff": "{state_name}: {race} goes to a runoff: {candidates}",
    "race_complete": "{state_name}: all precincts reporting in {race}",
    "votes_counted": "{state_name}: {race}: {votes_added} more votes counted ({batch_shares}); "
    "{leader} leads by {margin_votes} ({margin_points} pts), {precincts_reporting_pct}% of precincts",
    "lead_changed": "{state_name}: {race}: {candidate} ({party}) now leads, by {margin_votes} votes "
    "({margin_points} pts), ahead of {old_candidate}",
    "expected_vote": "{state_name}: {race}: {mark}% of the expected vote counted",
    "race_status_changed": "{state_name}: {race}: AP now says {race_call_status} "
    "(was {old_race_call_status})",
    "canton_complete": "{canton_name} finished counting ({ballot}, {gemeinden_abgeschlossen} communes)",
    "canton_reopened": "{canton_name} reopened its count: a correction ({ballot}); finished before, "
    "{gemeinden_abgeschlossen} of {gemeinden_total} communes now",
    "count_corrected": "{canton_name}: finished figures corrected ({ballot}, {file})",
    "result_final": "{ballot}: every canton counted, the result is complete",
    "proposal_decided": "{proposal}: {outcome}, {yes_pct}% yes",
    "majority_changed": "{proposal}: {what} now say {side} ({standing})",
    "ballot_cancelled": "{ballot_title}: ballot cancelled ({why}); replaced by {replaced_by}",
    "candidate_added": "{ballot_title}: candidate added: {candidate} ({party})",
    "candidate_withdrawn": "{ballot_title}: candidate withdrawn: {candidate} ({party})",
    "polling_station_changed": "Polling station for {date} ({where}) is now {station}; was {old_station}",
    "election_withdrawn": "{election_title}: election withdrawn",
    "versions": "{source}/{resource}: version {sequence}",
    "initial": "(as first seen) {line}",
    "group": "{count} election events",
}
TEMPLATE_NAMES = tuple(DEFAULT_TEMPLATES)
assert set(ELECTION_TYPES) <= set(TEMPLATE_NAMES)


class TemplateError(ValueError):
    """A template that is not of the safe syntax."""


def check_template(name: str, template: str) -> None:
    """TemplateError unless every brace is a ``{field}`` placeholder or doubled."""
    for match in _TOKEN.finditer(template):
        if match.group(0) in ("{", "}"):
            raise TemplateError(
                f"templates.{name}: a lone {match.group(0)!r} at {match.start()}: write {{field}}, "
                "or {{ and }} for braces"
            )


def render(template: str, fields: Mapping[str, Any]) -> str:
    """The template with each placeholder replaced by its field (empty when the field is absent)."""

    def fill(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        return "" if name is None else _text(fields.get(name))

    return _TOKEN.sub(fill, template)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(item) for item in value)
    return str(value)
