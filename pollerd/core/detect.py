"""Pure decisions of the poll cycle: which probe to use, whether to download, whether it changed.

Nothing here does I/O; every function is a table of cases (see tests/test_detect.py).
"""

from __future__ import annotations

import re
from enum import StrEnum

from pollerd.core.model import ResourceState, Strategy, Validators

HEAD_REFUSED = frozenset({403, 405, 501})
_MD5_ETAG = re.compile(r'"?([0-9a-fA-F]{32})"?')


class HeadAction(StrEnum):
    """What to do after a HEAD answered."""

    UNCHANGED = "unchanged"  # validators as stored: no download
    FETCH = "fetch"  # validators differ (or nothing stored yet): download
    FALL_BACK = "fall_back"  # HEAD is useless here: use a conditional GET from now on
    FAIL = "fail"  # an error status
    ADOPT = "adopt"  # new validators for the content held (its MD5 is the ETag): no download


class Verdict(StrEnum):
    """What a downloaded body means for the resource."""

    CHANGED = "changed"  # new content: an event
    SAME_BYTES = "same_bytes"  # new validators but identical bytes: counted, no event
    UNCHANGED = "unchanged"  # identical bytes and validators


def probe_strategy(configured: Strategy, state: ResourceState) -> Strategy:
    """The probe to use now: what was learned for this resource, else what was configured."""
    if configured is not Strategy.AUTO:
        return configured
    return state.learned_strategy or Strategy.HEAD


def after_head(
    configured: Strategy,
    state: ResourceState,
    status: int,
    validators: Validators,
    content_length: int | None = None,
) -> HeadAction:
    """Decide from a HEAD's status, validators and length."""
    if configured is Strategy.AUTO and status in HEAD_REFUSED:
        return HeadAction.FALL_BACK
    if not 200 <= status < 300:
        return HeadAction.FAIL
    if not validators:
        return HeadAction.FALL_BACK if configured is Strategy.AUTO else HeadAction.FETCH
    if (state.sha256 is not None or state.unpublished) and validators == state.validators:
        return HeadAction.UNCHANGED
    if is_content_md5(validators.etag, state) and content_length == state.size:
        return HeadAction.ADOPT
    return HeadAction.FETCH


def is_content_md5(etag: str | None, state: ResourceState) -> bool:
    """Whether ``etag`` is a plain, strong MD5 ETag (S3's for a single-part upload) equal to the
    MD5 of the content held. A weak or multipart ETag (``W/``, ``"…-3"``) says nothing of bytes."""
    if etag is None or state.md5 is None:
        return False
    match = _MD5_ETAG.fullmatch(etag.strip())
    return match is not None and match.group(1).lower() == state.md5


def strategy_after_get(configured: Strategy, current: Strategy, validators: Validators) -> Strategy:
    """What ``auto`` learns from a successful GET: without validators only hashing can tell."""
    if configured is Strategy.AUTO and current is Strategy.CONDITIONAL and not validators:
        return Strategy.ALWAYS
    return current


def conditional_validators(strategy: Strategy, state: ResourceState) -> Validators:
    """Validators to send with a GET: only for conditional GETs, and only with content to compare."""
    if strategy is Strategy.CONDITIONAL and state.sha256 is not None:
        return state.validators
    return Validators()


def after_fetch(state: ResourceState, sha256: str, validators: Validators) -> Verdict:
    """The content hash is the final judge."""
    if state.sha256 != sha256:
        return Verdict.CHANGED
    if validators != state.validators:
        return Verdict.SAME_BYTES
    return Verdict.UNCHANGED
