"""What moved in an FSO file between two versions: a proposal's majority tipping, of the people
(the yes share crossing 50%) or of the cantons (the Ständemehr, half cantons counting half), and a
canton's count growing (its counted municipalities, with the running figures). Nothing is told of
a proposal's first version, nor of a tie."""

from __future__ import annotations

from typing import Any

from pollerd.core.election import Fact, table


def majority_facts(
    number: Any,
    titles: tuple[str, dict[str, str]],
    old: dict[str, Any] | None,
    new: dict[str, Any],
    at: str | None,
) -> list[Fact]:
    """The majorities of one proposal that changed sides."""
    if old is None:
        return []
    facts = []
    for who, side in (("people", _people), ("cantons", _cantons)):
        was, now = side(old), side(new)
        if was is None or now is None or was[0] == now[0]:
            continue
        facts.append(
            Fact(
                "majority_changed",
                str(number),
                f"majority:{number}:{who}",
                now[0],
                {"side": was[0], "standing": was[1]} | standing(old),
                {
                    "proposal": titles[0],
                    "proposal_titles": titles[1],
                    "vorlagen_id": number,
                    "majority": who,
                    "what": "the people" if who == "people" else "the cantons",
                    "side": now[0],
                    "standing": now[1],
                }
                | standing(new),
                at,
                {},
            )
        )
    return facts


def standing(proposal: dict[str, Any]) -> dict[str, Any]:
    """A proposal's figures as numbers (a chat line words them in its language)."""
    counts = table(proposal.get("staende"))
    return {
        "yes_pct": table(proposal.get("resultat")).get("jaStimmenInProzent"),
        "cantons_yes": _number(counts.get("jaStaendeGanz")) + _number(counts.get("jaStaendeHalb")) / 2,
        "cantons_no": _number(counts.get("neinStaendeGanz")) + _number(counts.get("neinStaendeHalb")) / 2,
    }


def favoured_by_question(question: dict[str, Any]) -> bool:
    """Whether a deciding question (Stichfrage) favours the main proposal (the initiative): where
    the people and the cantons disagree, the side whose share of the people's votes plus share of
    the cantons is larger (Art. 139b of the Federal Constitution); FSO's own flag where the
    figures are missing."""
    people, cantons = _people(question), _cantons(question)
    if people is None or cantons is None or people[0] == cantons[0]:
        side = people or cantons
        return side[0] == "yes" if side is not None else question.get("vorlageAngenommen") is True
    figures = standing(question)
    share = float(figures["yes_pct"])
    counted = figures["cantons_yes"] + figures["cantons_no"]
    yes = share + 100 * figures["cantons_yes"] / counted
    no = 100 - share + 100 * figures["cantons_no"] / counted
    return yes > no if yes != no else question.get("vorlageAngenommen") is True


def progress_fact(
    ballot: str, number: Any, fields: dict[str, Any], counted_before: Any, at: str | None
) -> Fact | None:
    """``canton_progress``: the canton counted more municipalities than the version before
    (``fields``: the canton's as the rules tell them, with its running figures)."""
    counted = fields.get("gemeinden_abgeschlossen")
    if not isinstance(counted, int) or not isinstance(counted_before, int) or counted <= counted_before:
        return None
    return Fact(
        "canton_progress",
        f"{ballot}:{number}",
        f"progress:{ballot}:{number}",
        str(counted),
        {"gemeinden_abgeschlossen": counted_before},
        fields | {"counted_added": counted - counted_before},
        at,
        {"canton": number},
    )


def _people(proposal: dict[str, Any]) -> tuple[str, str] | None:
    share = table(proposal.get("resultat")).get("jaStimmenInProzent")
    if not isinstance(share, int | float) or isinstance(share, bool) or share == 50:
        return None
    return ("yes" if share > 50 else "no"), f"{share:g}% yes"


def _cantons(proposal: dict[str, Any]) -> tuple[str, str] | None:
    counts = table(proposal.get("staende"))
    yes = _number(counts.get("jaStaendeGanz")) + _number(counts.get("jaStaendeHalb")) / 2
    no = _number(counts.get("neinStaendeGanz")) + _number(counts.get("neinStaendeHalb")) / 2
    if yes == no:
        return None
    return ("yes" if yes > no else "no"), f"{yes:g} cantons yes, {no:g} no"


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
