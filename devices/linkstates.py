"""The states of a link session and the one table of moves between them.

waiting → approved → signed → linked → redeemed; any unfinished request (waiting, approved,
signed) may end as cancelled (the new browser gave up, or the primary declined) or
account_full (refused for the companion cap). "expired" is never stored: it is how an
unfinished request past its expiry reads (`devices.selectors.link_state`), and the expiry
job deletes it. Every change of `LinkSession.state` goes through `link_move` or, for the
endings, a conditional update over `sources_of` (docs/protocol.md section 19).
"""

from __future__ import annotations

from devices.models import LinkSession
from web.errors import AppError

State = LinkSession.State

TRANSITIONS: dict[str, frozenset[str]] = {
    State.WAITING: frozenset({State.APPROVED, State.CANCELLED, State.ACCOUNT_FULL}),
    State.APPROVED: frozenset({State.SIGNED, State.CANCELLED, State.ACCOUNT_FULL}),
    State.SIGNED: frozenset({State.LINKED, State.CANCELLED, State.ACCOUNT_FULL}),
    State.LINKED: frozenset({State.REDEEMED}),
    State.REDEEMED: frozenset(),
    State.CANCELLED: frozenset(),
    State.ACCOUNT_FULL: frozenset(),
}


def sources_of(target: str) -> frozenset[str]:
    """The states from which a request may move to `target`."""
    return frozenset(state for state, targets in TRANSITIONS.items() if target in targets)


# Unfinished: a request that may still end as cancelled, and so may also expire.
UNFINISHED = sources_of(State.CANCELLED)


class LinkRefused(AppError):
    code = "link_refused"
    status = 409


class LinkMoveRefused(LinkRefused):
    """A move the table does not allow. `code` says what the caller can do: `link_used` (410,
    start again with a new QR code) or `link_state` (409, not yet, or not by this step)."""

    code = "link_state"

    def __init__(self, message: str, *, current: str, target: str, code: str, status: int):
        super().__init__(message, code=code, status=status)
        self.current = current
        self.target = target


# What a refused move says, by the state it asked for; a repeat of a move already made may
# say something more precise.
_REFUSALS: dict[str, tuple[str, str, int]] = {
    State.APPROVED: ("This link request was already approved.", "link_used", 410),
    State.SIGNED: (
        "This link request is not waiting for the new device's signature.",
        "link_state",
        409,
    ),
    State.LINKED: ("This link request is not ready to complete.", "link_state", 409),
    State.REDEEMED: ("This device is not linked yet.", "link_state", 409),
    State.CANCELLED: ("This link request is already finished.", "link_used", 410),
    State.ACCOUNT_FULL: ("This link request is already finished.", "link_used", 410),
    State.WAITING: ("A link request never goes back to waiting.", "link_state", 409),
}
_REPEATS: dict[str, tuple[str, str, int]] = {
    State.REDEEMED: ("This link was already used to sign in.", "link_used", 410),
}


def move_check(current: str, target: str) -> None:
    """Refuse a move from `current` to `target` that the table does not allow."""
    if target in TRANSITIONS[current]:
        return
    message, code, status = (
        _REPEATS[target] if current == target and target in _REPEATS else _REFUSALS[target]
    )
    raise LinkMoveRefused(message, current=current, target=target, code=code, status=status)


def link_move(link: LinkSession, target: str) -> None:
    """Move `link` (locked by the caller, saved by the caller) to `target`, or refuse."""
    move_check(link.state, target)
    link.state = target
