"""A CKAN ``package_show`` endpoint like opendata.swiss: the package's resources with their
current URLs, in an order that changes between calls (as it did before the 2023 election)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from aiohttp import web

from pollerd.sim.host import SimHost

ACTION_PATH = "/api/3/action/package_show"


@dataclass
class PackageResource:
    """One resource of a package, as the simulator holds it."""

    id: str
    url: str
    title: str
    format: str = "JSON"
    stray_whitespace: bool = False  # the URL is served with a trailing blank, as once happened
    languages: list[str] = field(default_factory=list)

    def to_json(self, position: int) -> dict[str, object]:
        """The resource as CKAN lists it (metadata that says nothing about file updates)."""
        url = self.url + (" \n" if self.stray_whitespace else "")
        titles = {
            "de": self.title,
            "fr": f"{self.title} (fr)",
            "it": f"{self.title} (it)",
            "en": f"{self.title} (en)",
        }
        return {
            "id": self.id,
            "url": url,
            "download_url": url,
            "format": self.format,
            "media_type": "application/json",
            "position": position,
            "name": titles,
            "title": titles,
            "description": {"de": "", "fr": "", "it": "", "en": ""},
            "issued": "2023-08-16T00:00:00",
            "created": "2023-08-16T12:00:00",
            "modified": "2023-08-16T12:00:00",
            "last_modified": None,
            "byte_size": 0,
            "language": self.languages,
        }


class CkanApi(SimHost):
    """Serves ``package_show`` for the packages it holds; faults work as on any SimHost."""

    def __init__(self, name: str = "ckan", seed: int = 7, shuffle: bool = True) -> None:
        super().__init__(name)
        self.packages: dict[str, dict[str, PackageResource]] = {}
        self._rng = random.Random(seed)
        self._shuffle = shuffle

    def put(self, package: str, resource: PackageResource) -> None:
        """Add a resource to a package, or replace the one with the same id."""
        self.packages.setdefault(package, {})[resource.id] = resource

    def move(self, package: str, resource_id: str, url: str) -> None:
        """Point a resource at a new URL (what the FSO does when it switches hosts)."""
        self.packages[package][resource_id].url = url

    def remove(self, package: str, resource_id: str) -> None:
        """Drop a resource from a package."""
        del self.packages[package][resource_id]

    def respond(self, request: web.Request) -> web.Response:
        """The package, its resources shuffled; a CKAN-style error for anything else."""
        if request.path != ACTION_PATH:
            return _error(404, "Not found")
        document = self.document(request.query.get("id", ""), str(request.url.origin()))
        if document is None:
            return _error(404, "Not found: package")
        return web.json_response(document, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    def document(self, package_id: str, origin: str) -> dict[str, object] | None:
        """What ``package_show`` answers now for a package at ``origin`` (None: no such package)."""
        package = self.packages.get(package_id)
        if package is None:
            return None
        resources = list(package.values())
        if self._shuffle:
            self._rng.shuffle(resources)
        result = {"name": package_id, "resources": [r.to_json(i) for i, r in enumerate(resources)]}
        return {
            "help": f"{origin}/api/3/action/help_show?name=package_show",
            "success": True,
            "result": result,
        }


def _error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"success": False, "error": {"message": message, "__type": "Not Found"}}, status=status
    )
