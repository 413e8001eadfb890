"""The bodies a replay serves: read from the recording (or rendered from a recipe, for a
generated night), checked against their SHA-256, with the recorded origins in them pointed at
the replay's own ports, and the most recent kept in memory."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from pollerd.record.archive import RECIPES, BodyDamaged, Recording

Renderer = Callable[[dict[str, Any]], bytes]
_CACHE_BYTES = 128 * 1024 * 1024
_REWRITE_BELOW = 16 * 1024 * 1024  # larger bodies are data files, served as recorded


class BodyMissing(Exception):
    """A body the recording names but does not hold (or a recipe that no longer renders it)."""


class Bodies:
    """Every body of a set of recordings, by SHA-256 (blocking: call from a thread)."""

    def __init__(self, recordings: list[Recording], renderers: Mapping[str, Renderer] | None = None) -> None:
        self._recordings = recordings
        self._renderers = dict(renderers or {})
        self._recipes: dict[str, dict[str, Any]] = {}
        for recording in recordings:
            path = recording.folder / RECIPES
            if path.exists():
                for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    recipe = json.loads(line)
                    if not isinstance(recipe, dict) or not isinstance(recipe.get("sha256"), str):
                        raise ValueError(f"{path}, line {number}: not a recipe")
                    self._recipes[recipe["sha256"]] = recipe
        self._rewrites: list[tuple[bytes, bytes]] = []
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()

    def point(self, origins: Mapping[str, str]) -> None:
        """Rewrite each recorded origin (``https://api.ap.org``) to its replay (``http://127.0.0.1:8001``)
        in the bodies served from now on; JSON's escaped slashes too."""
        pairs = []
        for recorded, local in sorted(origins.items(), key=lambda o: -len(o[0])):
            pairs.append((recorded.encode(), local.encode()))
            pairs.append((recorded.replace("/", "\\/").encode(), local.replace("/", "\\/").encode()))
        self._rewrites = pairs
        with self._lock:
            self._cache.clear()
            self._cached = 0

    def raw(self, sha256: str) -> bytes:
        """The body as recorded."""
        for recording in self._recordings:
            if recording.has_body(sha256):
                try:
                    return recording.body(sha256)
                except BodyDamaged as exc:
                    raise BodyMissing(f"the recording's body {sha256[:12]} is damaged ({exc})") from None
        recipe = self._recipes.get(sha256)
        if recipe is None:
            raise BodyMissing(f"the recording has no body {sha256[:12]}")
        renderer = self._renderers.get(str(recipe.get("renderer")))
        if renderer is None:
            raise BodyMissing(f"no renderer {recipe.get('renderer')!r} for body {sha256[:12]}")
        body = renderer(recipe)
        if hashlib.sha256(body).hexdigest() != sha256:
            raise BodyMissing(f"the recipe of body {sha256[:12]} renders other bytes (generator changed)")
        return body

    def pointed(self, body: bytes) -> bytes:
        """``body`` with the recorded origins in it pointed at the replay."""
        for recorded, local in self._rewrites:
            if recorded in body:
                body = body.replace(recorded, local)
        return body

    def served(self, sha256: str) -> bytes:
        """The body as the replay serves it: origins pointed at the replay."""
        with self._lock:
            body = self._cache.get(sha256)
            if body is not None:
                self._cache.move_to_end(sha256)
                return body
        body = self.raw(sha256)
        if len(body) < _REWRITE_BELOW:
            body = self.pointed(body)
        with self._lock:
            self._cache[sha256] = body
            self._cached += len(body)
            while self._cached > _CACHE_BYTES and len(self._cache) > 1:
                _, dropped = self._cache.popitem(last=False)
                self._cached -= len(dropped)
        return body
