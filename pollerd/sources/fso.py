"""``kind = "fso"``: the files of an opendata.swiss package, found through CKAN ``package_show``.

The FSO announces moved files (S3 → fallback → DAM) only through new URLs in the package, so the
URLs are read from the API, never configured. A resource is known by its CKAN id: its name (the
file name it had when first seen) stays when its URL moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from pollerd.config import FsoSelector, FsoSourceConfig
from pollerd.core.election import Rules
from pollerd.core.hosts import HostPolicy
from pollerd.core.model import Resource
from pollerd.core.names import name_from_url, safe_name
from pollerd.core.payload import PayloadRejected, strict_json
from pollerd.election.fso import fso_facts
from pollerd.polling.answers import FetchFailure
from pollerd.polling.fetch import HttpClient, Terms
from pollerd.polling.source import DiscoveryFailed
from pollerd.polling.tally import SourceTally
from pollerd.sources.fso_details import fso_details

MAX_PACKAGE_BYTES = 10 * 1024 * 1024
_UNINFORMATIVE_NAMES = frozenset({"master", "download", "data", "file"})
_FORMATS = {"json": "json", "csv": "text", "txt": "text", "xml": "text"}


@dataclass(frozen=True)
class CkanResource:
    """One entry of a package's ``resources`` list, reduced to what selection and polling need."""

    id: str
    url: str
    format: str
    titles: dict[str, str]
    languages: tuple[str, ...]

    @property
    def file_name(self) -> str:
        """The last segment of the URL's path."""
        return PurePosixPath(unquote(urlsplit(self.url).path)).name


def fso_policy(config: FsoSourceConfig) -> HostPolicy:
    """Where an fso source may go: its allowed hosts (the FSO's by default) and its API's host."""
    return HostPolicy(config.allowed_hosts, also=[urlsplit(config.api).hostname or ""])


class FsoSource:
    """Discovers the package's resources on every call; selection is by name, never by position."""

    empty_until_published = True  # the municipality lists are 0 bytes before the first results

    def __init__(self, config: FsoSourceConfig, client: HttpClient, tally: SourceTally) -> None:
        self.discovery_interval: float | None = config.discovery_interval
        self.policy = fso_policy(config)
        self.rules: Rules | None = fso_facts
        self._config = config
        self._client = client
        self._terms = Terms(tally, {}, config.timeout, MAX_PACKAGE_BYTES, self.policy)
        self._url = f"{config.api}/package_show?id={quote(config.package)}"

    async def discover(self, known: list[Resource]) -> list[Resource]:
        """Read the package and select its resources; ids of known CKAN resources are kept."""
        try:
            body = await self._client.read(self._terms, self._url)
        except (FetchFailure, PayloadRejected) as exc:
            raise DiscoveryFailed(f"package_show: {exc}") from None
        entries = parse_package(body)
        resources = self._select(entries, known)
        if not resources:
            raise DiscoveryFailed(
                f"package {self._config.package!r} lists {len(entries)} resources, none selected"
            )
        return resources

    def details(self, document: Any) -> dict[str, Any] | None:
        """Timestamp and progress of an FSO file (when ``details`` is on)."""
        return fso_details(document) if self._config.details else None

    def _select(self, entries: list[CkanResource], known: list[Resource]) -> list[Resource]:
        names = {r.key: r.id for r in known if r.key is not None}
        taken = set(names.values())
        resources = []
        for entry in sorted(entries, key=lambda e: e.id):  # the package's order means nothing
            selectors = self._matching(entry, names.get(entry.id))
            if not selectors:
                continue
            name = names.get(entry.id) or _new_name(entry, taken)
            taken.add(name)
            allow_empty = next(
                (s.allow_empty for s in selectors if s.allow_empty is not None), self._config.allow_empty
            )
            resources.append(
                Resource(
                    id=name, url=entry.url, format=self._format(entry), allow_empty=allow_empty, key=entry.id
                )
            )
        return resources

    def _matching(self, entry: CkanResource, known_name: str | None) -> list[FsoSelector]:
        """The selectors the entry matches (every resource matches when none is configured).

        A resource's ``allow_empty`` comes from the first matching selector that sets it.
        """
        if not self._config.select:
            return [_EVERYTHING]
        return [s for s in self._config.select if matches(s, entry, known_name)]

    def _format(self, entry: CkanResource) -> str:
        if self._config.format != "auto":
            return self._config.format
        return _FORMATS.get(entry.format.lower(), "auto")


_EVERYTHING = FsoSelector(format="*")


def matches(selector: FsoSelector, entry: CkanResource, known_name: str | None = None) -> bool:
    """Whether every criterion the selector sets holds for the entry.

    ``file`` is matched against the URL's file name and against the name the resource got when
    first seen, so a resource that moves to a URL without its file name (the DAM) stays selected.
    """
    if selector.id is not None and entry.id != selector.id:
        return False
    if selector.format is not None and not fnmatchcase(entry.format.lower(), selector.format.lower()):
        return False
    if selector.language is not None and entry.languages and selector.language not in entry.languages:
        return False
    if selector.file is not None:
        pattern = selector.file.lower()
        candidates = [entry.file_name, known_name or ""]
        if not any(fnmatchcase(c.lower(), pattern) for c in candidates if c):
            return False
    if selector.title is not None:
        titles = entry.titles
        if selector.language is not None:
            titles = {k: v for k, v in titles.items() if k == selector.language}
        if not any(fnmatchcase(t.lower(), selector.title.lower()) for t in titles.values()):
            return False
    return True


def _new_name(entry: CkanResource, taken: set[str]) -> str:
    name = name_from_url(entry.url)
    if PurePosixPath(name).stem.lower() in _UNINFORMATIVE_NAMES or not entry.file_name:
        name = safe_name(entry.id)
    if name in taken:
        name = f"{name}-{safe_name(entry.id)[:8]}"
    return name


def parse_package(body: bytes) -> list[CkanResource]:
    """The resources of a ``package_show`` answer; DiscoveryFailed when it is not one."""
    try:
        answer = strict_json(body)
    except PayloadRejected as exc:
        raise DiscoveryFailed(f"package_show answered something that is not JSON ({exc.detail})") from None
    result = answer.get("result") if isinstance(answer, dict) else None
    if (
        not isinstance(answer, dict)
        or answer.get("success") is not True
        or not isinstance(result, dict)
        or not isinstance(result.get("resources"), list)
    ):
        raise DiscoveryFailed("package_show answer has no result.resources (or success is false)")
    return [entry for item in result["resources"] if (entry := _entry(item)) is not None]


def _entry(item: object) -> CkanResource | None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return None
    url = item.get("download_url") or item.get("url")
    if not isinstance(url, str) or not url.strip():
        return None
    languages = item.get("language")
    return CkanResource(
        id=item["id"],
        url=url.strip(),  # URLs once carried stray whitespace
        format=str(item.get("format") or ""),
        titles=_texts(item.get("title") or item.get("name")),
        languages=tuple(languages) if isinstance(languages, list) else (),
    )


def _texts(value: object) -> dict[str, str]:
    """A multilingual CKAN field ({"de": ..., "fr": ...}) or a plain string (as ``"any"``)."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items() if isinstance(v, str)}
    if isinstance(value, str):
        return {"any": value}
    return {}
