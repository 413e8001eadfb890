"""One poll cycle's lines as a digest a desk reads at 3 a.m.: grouped under *Called*,
*Retracted / conflicts*, *Leads changed*, *Completed*, *Counts* (the biggest batches first, the
rest as "and 12 more") and *Also*, and split into messages the platform takes whole: never over
its size limit, never cut inside a line (a line too long for any message is split at spaces)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

SECTIONS = ("called", "retracted", "leads", "completed", "counts", "other")
_SECTION_OF = {
    "race_called": "called",
    "call_changed": "called",
    "call_pending": "called",
    "runoff": "called",
    "proposal_decided": "called",
    "call_retracted": "retracted",
    "call_conflict": "retracted",
    "lead_changed": "leads",
    "majority_changed": "leads",
    "race_complete": "completed",
    "canton_complete": "completed",
    "result_final": "completed",
    "votes_counted": "counts",
    "canton_progress": "counts",
}
_TITLE_ROOM = " (99/99)"  # a split digest numbers its parts: room for that in every title


def section_of(event_type: str) -> str:
    """The digest section an event type is told under."""
    return _SECTION_OF.get(event_type, "other")


@dataclass(frozen=True)
class Told:
    """One line of a digest: the event ids it tells of, its text, its section, and its weight
    (how much moved: the Counts section tells the heaviest first)."""

    ids: tuple[str, ...]
    text: str
    section: str
    weight: float = 0.0


@dataclass(frozen=True)
class Message:
    """One post: a title when it groups several lines, the lines (some of them section
    headings) and the ids of the events it tells of."""

    title: str | None
    lines: tuple[str, ...]
    ids: tuple[str, ...]
    headings: frozenset[int] = frozenset()

    @property
    def text(self) -> str:
        """The message as plain text (a heading ends with a colon)."""
        head = [f"{self.title}:"] if self.title else []
        return "\n".join(
            head + [f"{line}:" if n in self.headings else line for n, line in enumerate(self.lines)]
        )

    @property
    def txn_id(self) -> str:
        """The same message always has the same id, so a homeserver drops a retried post."""
        return hashlib.sha256("\0".join(self.ids).encode()).hexdigest()[:32]


Size = Callable[[Message], int]
"""How big a message is in the unit its platform limits (characters, or bytes of the body)."""


@dataclass(frozen=True)
class DigestShape:
    """What a channel takes: ``size`` per message (in its platform's unit), ``lines`` per
    message, and how many batches the Counts section names before "and N more"."""

    size: int
    lines: int
    counts: int


class Digest:
    """Builds the messages of one digest from its lines, with one language's words."""

    def __init__(self, words: Callable[[str, int | None], str], measure: Size, shape: DigestShape) -> None:
        self._words = words  # (template name, count) -> text: a heading, a title, "and N more"
        self._measure = measure
        self._shape = shape

    def messages(self, told: list[Told]) -> list[Message]:
        """The digest of ``told`` (one line alone: the line, with no title or heading)."""
        if not told:
            return []
        if len(told) == 1 and len(told[0].ids) == 1 and self._fits(Message(None, (told[0].text,), ())):
            return [Message(None, (told[0].text,), told[0].ids)]
        count = sum(len(item.ids) for item in told)
        return self.plain(self._words("group", count), self._sectioned(told))

    def plain(self, title: str, sections: list[tuple[str | None, list[Told]]]) -> list[Message]:
        """Lines under ``title`` in as few messages as the limits allow (a section without a
        heading: its lines alone)."""
        parts = self._pack(title, sections)
        if len(parts) == 1:
            return parts
        return [
            Message(f"{title} ({n}/{len(parts)})", part.lines, part.ids, part.headings)
            for n, part in enumerate(parts, start=1)
        ]

    def _sectioned(self, told: list[Told]) -> list[tuple[str | None, list[Told]]]:
        """Each section with lines, in order; Counts the heaviest first, the rest summed up."""
        sections: list[tuple[str | None, list[Told]]] = []
        for section in SECTIONS:
            lines = [item for item in told if item.section == section]
            if section == "counts":
                lines.sort(key=lambda item: -item.weight)
                if len(lines) > self._shape.counts:
                    rest = lines[self._shape.counts :]
                    more = self._words("more", sum(len(item.ids) for item in rest))
                    ids = tuple(i for item in rest for i in item.ids)
                    lines = [*lines[: self._shape.counts], Told(ids, more, section)]
            if lines:
                sections.append((self._words(f"section_{section}", None), lines))
        return sections

    def _pack(self, title: str, sections: list[tuple[str | None, list[Told]]]) -> list[Message]:
        """Lines into as few messages as the limits allow, in order; a section continued in the
        next message is headed there again."""
        room_title = title + _TITLE_ROOM
        parts: list[Message] = []
        current = Message(room_title, (), ())
        for heading, lines in sections:
            for n, item in enumerate(lines):
                for piece in self._pieces(room_title, heading, item.text):
                    opening = n == 0 or not current.lines
                    grown = self._add(current, heading, piece, item.ids, opening)
                    if not self._fits(grown) and current.lines:
                        parts.append(current)
                        current = Message(room_title, (), ())
                        grown = self._add(current, heading, piece, item.ids, True)
                    current = grown
        if current.lines:
            parts.append(current)
        return [Message(title, part.lines, part.ids, part.headings) for part in parts]

    def _add(
        self, message: Message, heading: str | None, line: str, ids: tuple[str, ...], head: bool
    ) -> Message:
        lines, headings = message.lines, set(message.headings)
        if head and heading is not None:
            headings.add(len(lines))
            lines += (heading,)
        return Message(message.title, (*lines, line), (*message.ids, *ids), frozenset(headings))

    def _fits(self, message: Message) -> bool:
        content = len(message.lines) - len(message.headings)
        return self._measure(message) <= self._shape.size and content <= self._shape.lines

    def _pieces(self, title: str, heading: str | None, line: str) -> list[str]:
        """The line, or (when not even a message of its own holds it) its parts split at spaces."""
        if self._fits(self._add(Message(title, (), ()), heading, line, (), True)):
            return [line]
        pieces: list[str] = []
        for word in line.split(" "):
            joined = f"{pieces[-1]} {word}" if pieces else word
            if pieces and self._fits(self._add(Message(title, (), ()), heading, joined, (), True)):
                pieces[-1] = joined
            else:
                pieces.append(word)
        return pieces
