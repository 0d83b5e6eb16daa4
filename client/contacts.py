"""Contacts in this client (docs/protocol.md section 22.8): they follow the account, added
and removed on any own device through the account's synced state, and the approving device
sends the account sync key to a newly linked one. The sync machine decides; this is the part
of its adapter a person drives."""

from __future__ import annotations

from typing import Any

from client.api import ApiError
from client.events import Event
from client.sending import OutgoingMessage, Sender
from client.sync import run_events
from protocol.content import ContentType
from protocol.encoding import b64u_encode
from protocol.exceptions import SyncKeyUnknown

NO_SYNC_KEY = (
    "This device has not received the account's sync key yet; open Parley on another of "
    "your devices."
)


class ContactRefused(Exception):
    """A contact could not be added or removed; `code` says why, the message in words."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class AccountSync(Sender):
    def contacts(self) -> dict[str, dict[str, Any]]:
        """The account's contacts as this device last read them: username -> {account_key,
        added_at, nickname}."""
        found = self.sync.state.account.collection("contacts")
        return {index[0]: value for index, value in sorted(found.items())}

    @property
    def sync_pending(self) -> int:
        """Changes the server has not stored yet (they go out with the next run)."""
        return len(self.sync.state.pending)

    @property
    def sync_key_awaited(self) -> bool:
        """The log holds entries under a key this device has not received yet (from an own
        device, over the pairwise session): it can read and write nothing until it comes."""
        state = self.sync.state
        unknown = state.refused is not None and state.refused[0] == SyncKeyUnknown.__name__
        return unknown or (state.newest_key is None and state.account.version > 0)

    def sync_fetch(self, version: int | None = None) -> list[Event]:
        """Read the account's state log: on (re)connect (`version` None) and on each
        `state_changed {version}`."""
        return run_events(self.sync.fetch(version), me=self.account_id)

    def share_sync_key(self) -> list[Event]:
        """This device linked another: the account's sync key for it (the machine makes the
        first one when the account has none), as a SyncKeyOwed to send."""
        return run_events(self.sync.share_key(), me=self.account_id)

    def prepare_sync_key(self, body: dict[str, Any]) -> OutgoingMessage | None:
        """The `send` frame of a SyncKeyOwed: to the other own devices only (None: none)."""
        return self.prepare_own(ContentType.ACCOUNT_SYNC_KEY, body)

    def prepare_sync_checkpoint(self, body: dict[str, Any]) -> OutgoingMessage | None:
        """The `send` frame of a SyncCheckpointOwed: to the other own devices only."""
        return self.prepare_own(ContentType.ACCOUNT_SYNC_CHECKPOINT, body)

    def add_contact(self, username: str) -> list[Event]:
        """Verify the contact's signed device list (the account key pinned at first use, as a
        send does) and write the contact to the account's state, as the browser does. A
        contact already there is left as it is."""
        name = username.strip()
        if not name:
            raise ContactRefused("Give a username.", code="invalid_input")
        if name == self.account_id:
            raise ContactRefused(
                "That is your own account: your other devices get what you send automatically.",
                code="own_account",
            )
        events = self._ready_to_write()
        if name in self.contacts():
            return events
        try:
            accepted = self.refresh_list(name)
        except ApiError as error:
            if error.code == "account_not_found":
                raise ContactRefused(
                    f"There is no Parley account named {name!r}.", code="account_not_found"
                ) from error
            raise
        value = {
            "account_key": b64u_encode(accepted.device_list.account_key),
            "added_at": self.clock(),
            "nickname": "",
        }
        return events + run_events(
            self.sync.mutate(("contacts", (name,), value)), me=self.account_id
        )

    def remove_contact(self, username: str) -> list[Event]:
        """Remove a contact on every own device (a tombstone in the account's state)."""
        name = username.strip()
        events = self._ready_to_write()
        if name not in self.contacts():
            raise ContactRefused(f"{name!r} is not in your contacts.", code="not_a_contact")
        return events + run_events(
            self.sync.mutate(("contacts", (name,), None)), me=self.account_id
        )

    def _ready_to_write(self) -> list[Event]:
        """Read the log first, so that a change is written on the newest state: a device
        without the account's key, or whose last read was refused, writes nothing (the
        machine would hold the change back), and says so."""
        events = self.sync_fetch()
        if self.sync_key_awaited:
            raise ContactRefused(NO_SYNC_KEY, code="sync_key_awaited")
        refused = self.sync.state.refused
        if refused is not None:
            raise ContactRefused(
                f"Refused the server's copy of your account's state: {refused[1]}",
                code="sync_refused",
            )
        return events
