"""The link session's table of moves (devices.linkstates), checked move by move without a
database, and what a link session keeps of the new device's prekeys."""

from __future__ import annotations

import itertools

import pytest

from devices.linking import StagedPrekeys
from devices.linkstates import (
    TRANSITIONS,
    UNFINISHED,
    LinkMoveRefused,
    LinkRefused,
    link_move,
    move_check,
    sources_of,
)
from devices.models import LinkSession
from devices.schemas import OneTimePrekeyIn, SignedPrekeyIn

S = LinkSession.State

ALLOWED = {
    (S.WAITING, S.APPROVED),
    (S.APPROVED, S.SIGNED),
    (S.SIGNED, S.LINKED),
    (S.LINKED, S.REDEEMED),
    *((state, S.CANCELLED) for state in (S.WAITING, S.APPROVED, S.SIGNED)),
    *((state, S.ACCOUNT_FULL) for state in (S.WAITING, S.APPROVED, S.SIGNED)),
}


def test_the_table_names_every_state_and_only_states():
    assert set(TRANSITIONS) == set(S.values)
    assert all(targets <= set(S.values) for targets in TRANSITIONS.values())


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S.values, S.values)))
def test_each_move_is_allowed_exactly_when_the_protocol_says(current, target):
    if (current, target) in ALLOWED:
        move_check(current, target)
        return
    with pytest.raises(LinkMoveRefused) as refused:
        move_check(current, target)
    assert isinstance(refused.value, LinkRefused)
    assert (refused.value.current, refused.value.target) == (current, target)
    assert refused.value.code in {"link_state", "link_used"}
    assert refused.value.status == {"link_state": 409, "link_used": 410}[refused.value.code]


@pytest.mark.parametrize(
    ("current", "target", "code", "message"),
    [
        (S.APPROVED, S.APPROVED, "link_used", "This link request was already approved."),
        (S.SIGNED, S.APPROVED, "link_used", "This link request was already approved."),
        (S.WAITING, S.SIGNED, "link_state", "not waiting for the new device's signature"),
        (S.APPROVED, S.LINKED, "link_state", "not ready to complete"),
        (S.SIGNED, S.REDEEMED, "link_state", "This device is not linked yet."),
        (S.CANCELLED, S.REDEEMED, "link_state", "This device is not linked yet."),
        (S.REDEEMED, S.REDEEMED, "link_used", "This link was already used to sign in."),
    ],
)
def test_a_refused_move_says_what_the_client_can_do(current, target, code, message):
    with pytest.raises(LinkMoveRefused) as refused:
        move_check(current, target)
    assert refused.value.code == code
    assert message in refused.value.message


def test_finished_requests_move_nowhere_and_every_state_is_reachable_from_waiting():
    assert {s for s, targets in TRANSITIONS.items() if not targets} == {
        S.REDEEMED,
        S.CANCELLED,
        S.ACCOUNT_FULL,
    }
    reached, frontier = {S.WAITING}, [S.WAITING]
    while frontier:
        for target in TRANSITIONS[frontier.pop()] - reached:
            reached.add(target)
            frontier.append(target)
    assert reached == set(S.values)


def test_only_unfinished_requests_may_be_cancelled_or_closed_for_the_cap():
    assert set(UNFINISHED) == {S.WAITING, S.APPROVED, S.SIGNED}
    assert sources_of(S.CANCELLED) == sources_of(S.ACCOUNT_FULL) == UNFINISHED


def test_link_move_changes_the_state_only_when_allowed():
    link = LinkSession(state=S.WAITING)
    link_move(link, S.APPROVED)
    assert link.state == S.APPROVED
    with pytest.raises(LinkMoveRefused):
        link_move(link, S.REDEEMED)
    assert link.state == S.APPROVED


def test_staged_prekeys_come_back_as_they_were_stored():
    staged = StagedPrekeys(
        signed_prekey=SignedPrekeyIn(key_id=7, public_key=b"\x01" * 32, signature=b"\x02" * 64),
        one_time_prekeys=[
            OneTimePrekeyIn(key_id=n, public_key=bytes([n]) * 32) for n in range(1, 4)
        ],
    )
    assert StagedPrekeys.from_json(staged.to_json()) == staged
