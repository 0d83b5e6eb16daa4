"""`python -m client <command>`: a command-line Parley device.

    link    link this terminal to your account (QR code shown here, approved on your phone)
    status  which account and device this is, and whether the server still accepts it
    send    send an end-to-end-encrypted text to someone (all their devices and yours)
    send-file USER PATH
            send a file, end-to-end encrypted and uploaded once, with its progress shown
    listen  show incoming messages, receipts, device and contact changes as they arrive,
            and save the files that come (--save-to DIR, default the current directory)
    chats   the conversations on this device, the most recent first, with what is unread
    read USER
            show the conversation with USER and mark it read, on each of your devices
    contacts list | add USER | remove USER
            the account's contacts, the same on every device of the account (synced
            end-to-end encrypted; an added contact's device list is verified first)
    group list | create NAME USER... | add GROUP USER... | remove GROUP USER...
          | leave GROUP | rename GROUP NAME | send GROUP TEXT
            the groups this device holds, and changing and writing to one (GROUP: its
            name or id); `listen` shows group messages and changes
    logout  log this device out and delete its keys

Exit status: 0 done, 1 refused or failed (the reason is printed), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import qrcode

from client import api
from client.api import ApiError, ServerUnreachable
from client.attachments import FileAltered, download_file, upload_file
from client.connection import (
    Connected,
    ConnectionEvent,
    DeviceConnection,
    FrameRefused,
    LoggedOut,
    PrekeysRefilled,
    SendFailed,
)
from client.contacts import NO_SYNC_KEY
from client.devicelists import accept_device_list, fetch_device_list
from client.events import (
    OWED_TO_OWN_DEVICES,
    Event,
    FileMessage,
    GroupFile,
    GroupText,
    file_size,
    retry_event,
)
from client.groups import GroupRefused
from client.http import HttpTransport, server_origin
from client.linking import Approved, Linked, LinkEvent, LinkFailed, QrShown, link_device
from client.messenger import (
    ContactRefused,
    ListWarning,
    Messenger,
    OutgoingMessage,
    ReceiptOwed,
    Refused,
    SendRefused,
    SentTranscript,
    SyncWarning,
    TextMessage,
    describe,
    format_time,
)
from client.signin import DeviceLoggedOut, ensure_signed_in, log_out
from client.store import OwnDevice, Store, StoreError, default_store_path
from client.verify import load_hashes, verify_static
from protocol.encoding import b64u_encode
from protocol.exceptions import ProtocolError


class CommandError(Exception):
    """A failure to print as is, exit status 1."""


def render_qr(text: str) -> str:
    """The QR code in half-block characters, light modules drawn (for dark terminals)."""
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_L)
    code.add_data(text)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue()


def _store_path(args: argparse.Namespace) -> Path:
    if args.store:
        return Path(args.store).expanduser()
    if args.server:
        return default_store_path(server_origin(args.server))
    raise CommandError("Give --server URL (or --store PATH) to say which device to use.")


def _not_linked(args: argparse.Namespace, path: Path) -> CommandError:
    """The error for a missing device, with the `link` command that would make one here."""
    command = f"python -m client link --server {args.server or 'URL'}"
    if args.store:
        command += f" --store {args.store}"
    return CommandError(f"No device is linked in {path}. Run `{command}` first.")


def _open_linked(args: argparse.Namespace) -> tuple[Store, OwnDevice]:
    path = _store_path(args)
    if not path.exists():
        raise _not_linked(args, path)
    store = Store.open(path)
    device = store.device()
    if device is None:
        store.close()
        raise _not_linked(args, path)
    if args.server and server_origin(args.server) != device.server:
        store.close()
        raise CommandError(f"{path} holds a device of {device.server}, not of {args.server}.")
    return store, device


def _transport(store: Store, device: OwnDevice) -> HttpTransport:
    transport = HttpTransport(device.server)
    transport.import_cookies(store.server_cookies())
    return transport


# ---------------------------------------------------------------- commands


def cmd_link(args: argparse.Namespace, out: TextIO) -> int:
    if not args.server:
        raise CommandError("Give the server to link to: --server https://parley.example")
    origin = server_origin(args.server)
    path = _store_path(args)
    store = Store.open(path)
    try:
        existing = store.device()
        if existing is not None:
            raise CommandError(
                f"{path} already holds device {existing.device_id} of account "
                f"{existing.account_id}. Log it out first, or use another --store."
            )
        transport = HttpTransport(origin)

        def report(event: LinkEvent) -> None:
            if isinstance(event, QrShown):
                if event.replaces:
                    print("\nThat code expired; here is a new one.", file=out)
                print("Scan this code with your phone's camera, or open this link on it:", file=out)
                print(render_qr(event.url), file=out)
                print(event.url, file=out)
                print(f"Check code: {event.request.check_code}", file=out)
                print("Only approve it on a phone you are holding now.", file=out)
                print("Waiting for approval…", file=out, flush=True)
            elif isinstance(event, Approved):
                print(f"Linking to {event.account_id}…", file=out, flush=True)
            elif isinstance(event, Linked):
                print(f"Linked as device {event.device_id}.", file=out, flush=True)

        link_device(transport, store, origin=origin, name=args.name, report=report)
        store.save_server_cookies(transport.export_cookies())
    finally:
        store.close()
    return 0


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    store, device = _open_linked(args)
    transport = _transport(store, device)
    print(f"Server:  {device.server}", file=out)
    print(f"Account: {device.account_id}", file=out)
    print(f"Device:  {device.device_id} ({device.name})", file=out)
    try:
        me, signed_in_again = ensure_signed_in(transport, device)
    except DeviceLoggedOut:
        store.wipe()
        print("This device was logged out. Its keys were deleted from this computer.", file=out)
        return 1
    store.save_server_cookies(transport.export_cookies())
    if me.get("device", {}).get("device_id") != device.device_id:
        store.close()
        raise CommandError("The server answered for another device; not trusting this session.")
    note = " (signed in again with this device's key)" if signed_in_again else ""
    print(f"Session: accepted by the server{note}", file=out)
    try:
        listed = accept_device_list(
            store,
            fetch_device_list(transport, device.account_id),
            expected_account_key=device.account_key,
        )
    except ProtocolError as error:
        store.close()
        raise CommandError(f"Refused the account's device list: {error}") from error
    if listed.device_list.entry(device.device_id) is None:
        print(
            f"Devices: version {listed.version} no longer lists this device (removed by the primary)",
            file=out,
        )
    else:
        print(
            f"Devices: {len(listed.device_list.devices)} in the signed list, version {listed.version}",
            file=out,
        )
        try:
            answer = api.get(transport, "/api/devices")
        except ApiError:
            answer = {}
        for listed_device in answer.get("devices") or ():
            print(f"  {_device_line(listed_device)}", file=out)
    print(f"One-time prekeys left here: {len(store.one_time_prekeys())}", file=out)
    store.close()
    return 0


def _device_line(device: dict[str, object]) -> str:
    """One own device as the devices page shows it: its name (any own device may change it)."""
    notes = [
        n
        for n, on in (
            ("primary", device.get("is_primary")),
            ("this device", device.get("this_device")),
        )
        if on
    ]
    name = device.get("name") or device.get("device_id")
    return f"{name} ({', '.join(notes)})" if notes else str(name)


def _messenger(args: argparse.Namespace, out: TextIO) -> Messenger | None:
    """The linked device, signed in (again, with its key, if the session expired); None
    after telling the user when the server logged it out (its keys are then deleted)."""
    store, device = _open_linked(args)
    transport = _transport(store, device)
    try:
        ensure_signed_in(transport, device)
    except DeviceLoggedOut:
        store.wipe()
        print("This device was logged out. Its keys were deleted from this computer.", file=out)
        return None
    except BaseException:
        store.close()
        raise
    store.save_server_cookies(transport.export_cookies())
    return Messenger(store, transport)


def cmd_send(args: argparse.Namespace, out: TextIO) -> int:
    messenger = _messenger(args, out)
    if messenger is None:
        return 1
    sent = _sending(
        messenger,
        out,
        lambda c: c.send_text(args.user, args.text, within=args.timeout),
        within=args.timeout,
        late=f"The server did not accept the message within {args.timeout} s; it may not "
        "have been sent. Sending again is safe only from a fresh `send`.",
    )
    if sent is None:
        return 1
    print(
        f"Sent to {args.user} ({_devices(len(sent.recipient_devices))}); {_copies(sent)}", file=out
    )
    return 0


def cmd_send_file(args: argparse.Namespace, out: TextIO) -> int:
    path = Path(args.path).expanduser()
    if not path.is_file():
        raise CommandError(f"{path} is not a file.")
    messenger = _messenger(args, out)
    if messenger is None:
        return 1
    transport = messenger.transport
    assert isinstance(transport, HttpTransport)
    try:
        shown = _progress(out, f"Uploading {path.name}")
        pointer = upload_file(transport, path, messenger.rng, progress=shown)
    except BaseException:
        messenger.store.close()
        raise
    sent = _sending(
        messenger,
        out,
        lambda c: c.send_file(args.user, pointer, within=args.timeout),
        within=args.timeout,
        late=f"The server did not accept the message within {args.timeout} s; the file was "
        "uploaded but may not have been sent.",
    )
    if sent is None:
        return 1
    print(
        f"Sent {pointer.name} ({file_size(pointer.size)}) to {args.user} "
        f"({_devices(len(sent.recipient_devices))}); {_copies(sent)}",
        file=out,
    )
    return 0


def _sending(
    messenger: Messenger,
    out: TextIO,
    send: Callable[[DeviceConnection], Awaitable[OutgoingMessage]],
    *,
    within: float,
    late: str,
) -> OutgoingMessage | None:
    """One send on a connection of its own; None when the device was logged out (said), a
    refusal or the server's silence (`late`) as a CommandError; the store closed at the end."""

    async def run() -> OutgoingMessage:
        assert isinstance(messenger.transport, HttpTransport)
        connection = DeviceConnection(messenger, messenger.transport, receive=False)
        await connection.start(within=within)
        try:
            return await send(connection)
        finally:
            await connection.close(flush=0)

    try:
        return asyncio.run(run())
    except DeviceLoggedOut:
        print("This device was logged out. Its keys were deleted from this computer.", file=out)
        return None
    except TimeoutError:
        raise CommandError(late) from None
    except SendRefused as error:
        raise CommandError(f"Not sent: {error}") from error
    finally:
        if messenger.store.path.exists():
            messenger.store.close()


def _progress(out: TextIO, what: str) -> Callable[[int, int], None]:
    """Progress of a transfer: one line redrawn on a terminal, else a line at each quarter."""
    terminal = out.isatty()
    told = -1

    def show(done: int, total: int) -> None:
        nonlocal told
        percent = 100 if total == 0 else done * 100 // total
        step = percent if terminal else percent // 25 * 25
        if step == told:
            return
        told = step
        line = f"{what}: {percent}% ({file_size(done)} of {file_size(total)})"
        print(
            f"\r{line}" if terminal else line,
            end="" if terminal and percent < 100 else "\n",
            file=out,
            flush=True,
        )

    return show


def _devices(count: int) -> str:
    return f"{count} device{'s' if count != 1 else ''}"


def _copies(sent: OutgoingMessage) -> str:
    """Where the sent transcript went: this account's other devices (section 10, type 3)."""
    if not sent.own_devices:
        return "no other device of yours to copy it to"
    count = len(sent.own_devices)
    return "a copy to your other device" if count == 1 else f"a copy to your {count} other devices"


def cmd_listen(args: argparse.Namespace, out: TextIO) -> int:
    messenger = _messenger(args, out)
    if messenger is None:
        return 1
    count = 1 if args.once else args.count
    save_to = Path(args.save_to).expanduser()
    try:
        return asyncio.run(
            _listen(messenger, out, count=count, seconds=args.seconds, save_to=save_to)
        )
    finally:
        if messenger.store.path.exists():
            messenger.store.close()


async def _listen(
    messenger: Messenger,
    out: TextIO,
    *,
    count: int | None,
    seconds: float | None,
    save_to: Path,
) -> int:
    transport = messenger.transport
    assert isinstance(transport, HttpTransport)
    me = messenger.account_id
    stop = asyncio.Event()
    shown = 0
    status = 0
    saving: set[asyncio.Task[None]] = set()

    def counted() -> None:
        nonlocal shown
        shown += 1
        if count is not None and shown >= count:
            stop.set()

    async def save(event: FileMessage | GroupFile) -> None:
        """A file that came is fetched, checked and saved; the message counts once saved."""
        try:
            path = await asyncio.to_thread(download_file, transport, event.pointer, save_to)
            print(f"Saved {event.pointer.name} to {path}", file=out, flush=True)
        except FileAltered as error:
            print(error, file=out, flush=True)
        except (ApiError, ServerUnreachable) as error:
            print(f"Could not fetch {event.pointer.name}: {error}", file=out, flush=True)
        counted()

    def show(event: ConnectionEvent) -> None:
        nonlocal status
        line: str | None
        if isinstance(event, Connected):
            line = (
                "Reconnected."
                if event.reconnect
                else f"Listening as {me} ({messenger.device.device_id})…"
            )
        elif isinstance(event, LoggedOut):
            line = "This device was logged out. Its keys were deleted from this computer."
            status = 1
            stop.set()
        elif isinstance(event, SendFailed):
            line = f"Could not send to {event.recipient}: {event.reason}"
        elif isinstance(event, PrekeysRefilled):
            line = event.error  # silent when it worked
        elif isinstance(event, FrameRefused):
            line = f"Skipped a frame from the server: {event.reason}"
        else:
            line = describe(event, me=me, name=messenger.shown, device=messenger.device_name)
        if line is not None:
            print(line, file=out, flush=True)
        if isinstance(event, FileMessage | GroupFile):
            task = asyncio.get_running_loop().create_task(save(event))
            saving.add(task)
            task.add_done_callback(saving.discard)
        elif isinstance(event, TextMessage | SentTranscript | GroupText):
            counted()

    connection = DeviceConnection(messenger, transport, on_event=show)
    started = time.monotonic()
    await connection.start()
    try:
        remaining = None if seconds is None else max(0.0, seconds - (time.monotonic() - started))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), remaining)
    finally:
        for task in list(saving):  # a file being saved when the listening ends is not kept
            task.cancel()
        await asyncio.gather(*saving, return_exceptions=True)
        if connection.logged_out is None:
            await connection.close()
    return status


GROUP_ARGUMENTS = {  # what each action takes after it
    "list": (0, 0),
    "create": (2, None),  # NAME USER...
    "add": (2, None),
    "remove": (2, None),
    "leave": (1, 1),
    "rename": (2, 2),
    "send": (2, 2),
}


def cmd_group(args: argparse.Namespace, out: TextIO) -> int:
    least, most = GROUP_ARGUMENTS[args.action]
    given = len(args.rest)
    if given < least or (most is not None and given > most):
        usage = {
            "list": "group list",
            "create": "group create NAME USER...",
            "add": "group add GROUP USER...",
            "remove": "group remove GROUP USER...",
            "leave": "group leave GROUP",
            "rename": "group rename GROUP NAME",
            "send": "group send GROUP TEXT",
        }[args.action]
        raise CommandError(f"Usage: python -m client {usage}")
    messenger = _messenger(args, out)
    if messenger is None:
        return 1
    try:
        return _group(messenger, args, out)
    except GroupRefused as error:
        raise CommandError(str(error)) from error
    finally:
        if messenger.store.path.exists():
            messenger.store.close()


def _group(messenger: Messenger, args: argparse.Namespace, out: TextIO) -> int:
    me, rest = messenger.account_id, args.rest

    def show(events: Sequence[Event]) -> None:
        for event in events:
            line = describe(event, me=me, name=messenger.shown, device=messenger.device_name)
            if line is not None:
                print(line, file=out)

    if args.action == "list":
        records = [r for r in messenger.groups() if r.chain is not None]
        if not records:
            print("No groups on this device.", file=out)
        for record in records:
            chain = record.chain
            assert chain is not None
            member = "" if me in chain.members else " (you are no longer a member)"
            people = ", ".join(messenger.shown(m) for m in sorted(chain.members))
            print(f"{chain.name} ({b64u_encode(record.group_id)}){member}: {people}", file=out)
        return 0
    if args.action == "create":
        group_id, events = messenger.group_create(rest[0], rest[1:])
        show(events)
        print(f"Created {rest[0]!r} ({group_id}).", file=out)
        return 0
    group_id = b64u_encode(messenger.find_group(rest[0]).group_id)
    if args.action == "send":
        asyncio.run(_send_group(messenger, group_id, rest[1], within=args.timeout))
        print(f"Sent to the group {rest[0]!r}.", file=out)
        return 0
    show(messenger.group_fetch(group_id))  # on the log's head before changing it
    if args.action in ("add", "remove"):
        show(messenger.group_change(group_id, args.action, rest[1:]))
    elif args.action == "leave":
        show(messenger.group_change(group_id, "leave"))
    else:
        show(messenger.group_change(group_id, "rename", name=rest[1]))
    return 0


async def _send_group(messenger: Messenger, group_id: str, text: str, *, within: float) -> None:
    assert isinstance(messenger.transport, HttpTransport)
    connection = DeviceConnection(messenger, messenger.transport, receive=False)
    await connection.start(within=within)
    try:
        await connection.send_group_text(group_id, text, within=within)
    finally:
        await connection.close(flush=0)


def cmd_contacts(args: argparse.Namespace, out: TextIO) -> int:
    if args.action != "list" and not args.user:
        raise CommandError(f"Give the username: python -m client contacts {args.action} USER")
    messenger = _messenger(args, out)
    if messenger is None:
        return 1
    try:
        return _contacts(messenger, args, out)
    except ContactRefused as error:
        raise CommandError(str(error)) from error
    finally:
        if messenger.store.path.exists():
            messenger.store.close()


def _contacts(messenger: Messenger, args: argparse.Namespace, out: TextIO) -> int:
    if args.action == "list":
        events = messenger.sync_fetch()
    elif args.action == "add":
        events = messenger.add_contact(args.user)
    else:
        events = messenger.remove_contact(args.user)
    for event in events:
        if isinstance(event, SyncWarning):
            print(describe(event, me=messenger.account_id), file=out)
    owed = [e for e in events if isinstance(e, OWED_TO_OWN_DEVICES)]
    if owed:  # a first key this write made, this device's new checkpoint (23.8): for the others
        asyncio.run(_share(messenger, owed))
    if args.action != "list" and messenger.sync_pending:
        raise CommandError(
            "The server has not stored the change yet; it goes out with the next `contacts` "
            "or `listen` on this device."
        )
    if args.action == "add":
        print(f"{args.user.strip()} is in your contacts, on each of your devices.", file=out)
        return 0
    if args.action == "remove":
        print(f"Removed {args.user.strip()} from your contacts, on each of your devices.", file=out)
        return 0
    refused = messenger.sync.state.refused
    if messenger.sync_key_awaited:
        print(NO_SYNC_KEY, file=out)
    elif refused is not None:
        print(f"Refused the server's copy of your account's state: {refused[1]}", file=out)
    contacts = messenger.contacts()
    if not contacts:
        print("No contacts yet. Add one: python -m client contacts add USER", file=out)
    for username, value in contacts.items():
        added = value.get("added_at")
        since = (
            time.strftime(" (added %Y-%m-%d)", time.localtime(added / 1000))
            if isinstance(added, int)
            else ""
        )
        print(f"{messenger.shown(username)}{since}", file=out)
    return 0


async def _share(messenger: Messenger, owed: Sequence[Event]) -> None:
    assert isinstance(messenger.transport, HttpTransport)
    connection = DeviceConnection(messenger, messenger.transport, receive=False)
    await connection.start()
    try:
        await connection.emit(list(owed))
    finally:
        await connection.close()


def _caught_up(messenger: Messenger, out: TextIO, *, within: float) -> int:
    """Connect, take in what the server queued for this device and read the account's state
    (another device may have read a conversation), then close. 1 when logged out."""
    transport = messenger.transport
    assert isinstance(transport, HttpTransport)
    status = 0

    def show(event: ConnectionEvent) -> None:
        """What a person must not miss while this device catches up (the messages themselves
        are shown from the store afterwards)."""
        nonlocal status
        if isinstance(event, LoggedOut):
            print("This device was logged out. Its keys were deleted from this computer.", file=out)
            status = 1
        elif isinstance(event, SendFailed):
            print(f"Could not send to {event.recipient}: {event.reason}", file=out)
        elif isinstance(event, FrameRefused):
            print(f"Skipped a frame from the server: {event.reason}", file=out)
        elif isinstance(event, Refused | ListWarning | SyncWarning):
            print(describe(event, me=messenger.account_id, name=messenger.shown), file=out)

    async def run() -> None:
        connection = DeviceConnection(messenger, transport, on_event=show)
        await connection.start(within=within)
        try:
            with contextlib.suppress(DeviceLoggedOut):  # told by `show`
                await connection.caught_up(within=within)
        finally:
            if connection.logged_out is None:
                await connection.close()

    asyncio.run(run())
    return status


def _line(message: dict[str, Any], *, peer_name: str) -> str:
    """One stored message: "[12:00:01] Bob Smith: hi", "[12:00:05] you: hello"."""
    at = format_time(message["timestamp"])
    who = "you" if message["outgoing"] else peer_name
    if message["kind"] == "attachment":
        pointer = message["attachment"]
        return f"[{at}] {who}: a file, {pointer['name']} ({file_size(pointer['size'])})"
    if message["kind"] != "text":
        return f"[{at}] {peer_name} sent a message this version of Parley cannot show"
    return f"[{at}] {who}: {message['text']}"


def cmd_chats(args: argparse.Namespace, out: TextIO) -> int:
    messenger = _messenger(args, out)
    if messenger is None:
        return 1
    try:
        if _caught_up(messenger, out, within=args.timeout):
            return 1
        summaries = messenger.conversation_list()
        if not summaries:
            print("No conversations yet. Send a message: python -m client send USER TEXT", file=out)
        for summary in summaries:
            unread = f" · {summary.unread} unread" if summary.unread else ""
            print(f"{messenger.shown(summary.peer)}{unread}", file=out)
            name = messenger.name_of(summary.peer)
            print(f"  {_line(summary.last, peer_name=name)}", file=out)
        return 0
    finally:
        if messenger.store.path.exists():
            messenger.store.close()


def cmd_read(args: argparse.Namespace, out: TextIO) -> int:
    messenger = _messenger(args, out)
    if messenger is None:
        return 1
    peer = args.user.strip()
    try:
        if _caught_up(messenger, out, within=args.timeout):
            return 1
        messages = messenger.store.messages(peer)
        if not messages:
            print(f"No messages with {messenger.shown(peer)} on this device.", file=out)
            return 0
        unread = set(messenger.unread(peer))
        shown = messages[-args.last :] if args.last else messages
        print(f"Conversation with {messenger.shown(peer)}", file=out)
        name = messenger.name_of(peer)
        for message in shown:
            mark = "* " if message["id"] in unread else "  "
            print(f"{mark}{_line(message, peer_name=name)}", file=out)
        for record in messenger.undecryptable(peer):  # what did not decrypt (yet)
            line = describe(retry_event(record), me=messenger.account_id, name=messenger.shown)
            print(f"  {line}", file=out)
        events = messenger.read_conversation(peer)
        for event in events:
            if isinstance(event, SyncWarning):
                print(describe(event, me=messenger.account_id), file=out)
        owed = [e for e in events if isinstance(e, ReceiptOwed)]
        if owed:
            asyncio.run(_send_receipts(messenger, owed, within=args.timeout))
        if unread:
            what = "1 new message" if len(unread) == 1 else f"{len(unread)} new messages"
            print(f"({what}, marked *; now read on each of your devices)", file=out)
        return 0
    finally:
        if messenger.store.path.exists():
            messenger.store.close()


def cmd_retry(args: argparse.Namespace, out: TextIO) -> int:
    """Ask again for the messages of USER that could not be decrypted (docs/protocol.md
    24.2, `retry_again`): each one's asks start over; `listen` shows them when they come."""
    messenger = _messenger(args, out)
    if messenger is None:
        return 1
    peer = args.user.strip()
    try:
        if _caught_up(messenger, out, within=args.timeout):
            return 1
        failed = [r for r in messenger.undecryptable(peer) if r.state == "failed"]
        if not failed:
            print(f"No message from {messenger.shown(peer)} failed to decrypt here.", file=out)
            return 0
        asyncio.run(_ask_again(messenger, peer, within=args.timeout))
        what = "1 message" if len(failed) == 1 else f"{len(failed)} messages"
        print(
            f"Asked {messenger.shown(peer)} again for {what} that could not be decrypted; "
            "`listen` shows them when they come.",
            file=out,
        )
        return 0
    finally:
        if messenger.store.path.exists():
            messenger.store.close()


async def _ask_again(messenger: Messenger, peer: str, *, within: float) -> None:
    assert isinstance(messenger.transport, HttpTransport)
    connection = DeviceConnection(messenger, messenger.transport, receive=False)
    await connection.start(within=within)
    try:
        await connection.emit(messenger.ask_again(peer))
    finally:
        await connection.close(flush=within)


async def _send_receipts(messenger: Messenger, owed: list[ReceiptOwed], *, within: float) -> None:
    assert isinstance(messenger.transport, HttpTransport)
    connection = DeviceConnection(messenger, messenger.transport, receive=False)
    await connection.start(within=within)
    try:
        await connection.send_receipts(owed)
    finally:
        await connection.close()


def cmd_logout(args: argparse.Namespace, out: TextIO) -> int:
    store, device = _open_linked(args)
    transport = _transport(store, device)
    try:
        log_out(transport, device)
    except DeviceLoggedOut:
        print("The server had already logged this device out.", file=out)
    except BaseException:
        store.close()
        raise
    store.wipe()
    print("Logged out. This device's keys were deleted from this computer.", file=out)
    return 0


def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    hashes = load_hashes(Path(args.hashes)) if args.hashes else load_hashes()
    origin = server_origin(args.url)
    mismatches = verify_static(origin, hashes)
    total = len(hashes["files"])
    for m in mismatches:
        served = "not served" if m.served is None else f"served {m.served[:16]}…"
        print(f"MISMATCH {m.path}: expected {m.expected[:16]}…, {served}", file=out)
    if mismatches:
        print(
            f"{len(mismatches)} of {total} assets differ from release {hashes['release_digest'][:16]}…",
            file=out,
        )
        return 1
    print(f"All {total} static assets match release {hashes['release_digest'][:16]}…", file=out)
    return 0


# ---------------------------------------------------------------- entry point


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m client", description="A Parley device.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, help: str, run: Callable[[argparse.Namespace, TextIO], int]
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("--server", help="the Parley server, e.g. https://parley.example")
        sub.add_argument(
            "--store",
            help="this device's state file (default: ~/.parley/HOST_PORT.sqlite3 for the "
            "server's host and port, e.g. localhost_8000.sqlite3 for http://localhost:8000; "
            "HOST.sqlite3 when the URL has no port)",
        )
        sub.set_defaults(run=run)
        return sub

    link = command("link", "link this terminal to your account as a new device", cmd_link)
    link.add_argument(
        "--name", default=f"{socket.gethostname()[:40]} (terminal)", help="this device's name"
    )
    command("status", "show this device and whether the server still accepts it", cmd_status)
    send = command("send", "send an end-to-end-encrypted text to USER", cmd_send)
    send.add_argument("user", metavar="USER", help="the recipient's username")
    send.add_argument("text", metavar="TEXT", help="the message")
    send.add_argument(
        "--timeout", type=float, default=20.0, help="seconds to wait for the server (default 20)"
    )
    send_file = command(
        "send-file",
        "send a file to USER, end-to-end encrypted (it is uploaded once)",
        cmd_send_file,
    )
    send_file.add_argument("user", metavar="USER", help="the recipient's username")
    send_file.add_argument("path", metavar="PATH", help="the file (at most 25 MB)")
    send_file.add_argument(
        "--timeout", type=float, default=20.0, help="seconds to wait for the server (default 20)"
    )
    listen = command(
        "listen",
        "show incoming messages and contact changes as they arrive, and save the files that come",
        cmd_listen,
    )
    listen.add_argument(
        "--save-to",
        default=".",
        metavar="DIR",
        help="where received files are saved (default: the current directory)",
    )
    bounds = listen.add_mutually_exclusive_group()
    bounds.add_argument("--once", action="store_true", help="stop after the first message")
    bounds.add_argument("--count", type=int, help="stop after N messages")
    listen.add_argument("--seconds", type=float, help="stop after S seconds")
    contacts = command(
        "contacts",
        "list, add or remove the account's contacts (the same on each of your devices)",
        cmd_contacts,
    )
    contacts.add_argument("action", choices=("list", "add", "remove"), help="what to do")
    contacts.add_argument("user", metavar="USER", nargs="?", help="the contact's username")
    chats = command(
        "chats", "list the conversations on this device with their unread counts", cmd_chats
    )
    read = command(
        "read", "show the conversation with USER and mark it read on each of your devices", cmd_read
    )
    read.add_argument("user", metavar="USER", help="the other person's username")
    read.add_argument(
        "--last", type=int, default=20, help="show the last N messages (default 20; 0: all)"
    )
    retry = command(
        "retry", "ask USER again for their messages that could not be decrypted", cmd_retry
    )
    retry.add_argument("user", metavar="USER", help="the sender's username")
    for sub in (chats, read, retry):
        sub.add_argument(
            "--timeout",
            type=float,
            default=15.0,
            help="seconds to wait for the server (default 15)",
        )
    group = command(
        "group",
        "list your groups, create one, add or remove members, leave, rename, or send to one",
        cmd_group,
    )
    group.add_argument("action", choices=tuple(GROUP_ARGUMENTS), help="what to do")
    group.add_argument(
        "rest", nargs="*", metavar="ARG", help="the group (name or id), then names or text"
    )
    group.add_argument(
        "--timeout", type=float, default=20.0, help="seconds to wait for the server (default 20)"
    )
    command("logout", "log this device out and delete its keys", cmd_logout)
    verify = commands.add_parser(
        "verify", help="compare a server's static assets with the published hashes"
    )
    verify.add_argument("url", metavar="URL", help="the Parley server, e.g. https://parley.example")
    verify.add_argument("--hashes", help="the published hashes (default docs/static-hashes.json)")
    verify.set_defaults(run=cmd_verify)
    return top


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args, out))
    except KeyboardInterrupt:
        print("\nStopped.", file=sys.stderr)
        return 130
    except (CommandError, LinkFailed, StoreError, ServerUnreachable, ValueError) as error:
        print(f"Error: {error}", file=sys.stderr)
    except ApiError as error:
        print(f"The server refused: {error.message}", file=sys.stderr)
    except ProtocolError as error:
        print(f"Refused: {error}", file=sys.stderr)
    return 1
