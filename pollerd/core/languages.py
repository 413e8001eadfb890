"""The languages a chat channel can be told the night in: how numbers are written (``12,304`` in
English, ``12'304`` in Swiss German and Italian, ``12 304`` in Swiss French, with a narrow no-break
space as CLDR's fr-CH has it, so a number never breaks across lines) and the few words the rules'
codes stand for (a side, a majority, who called)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LanguageCode = Literal["en", "de", "fr", "it"]
NARROW_NBSP = "\u202f"


@dataclass(frozen=True)
class Language:
    """One language's number format and words."""

    code: LanguageCode
    group: str  # between thousands
    decimal: str
    words: dict[str, str]

    def number(self, value: int | float) -> str:
        """``value`` written for a reader of this language (at most two decimals)."""
        if isinstance(value, float) and not value.is_integer():
            text = f"{value:,.2f}".rstrip("0").rstrip(".")
        else:
            text = f"{int(value):,}"
        return text.replace(",", "\0").replace(".", self.decimal).replace("\0", self.group)

    def percent(self, value: int | float) -> str:
        """A percentage as this language writes it (``52.1%``, ``52,1 %``)."""
        return self.word("pct").format(pct=self.number(value))

    def word(self, code: str) -> str:
        """The word for one of the rules' codes (the code itself when this language has none)."""
        return self.words.get(code, code)


_WORDS: dict[LanguageCode, dict[str, str]] = {
    "en": {
        "yes": "yes",
        "no": "no",
        "true": "yes",
        "false": "no",
        "desk": "the desk",
        "ap": "AP",
        "people": "the people",
        "cantons": "the cantons",
        "accepted": "accepted",
        "rejected": "rejected",
        "ap_agrees": "now agrees with the desk",
        "ap_calls": "calls it for {candidate}",
        "ap_uncalls": "does not call it",
        "share_yes": "{pct}% yes",
        "pct": "{pct}%",
        "cantons_count": "{yes} cantons yes, {no} no",
    },
    "de": {
        "yes": "Ja",
        "no": "Nein",
        "true": "ja",
        "false": "nein",
        "desk": "der Desk",
        "ap": "AP",
        "people": "das Volk",
        "cantons": "die Stände",
        "accepted": "angenommen",
        "rejected": "abgelehnt",
        "ap_agrees": "stimmt dem Desk jetzt zu",
        "ap_calls": "ruft das Rennen für {candidate} aus",
        "ap_uncalls": "ruft es nicht aus",
        "share_yes": "{pct} % Ja",
        "pct": "{pct} %",
        "cantons_count": "{yes} Stände Ja, {no} Nein",
    },
    "fr": {
        "yes": "oui",
        "no": "non",
        "true": "oui",
        "false": "non",
        "desk": "la rédaction",
        "ap": "AP",
        "people": "le peuple",
        "cantons": "les cantons",
        "accepted": "accepté",
        "rejected": "rejeté",
        "ap_agrees": "est désormais d'accord avec la rédaction",
        "ap_calls": "donne {candidate} vainqueur",
        "ap_uncalls": "ne donne pas de vainqueur",
        "share_yes": "{pct} % de oui",
        "pct": "{pct} %",
        "cantons_count": "{yes} cantons pour le oui, {no} pour le non",
    },
    "it": {
        "yes": "sì",
        "no": "no",
        "true": "sì",
        "false": "no",
        "desk": "la redazione",
        "ap": "AP",
        "people": "il popolo",
        "cantons": "i cantoni",
        "accepted": "accettato",
        "rejected": "respinto",
        "ap_agrees": "ora concorda con la redazione",
        "ap_calls": "dà vincitore {candidate}",
        "ap_uncalls": "non dà un vincitore",
        "share_yes": "{pct} % di sì",
        "pct": "{pct} %",
        "cantons_count": "{yes} cantoni sì, {no} no",
    },
}

LANGUAGES: dict[LanguageCode, Language] = {
    "en": Language("en", ",", ".", _WORDS["en"]),
    "de": Language("de", "'", ".", _WORDS["de"]),
    "fr": Language("fr", NARROW_NBSP, ",", _WORDS["fr"]),
    "it": Language("it", "'", ".", _WORDS["it"]),
}
ENGLISH = LANGUAGES["en"]
