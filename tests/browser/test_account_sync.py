"""The account's state follows it across its devices (issue #11, docs/protocol.md sections 22.8
and 23): contacts, read positions and the read-receipts setting, through the end-to-end
encrypted state log; a server that tampers with the log (drops, replays or reorders entries,
forks the log, serves a stale snapshot) is detected and shown, and the state kept."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import Page, Route, expect

from protocol.encoding import b64u_decode
from protocol.engine import SyncState
from tests.client.test_account_sync import assert_unreadable_after
from tests.support.actors import now_ms
from tests.support.browser import DESKTOP, PHONE
from tests.support.rewriting import other_branch, rewrite_json, substitute_entry, unless_closed
from tests.support.web import (
    SLOW,
    add_contact,
    collect_errors,
    fetch_json,
    link_companion,
    new_primary,
    new_username,
    open_chats,
    open_conversation,
    send,
    unread_badge,
    wait_until,
)

WITHIN_A_SECOND = 1_000


def contact_row(page: Page, peer: str):
    return page.locator(f'#conversation-list [data-peer="{peer}"]')


STORED_SYNC = """() => new Promise((resolve, reject) => {
    const open = indexedDB.open("parley");
    open.onsuccess = () => {
        const get = open.result.transaction("meta").objectStore("meta").get("sync");
        get.onsuccess = () => resolve(get.result ?? null);
        get.onerror = () => reject(get.error);
    };
})"""
SYNCED_VERSION = f"async () => (await ({STORED_SYNC})())?.account.version ?? 0"


def synced_version(page: Page) -> int:
    """The version of the account's log this browser holds (its stored sync state)."""
    return page.evaluate(SYNCED_VERSION)


def wait_synced(page: Page, above: int) -> None:
    wait_until(page, f"async () => (await ({SYNCED_VERSION})()) > {above}")


def stored_sync(page: Page) -> SyncState:
    """This browser's stored sync state (IndexedDB meta "sync")."""
    return SyncState.from_dict(page.evaluate(STORED_SYNC))


# the state and the queue read in one transaction: a run that takes a change from the queue
# stores both in one, and two reads could see the state before it and the queue after it
SETTLED = """() => new Promise((resolve, reject) => {
    const open = indexedDB.open("parley");
    open.onsuccess = () => {
        const meta = open.result.transaction("meta").objectStore("meta");
        const state = meta.get("sync");
        const queued = meta.get("sync-queue");
        queued.onsuccess = () => resolve(Boolean(state.result) && (queued.result ?? []).length === 0
            && state.result.pending.length === 0 && state.result.request === null
            && !state.result.rotate);
        queued.onerror = () => reject(queued.error);
    };
})"""


def holds(page: Page, text: str) -> None:
    """Wait until the browser's sync state holds `text` (a contact is listed before its change
    is queued for the log)."""
    wait_until(
        page, f"async () => JSON.stringify(await ({STORED_SYNC})()).includes({json.dumps(text)})"
    )


def settled(*pages: Page) -> int:
    """Wait until each browser has nothing left to write, re-key or read (each writes its own last use
    when it loads, at a moment of its own) and all hold the same version; that version."""
    deadline = time.monotonic() + SLOW / 1000
    while True:
        for page in pages:
            wait_until(page, SETTLED)
        versions = {synced_version(page) for page in pages}
        if len(versions) == 1:
            return versions.pop()
        assert time.monotonic() < deadline, f"the devices never agreed: versions {versions}"
        pages[0].wait_for_timeout(100)


def test_a_contact_added_on_the_primary_and_a_nickname_given_on_a_companion_reach_every_device(
    new_device, screenshot
):
    alice, _ = new_primary(new_device(viewport=DESKTOP), new_username("alice"))
    bob = new_username("bob")
    new_primary(new_device(), bob)
    laptop = new_device(viewport=DESKTOP).new_page()
    tablet = new_device(viewport=PHONE).new_page()
    errors = collect_errors(laptop)
    link_companion(alice, laptop, "Laptop")
    link_companion(alice, tablet, "Tablet")
    for page in (laptop, tablet):
        open_chats(page)
        # both hold the account's sync key before anything is added
        wait_synced(page, 0)

    open_chats(alice)
    add_contact(alice, bob)
    for page in (laptop, tablet):
        expect(contact_row(page, bob)).to_be_visible(timeout=WITHIN_A_SECOND)
    screenshot(laptop, "sync-contact-laptop-1440")
    screenshot(tablet, "sync-contact-tablet-390")

    # A nickname given on one companion is the account's: the others show it too.
    laptop.goto(f"/chats/{bob}/contact")
    laptop.get_by_label("Nickname").fill("Bobby")
    laptop.get_by_role("button", name="Save").click()
    expect(laptop.locator("#nickname-message")).to_have_text(
        "Nickname saved. Only your devices see it."
    )
    for page in (alice, tablet):
        expect(contact_row(page, bob).locator(".person-name")).to_have_text(
            "Bobby", timeout=WITHIN_A_SECOND
        )
    assert not errors


def test_a_removed_companion_with_the_old_key_and_the_whole_log_reads_nothing_written_after(
    new_device,
):
    alice, _ = new_primary(new_device(viewport=DESKTOP), new_username("alice"))
    bob, carol = new_username("bob"), new_username("carol")
    for name in (bob, carol):
        new_primary(new_device(), name)
    laptop = new_device(viewport=DESKTOP).new_page()
    link_companion(alice, laptop, "Laptop")
    open_chats(laptop)
    open_chats(alice)
    add_contact(alice, bob)
    expect(contact_row(laptop, bob)).to_be_visible(timeout=SLOW)
    # what the laptop holds when it is removed: the account's key and state
    held = stored_sync(laptop)
    assert held.keys

    alice.goto("/devices")
    alice.get_by_role("button", name="Log out Laptop").click()
    alice.get_by_role("dialog").get_by_role("button", name="Log out").click()
    expect(laptop.get_by_role("heading", name="This device was logged out")).to_be_visible(
        timeout=SLOW
    )
    open_chats(alice)
    alice.get_by_label("Add a contact by username").fill(carol)
    alice.get_by_role("button", name="Add", exact=True).click()
    expect(contact_row(alice, carol)).to_be_visible(timeout=SLOW)
    holds(alice, carol)

    # The state is written again under a new key the laptop never got: its copy of the old
    # key and a full copy of the server's log show nothing of carol.
    settled(alice)
    after = stored_sync(alice)
    assert (carol,) in after.account.collection("contacts")
    assert {k.key_id for k in after.keys} - {k.key_id for k in held.keys}
    log = fetch_json(alice, "/api/state?after=0")
    entries = [(e["version"], b64u_decode(e["blob"])) for e in log["entries"]]
    assert_unreadable_after(entries, held.account, held.keys, carol.encode())


def test_reading_on_a_companion_clears_the_unread_count_on_the_primary(new_device):
    alice_name = new_username("alice")
    alice, _ = new_primary(new_device(viewport=DESKTOP), alice_name)
    bob_name = new_username("bob")
    bob, _ = new_primary(new_device(), bob_name)
    laptop = new_device(viewport=PHONE).new_page()
    link_companion(alice, laptop, "Laptop")
    open_chats(alice)
    add_contact(alice, bob_name)
    open_chats(bob)
    add_contact(bob, alice_name)
    send(bob, "Are you there?")

    open_chats(alice, "/chats")
    expect(unread_badge(alice, bob_name)).to_have_text("1", timeout=SLOW)
    open_chats(laptop, "/chats")
    expect(contact_row(laptop, bob_name)).to_be_visible(timeout=SLOW)
    expect(unread_badge(laptop, bob_name)).to_have_text("1", timeout=SLOW)

    open_conversation(laptop, bob_name)
    expect(unread_badge(alice, bob_name)).to_have_count(0, timeout=SLOW)


def test_a_companion_linked_without_history_has_every_contact_and_setting(new_device, screenshot):
    alice, _ = new_primary(new_device(viewport=DESKTOP), new_username("alice"))
    friends = [new_username("bob"), new_username("carol")]
    for name in friends:
        new_primary(new_device(), name)
    open_chats(alice)
    for name in friends:
        add_contact(alice, name)
    alice.get_by_label("Send read receipts").uncheck()
    settled(alice)

    laptop = new_device(viewport=PHONE).new_page()
    link_companion(alice, laptop, "Laptop")  # history not chosen
    open_chats(laptop)
    # the key comes over the pairwise session from the approving device, then the log is read
    for name in friends:
        expect(contact_row(laptop, name)).to_be_visible(timeout=SLOW)
    expect(laptop.get_by_label("Send read receipts")).not_to_be_checked(timeout=SLOW)
    screenshot(laptop, "sync-new-companion-390")


STATE_READS = re.compile(r".*/api/state\?after=\d+$")


def test_a_page_left_while_the_sync_waits_on_the_server_loses_none_of_what_it_read(new_device):
    """A new device's first page reads the account's contacts and is left before its run ends
    (the run still waits on the server: here the log's second page, on a loaded machine its
    own last use written after the read). The state it stored holds the contacts, and it never
    reads them from the log again: the next page applies them."""
    alice, _ = new_primary(new_device(viewport=DESKTOP), new_username("alice"))
    friends = [new_username("bob"), new_username("carol")]
    for name in friends:
        new_primary(new_device(), name)
    open_chats(alice)
    for name in friends:
        add_contact(alice, name)
    alice.get_by_label("Send read receipts").uncheck()
    settled(alice)

    # The laptop's read from the start comes as two pages (all but the last entry, then the
    # last), and the second page is held until the laptop has left the page that asked.
    laptop = new_device(viewport=PHONE).new_page()
    held: list[Route] = []
    released = False

    def in_two_pages(route: Route) -> None:
        if route.request.method != "GET" or released:
            route.fallback()
        elif not route.request.url.endswith("?after=0"):
            held.append(route)
        else:
            with unless_closed():
                response = route.fetch()
                body = response.json()
                if response.status == 200 and len(body["entries"]) > 1:
                    body["entries"], body["more"] = body["entries"][:-1], True
                route.fulfill(response=response, body=json.dumps(body))

    laptop.route(STATE_READS, in_two_pages)
    link_companion(alice, laptop, "Laptop")
    wait_synced(laptop, 0)  # the first page is read and stored, the second asked for
    deadline = time.monotonic() + SLOW / 1000
    while not held:
        assert time.monotonic() < deadline, "the laptop never asked for the log's second page"
        laptop.wait_for_timeout(50)
    released = True
    open_chats(laptop)
    for name in friends:
        expect(contact_row(laptop, name)).to_be_visible(timeout=SLOW)
    expect(laptop.get_by_label("Send read receipts")).not_to_be_checked(timeout=SLOW)
    for route in held:
        with unless_closed():
            route.abort()


@pytest.mark.parametrize(
    "misbehaviour, expected",
    [
        ("dropped", "the server left out"),
        ("replayed", "the server replayed an old change"),
        ("reordered", re.compile(r"the server reordered the changes: version \d+ came before")),
    ],
)
def test_a_dropped_replayed_or_reordered_state_entry_is_refused_and_the_state_kept(
    new_device, screenshot, misbehaviour, expected
):
    alice, _ = new_primary(new_device(viewport=DESKTOP), new_username("alice"))
    bob, carol = new_username("bob"), new_username("carol")
    for name in (bob, carol):
        new_primary(new_device(), name)
    laptop = new_device(viewport=DESKTOP).new_page()
    link_companion(alice, laptop, "Laptop")
    open_chats(laptop)
    open_chats(alice)
    add_contact(alice, bob)
    expect(contact_row(laptop, bob)).to_be_visible(timeout=SLOW)
    held = settled(laptop, alice)
    old_entries = fetch_json(laptop, "/api/state?after=0")["entries"]

    # From now on the server leaves out the laptop's next changes, serves an old one again,
    # or serves them in the wrong order (and, until there are two, says nothing is new).
    def misbehave(body):
        entries = body["entries"]
        if misbehaviour == "reordered":
            if len(entries) < 2:
                body["entries"], body["version"] = [], held
            else:
                body["entries"] = entries[::-1]
        elif entries:
            body["entries"] = [] if misbehaviour == "dropped" else old_entries[-1:]
        return body

    hits = rewrite_json(laptop, STATE_READS, "GET", misbehave)
    add_contact(alice, carol)
    holds(alice, carol)
    settled(alice)  # carol is one entry of the log: the change below is another
    alice.get_by_label("Send read receipts").uncheck()
    notice = laptop.locator("#sync-refused")
    expect(notice).to_contain_text("were not updated from your other devices", timeout=SLOW)
    expect(notice).to_contain_text(expected, timeout=SLOW)
    assert hits
    screenshot(laptop, f"sync-refused-{misbehaviour}-1440")
    laptop.set_viewport_size(PHONE)
    screenshot(laptop, f"sync-refused-{misbehaviour}-390")

    # The laptop kept its last good state: bob is there, carol is not, its setting is as it
    # was, and nothing was applied.
    expect(contact_row(laptop, bob)).to_be_visible()
    expect(contact_row(laptop, carol)).to_have_count(0)
    expect(laptop.get_by_label("Send read receipts")).to_be_checked()
    assert synced_version(laptop) == held

    # An honest server again: the next read passes and the notice goes.
    laptop.unroute_all(behavior="wait")  # no answer left half-rewritten
    laptop.reload()
    expect(contact_row(laptop, carol)).to_be_visible(timeout=SLOW)
    expect(laptop.get_by_label("Send read receipts")).not_to_be_checked(timeout=SLOW)
    expect(notice).to_have_count(0, timeout=SLOW)


def test_a_stale_snapshot_to_a_new_companion_and_a_forked_log_are_refused_and_shown(
    new_device, screenshot
):
    alice, _ = new_primary(new_device(viewport=DESKTOP), new_username("alice"))
    bob = new_username("bob")
    new_primary(new_device(), bob)
    open_chats(alice)
    add_contact(alice, bob)
    wait_synced(alice, 1)  # the first key's snapshot, then bob: version 2

    # A new companion is served the log as it was at version 1 (the first key's empty
    # snapshot); the key it gets from the primary says the primary is at version 2.
    def stale(body):
        body["entries"] = [e for e in body["entries"] if e["version"] <= 1]
        body["version"] = min(body["version"], 1)
        return body

    laptop_device = new_device(viewport=PHONE)
    laptop = laptop_device.new_page()
    stale_hits = rewrite_json(laptop, STATE_READS, "GET", stale)
    link_companion(alice, laptop, "Laptop")
    open_chats(laptop)
    notice = laptop.locator("#sync-refused")
    expect(notice).to_contain_text(
        re.compile(
            r"the server serves a stale state: an own device is at version \d+, "
            r"the log ends at version 1"
        ),
        timeout=SLOW,
    )
    assert stale_hits
    expect(contact_row(laptop, bob)).to_have_count(0)
    assert synced_version(laptop) == 0
    laptop.unroute_all(behavior="wait")  # no answer left half-rewritten
    laptop.reload()
    expect(contact_row(laptop, bob)).to_be_visible(timeout=SLOW)
    expect(notice).to_have_count(0, timeout=SLOW)

    # A fork: an own device removed bob at version v + 1 on a branch the server shows only
    # the laptop, while the primary writes its own v + 1. The laptop is closed meanwhile, so
    # the primary's checkpoint waits for it; on opening it reads the other branch first.
    open_chats(alice)
    version = settled(laptop, alice)
    fork = version + 1
    other = other_branch(stored_sync(laptop), removes=("contacts", bob), now=now_ms())
    laptop.close()
    alice.get_by_label("Send read receipts").uncheck()
    wait_synced(alice, version)
    laptop = laptop_device.new_page()
    rewrite_json(laptop, STATE_READS, "GET", substitute_entry(fork, other))
    open_chats(laptop)

    # Each device's checkpoint tells the other: both refuse and say so.
    forked = (
        f"the server forked the log: another own device has a different change at version {fork}"
    )
    expect(laptop.locator("#sync-refused")).to_contain_text(forked, timeout=SLOW)
    refused = alice.locator("#sync-refused")
    expect(refused).to_contain_text(forked, timeout=SLOW)
    screenshot(alice, "sync-refused-forked-1440")
    alice.set_viewport_size(PHONE)
    screenshot(alice, "sync-refused-forked-390")
    # The primary kept its state: bob is its contact, its setting as it set it, its version.
    expect(contact_row(alice, bob)).to_be_visible()
    expect(alice.get_by_label("Send read receipts")).not_to_be_checked()
    assert synced_version(alice) == fork
    # The refusal stands: a reload reads the log again and still refuses.
    alice.reload()
    expect(refused).to_contain_text(forked, timeout=SLOW)
    assert synced_version(alice) == fork
