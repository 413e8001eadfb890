"""Message templates: ``{field}`` placeholders filled from an event's fields, nothing else (no
attribute access, no indexing, no code), ``{{`` and ``}}`` for braces. A field the event lacks is
left empty, so one template serves events with and without, say, a party.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pollerd.core.election import ELECTION_TYPES
from pollerd.core.languages import Language
from pollerd.core.template_texts import TEMPLATES

_TOKEN = re.compile(r"\{\{|\}\}|\{([a-z_][a-z0-9_]*)\}|[{}]")

DEFAULT_TEMPLATES = TEMPLATES["en"]
TEMPLATE_NAMES = tuple(DEFAULT_TEMPLATES)
assert set(ELECTION_TYPES) <= set(TEMPLATE_NAMES)
assert all(set(texts) == set(TEMPLATE_NAMES) for texts in TEMPLATES.values())


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


def render(template: str, fields: Mapping[str, Any], language: Language | None = None) -> str:
    """The template with each placeholder replaced by its field (empty when the field is absent);
    numbers written for ``language``'s readers, or plainly (``1234``, as a key needs) without one."""

    def fill(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        return "" if name is None else _text(fields.get(name), language)

    return _TOKEN.sub(fill, template)


def _text(value: Any, language: Language | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return ("yes" if value else "no") if language is None else language.word(str(value).lower())
    if isinstance(value, int | float):
        return (
            (f"{value:g}" if isinstance(value, float) else str(value))
            if language is None
            else language.number(value)
        )
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(item, language) for item in value)
    return str(value)
