"""The pure decisions of the poll cycle, from tables of cases."""

from __future__ import annotations

import pytest

from pollerd.core.detect import (
    HeadAction,
    Verdict,
    after_fetch,
    after_head,
    conditional_validators,
    probe_strategy,
    strategy_after_get,
)
from pollerd.core.model import ResourceState, Strategy, Validators

V1 = Validators('"e1"', "Mon, 21 Aug 2023 08:45:52 GMT")
V2 = Validators('"e2"', "Mon, 21 Aug 2023 08:46:52 GMT")
NONE = Validators()
AUTO, HEAD, COND, ALWAYS = Strategy.AUTO, Strategy.HEAD, Strategy.CONDITIONAL, Strategy.ALWAYS


def known(validators: Validators = V1, sha: str | None = "aa") -> ResourceState:
    """A resource state with stored content and validators."""
    return ResourceState("r", validators=validators, sha256=sha)


@pytest.mark.parametrize(
    ("configured", "state", "status", "validators", "expected"),
    [
        (AUTO, known(), 200, V1, HeadAction.UNCHANGED),
        (AUTO, known(), 200, V2, HeadAction.FETCH),
        (AUTO, known(sha=None), 200, V1, HeadAction.FETCH),  # nothing stored yet
        (AUTO, known(), 200, Validators(V1.etag, None), HeadAction.FETCH),  # half the validators
        (AUTO, known(), 200, NONE, HeadAction.FALL_BACK),
        (HEAD, known(), 200, NONE, HeadAction.FETCH),  # explicit head: cannot tell, so download
        (AUTO, known(), 405, NONE, HeadAction.FALL_BACK),
        (AUTO, known(), 501, NONE, HeadAction.FALL_BACK),
        (AUTO, known(), 403, NONE, HeadAction.FALL_BACK),
        (HEAD, known(), 403, NONE, HeadAction.FAIL),
        (AUTO, known(), 404, NONE, HeadAction.FAIL),  # a 404 is never "unchanged"
        (AUTO, known(), 503, V1, HeadAction.FAIL),
    ],
)
def test_after_head(
    configured: Strategy,
    state: ResourceState,
    status: int,
    validators: Validators,
    expected: HeadAction,
) -> None:
    """HEAD outcomes map to unchanged, fetch, fall back, or fail."""
    assert after_head(configured, state, status, validators) is expected


MD5 = "811dca1a4c5c6f1bb1ba2ec2c7dbc5d3"
MOVED = ResourceState("r", sha256="aa", size=120, md5=MD5)  # content held, validators cleared


@pytest.mark.parametrize(
    ("etag", "length", "expected"),
    [
        (f'"{MD5}"', 120, HeadAction.ADOPT),  # S3's ETag is the MD5: the same bytes, no download
        (f'"{MD5.upper()}"', 120, HeadAction.ADOPT),
        (f'"{MD5}"', 121, HeadAction.FETCH),  # the length disagrees
        (f'"{MD5}"', None, HeadAction.FETCH),  # no length (or an encoded one): cannot tell
        (f'W/"{MD5}"', 120, HeadAction.FETCH),  # a weak ETag says nothing of bytes
        (f'"{MD5}-2"', 120, HeadAction.FETCH),  # a multipart upload's ETag is no MD5 of the body
        ('"0123456789abcdef0123456789abcdef"', 120, HeadAction.FETCH),  # another content
    ],
)
def test_a_moved_file_with_its_md5_as_etag_is_adopted(
    etag: str, length: int | None, expected: HeadAction
) -> None:
    """After a move, HEAD's ETag and Content-Length decide whether the held bytes are served."""
    validators = Validators(etag, "Sun, 22 Oct 2023 12:10:00 GMT")
    assert after_head(AUTO, MOVED, 200, validators, length) is expected


@pytest.mark.parametrize(
    ("state", "sha", "validators", "expected"),
    [
        (known(sha=None), "aa", V1, Verdict.CHANGED),  # the first version is a change
        (known(), "bb", V1, Verdict.CHANGED),
        (known(), "bb", V2, Verdict.CHANGED),
        (known(), "aa", V2, Verdict.SAME_BYTES),
        (known(), "aa", V1, Verdict.UNCHANGED),
        (known(NONE), "aa", NONE, Verdict.UNCHANGED),
    ],
)
def test_after_fetch(state: ResourceState, sha: str, validators: Validators, expected: Verdict) -> None:
    """The content hash decides; new validators alone are SAME_BYTES."""
    assert after_fetch(state, sha, validators) is expected


@pytest.mark.parametrize(
    ("configured", "learned", "expected"),
    [
        (AUTO, None, HEAD),
        (AUTO, COND, COND),
        (AUTO, ALWAYS, ALWAYS),
        (COND, None, COND),
        (ALWAYS, HEAD, ALWAYS),
    ],
)
def test_probe_strategy(configured: Strategy, learned: Strategy | None, expected: Strategy) -> None:
    """Auto uses what it learned; an explicit strategy always wins."""
    state = ResourceState("r", learned_strategy=learned)
    assert probe_strategy(configured, state) is expected


def test_auto_learns_hashing_when_get_has_no_validators() -> None:
    """A conditional GET answered without validators means only hashing can tell."""
    assert strategy_after_get(AUTO, COND, NONE) is ALWAYS
    assert strategy_after_get(AUTO, COND, V1) is COND
    assert strategy_after_get(COND, COND, NONE) is COND


def test_conditional_validators_only_with_content_to_compare() -> None:
    """No If-None-Match before there is stored content, nor for plain hashing."""
    assert conditional_validators(COND, known()) == V1
    assert conditional_validators(COND, known(sha=None)) == NONE
    assert conditional_validators(ALWAYS, known()) == NONE
