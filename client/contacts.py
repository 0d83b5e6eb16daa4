"""Contacts in this client (docs/protocol.md section 22.8): they follow the account, added
and removed on any own device through the account's synced state, and the approving device
sends the account sync key to a newly linked one. The sync machine decides; this is the part
of its adapter a person drives."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from client import api
from client.api import ApiError, ServerUnreachable
from client.events import Event
from client.outgoing import OutgoingMessage
from client.sending import Sender
from protocol.content import ContentType
from protocol.encoding import b64u_encode
from protocol.exceptions import SyncKeyUnknown

MAX_NAME = 64  # the longest display name the server keeps (as the browser's names.js)

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
        return self.synced_events(self.sync.fetch(version))

    def own_devices_checked(self) -> list[Event]:
        """Fetch and verify the own list, and tell the sync machine which own devices it names
        and which the server reports logged out: it re-keys when one left (section 22.8),
        and the new key comes out as a SyncKeyOwed. Only after a fetch, because only the
        server's answer says who is suspended (this client keeps that in memory)."""
        own = self.refresh_list(self.account_id)
        return self.own_devices_listed(tuple(d.device_id for d in own.device_list.devices))

    def own_devices_listed(self, listed: tuple[str, ...]) -> list[Event]:
        """The sync machine's half of own_devices_checked, for a list the engine just fetched."""
        suspended = tuple(sorted(self.suspended.get(self.account_id, frozenset())))
        return self.synced_events(self.sync.devices_listed(listed, suspended))

    def share_sync_key(self) -> list[Event]:
        """This device linked another: the account's sync key for it (the machine makes the
        first one when the account has none), as a SyncKeyOwed to send."""
        return self.synced_events(self.sync.share_key())

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
        self.fetch_display_name(name)
        return events + self.synced_events(self.sync.mutate(("contacts", (name,), value)))

    def remove_contact(self, username: str) -> list[Event]:
        """Remove a contact on every own device (a tombstone in the account's state)."""
        name = username.strip()
        events = self._ready_to_write()
        if name not in self.contacts():
            raise ContactRefused(f"{name!r} is not in your contacts.", code="not_a_contact")
        return events + self.synced_events(self.sync.mutate(("contacts", (name,), None)))

    # ------------------------------------------------------------ names

    def fetch_display_name(self, username: str) -> str:
        """The display name the account chose, as the server says now (public, not end-to-end
        encrypted: GET /api/accounts/<u>/profile), kept for later; "" when it has none or
        the server cannot say now."""
        try:
            profile = api.get(self.transport, f"/api/accounts/{quote(username, safe='')}/profile")
        except (ApiError, ServerUnreachable):
            return ""
        found = profile.get("display_name") if isinstance(profile, dict) else None
        name = found[:MAX_NAME] if isinstance(found, str) else ""
        self.store.save_display_name(username, name)
        return name

    def name_of(self, username: str) -> str:
        """The name a person reads for an account, as the browser chooses it (names.js): a
        contact's nickname (it follows the account), else the display name the contact
        chose, else the username; the username of anyone who is not a contact."""
        contact = self.contacts().get(username)
        if contact is None:
            return username
        nickname = contact.get("nickname")
        if isinstance(nickname, str) and nickname.strip():
            return nickname
        known = self.store.display_name(username)
        if known is None:  # never asked (a contact another own device added)
            known = self.fetch_display_name(username)
        return known or username

    def shown(self, username: str) -> str:
        """The name with the username as secondary text: "Bob Smith (bob)", or "bob"."""
        name = self.name_of(username)
        return username if name == username else f"{name} ({username})"

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
