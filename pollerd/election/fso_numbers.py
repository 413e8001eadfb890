"""What moved in an FSO vote between two versions of its file: a proposal's majority tipping,
of the people (the yes share crossing 50%) or of the cantons (the Ständemehr, half cantons
counting half). Nothing is told of a proposal's first version, nor of a tie."""

from __future__ import annotations

from typing import Any

from pollerd.core.election import Fact, table


def majority_facts(
    number: Any, title: str, old: dict[str, Any] | None, new: dict[str, Any], at: str | None
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
                {"side": was[0], "standing": was[1]},
                {
                    "proposal": title,
                    "vorlagen_id": number,
                    "majority": who,
                    "what": "the people" if who == "people" else "the cantons",
                    "side": now[0],
                    "standing": now[1],
                },
                at,
                {},
            )
        )
    return facts


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
