"""The 26 cantons by the FSO's number (1 Zurich … 26 Jura): their abbreviation and their official
names in German, French, Italian and English. An FSO file carries one name per canton, in one
language; a channel is told the canton in its own."""

from __future__ import annotations

from typing import Any

from pollerd.core.languages import LanguageCode

# (abbreviation, de, fr, it, en), in the FSO's order
CANTONS: tuple[tuple[str, str, str, str, str], ...] = (
    ("ZH", "Zürich", "Zurich", "Zurigo", "Zurich"),
    ("BE", "Bern", "Berne", "Berna", "Bern"),
    ("LU", "Luzern", "Lucerne", "Lucerna", "Lucerne"),
    ("UR", "Uri", "Uri", "Uri", "Uri"),
    ("SZ", "Schwyz", "Schwyz", "Svitto", "Schwyz"),
    ("OW", "Obwalden", "Obwald", "Obvaldo", "Obwalden"),
    ("NW", "Nidwalden", "Nidwald", "Nidvaldo", "Nidwalden"),
    ("GL", "Glarus", "Glaris", "Glarona", "Glarus"),
    ("ZG", "Zug", "Zoug", "Zugo", "Zug"),
    ("FR", "Freiburg", "Fribourg", "Friburgo", "Fribourg"),
    ("SO", "Solothurn", "Soleure", "Soletta", "Solothurn"),
    ("BS", "Basel-Stadt", "Bâle-Ville", "Basilea Città", "Basel-Stadt"),
    ("BL", "Basel-Landschaft", "Bâle-Campagne", "Basilea Campagna", "Basel-Landschaft"),
    ("SH", "Schaffhausen", "Schaffhouse", "Sciaffusa", "Schaffhausen"),
    (
        "AR",
        "Appenzell Ausserrhoden",
        "Appenzell Rhodes-Extérieures",
        "Appenzello Esterno",
        "Appenzell Ausserrhoden",
    ),
    (
        "AI",
        "Appenzell Innerrhoden",
        "Appenzell Rhodes-Intérieures",
        "Appenzello Interno",
        "Appenzell Innerrhoden",
    ),
    ("SG", "St. Gallen", "Saint-Gall", "San Gallo", "St. Gallen"),
    ("GR", "Graubünden", "Grisons", "Grigioni", "Graubünden"),
    ("AG", "Aargau", "Argovie", "Argovia", "Aargau"),
    ("TG", "Thurgau", "Thurgovie", "Turgovia", "Thurgau"),
    ("TI", "Tessin", "Tessin", "Ticino", "Ticino"),
    ("VD", "Waadt", "Vaud", "Vaud", "Vaud"),
    ("VS", "Wallis", "Valais", "Vallese", "Valais"),
    ("NE", "Neuenburg", "Neuchâtel", "Neuchâtel", "Neuchâtel"),
    ("GE", "Genf", "Genève", "Ginevra", "Geneva"),
    ("JU", "Jura", "Jura", "Giura", "Jura"),
)
_COLUMN: dict[LanguageCode, int] = {"de": 1, "fr": 2, "it": 3, "en": 4}


def canton_name(number: Any, language: LanguageCode) -> str | None:
    """The canton's official name in ``language`` (None for a number that is no canton's)."""
    row = _row(number)
    return None if row is None else row[_COLUMN[language]]


def canton_code(number: Any) -> str | None:
    """The canton's two-letter abbreviation (ZH, BE, …)."""
    row = _row(number)
    return None if row is None else row[0]


def _row(number: Any) -> tuple[str, str, str, str, str] | None:
    try:  # an int in election files, a string in vote files
        index = int(str(number))
    except ValueError:
        return None
    return CANTONS[index - 1] if 1 <= index <= len(CANTONS) else None
