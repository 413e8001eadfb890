"""Canonical JSON: the same data always gives the same bytes (sorted keys, one number format),
so that an upstream re-serialising its answer is not mistaken for a change."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical(value: Any) -> bytes:
    """Sorted keys, no whitespace, integral floats as integers (``1.0`` is ``1``)."""
    return json.dumps(
        plain_numbers(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def canonical_hash(value: Any) -> str:
    """sha256 of the canonical form."""
    return hashlib.sha256(canonical(value)).hexdigest()


def plain_numbers(value: Any) -> Any:
    """The value with integral floats as integers, all the way down (``101.0`` is ``101``)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_numbers(item) for item in value]
    return value
