"""A misbehaving server (DESIGN section 7) against the browser client: answers are rewritten
in the test with Playwright's `page.route`, while the real server keeps its honest state.
Each forgery is refused where the person sees it, and nothing of it is accepted."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from protocol.encoding import b64u_encode
from protocol.keys import generate_identity, generate_signed_prekey
from protocol.linking import make_provisioning, parse_link_url, seal_provisioning
from protocol.rng import system_rng
from tests.support.rewriting import inject_device, rewrite_json, swap_key
from tests.support.web import (
    SLOW,
    add_contact,
    approve,
    bubble,
    collect_errors,
    expect_status,
    fetch_json,
    link_companion,
    new_primary,
    new_username,
    open_approval,
    open_chats,
    send,
    show_link_code,
    wait_linked,
)

LIST_REFUSED = re.compile(r"The device list (was refused|is malformed)")
DO_NOT_TRUST = "Do not trust changes to this account's devices."


@pytest.mark.parametrize("forge", [inject_device, swap_key], ids=["added-device", "swapped-key"])
def test_a_forged_own_device_list_is_refused_on_the_devices_page(new_device, forge, screenshot):
    primary, _ = new_primary(new_device())

    def forged(body):
        body["device_list"] = forge(body["device_list"])
        return body

    hits = rewrite_json(primary, "**/api/devices", "GET", forged)
    primary.reload()
    warning = primary.locator("#devices-message")
    expect(warning).to_contain_text(LIST_REFUSED, timeout=SLOW)
    expect(warning).to_contain_text(DO_NOT_TRUST)
    assert hits
    screenshot(primary, f"devices-forged-list-{forge.__name__}-1440")

    # Nothing was accepted: the honest list (version 1) is still the one this browser holds.
    primary.unroute("**/api/devices")
    primary.reload()
    expect(primary.locator("#device-list .device")).to_have_count(1, timeout=SLOW)
    expect(warning).not_to_contain_text(LIST_REFUSED)


def test_a_device_injected_into_a_contacts_list_is_refused_in_the_messenger(new_device):
    alice, _ = new_primary(new_device())
    bob_name = new_username("bob")
    new_primary(new_device(), bob_name)
    open_chats(alice)

    def forged(body):
        body["device_list"] = inject_device(body["device_list"])
        return body

    url = f"**/api/accounts/{bob_name}/device-list"
    hits = rewrite_json(alice, url, "GET", forged)
    alice.get_by_label("Add a contact by username").fill(bob_name)
    alice.get_by_role("button", name="Add", exact=True).click()
    expect(alice.locator("#add-contact-message")).to_contain_text(LIST_REFUSED, timeout=SLOW)
    assert hits
    expect(alice.locator(f'#conversation-list [data-peer="{bob_name}"]')).to_have_count(0)

    # The honest list is then accepted, with Bob's one real device.
    alice.unroute(url)
    add_contact(alice, bob_name)
    listed = fetch_json(alice, f"/api/accounts/{bob_name}/device-list")["device_list"]
    assert len(listed["devices"]) == 1


def test_a_stale_but_validly_signed_list_is_refused_as_a_rollback(new_device, screenshot):
    primary, _ = new_primary(new_device())
    version_one = fetch_json(primary, "/api/devices")["device_list"]
    assert version_one["version"] == 1
    link_companion(primary, new_device().new_page(), "Laptop")
    primary.goto("/devices")
    expect(primary.locator("#device-list .device")).to_have_count(2, timeout=SLOW)
    assert fetch_json(primary, "/api/devices")["device_list"]["version"] == 2

    def rollback(body):
        body["device_list"] = version_one
        return body

    hits = rewrite_json(primary, "**/api/devices", "GET", rollback)
    primary.reload()
    warning = primary.locator("#devices-message")
    expect(warning).to_contain_text(LIST_REFUSED, timeout=SLOW)
    expect(warning).to_contain_text(DO_NOT_TRUST)
    assert hits
    expect(warning).to_contain_text("expected greater than 2, got 1")
    screenshot(primary, "devices-rollback-refused-1440")

    primary.unroute("**/api/devices")
    primary.reload()
    expect(primary.locator("#device-list .device")).to_have_count(2, timeout=SLOW)
    expect(warning).not_to_contain_text(LIST_REFUSED)


def _qr_parts(url: str) -> tuple[str, bytes, bytes]:
    """link id, companion identity key and ephemeral key of a QR URL `...#v1.id.key.eph`."""
    code = parse_link_url(url, origin=url.split("/link/approve#", 1)[0])
    return code.link_id, code.identity_key, code.ephemeral_key


@pytest.mark.parametrize("swap", ["identity-key", "link-id"])
def test_a_swapped_provisioning_payload_is_refused_by_the_new_browser(new_device, swap, screenshot):
    primary, _ = new_primary(new_device())
    companion = new_device().new_page()
    url = show_link_code(companion)
    link_id, companion_key, ephemeral = _qr_parts(url)
    attacker = generate_identity(system_rng)
    forged = make_provisioning(
        attacker,
        account_id=new_username("mallory"),
        # sealed to this browser, but signed for another key or for another link id
        companion_identity_key=generate_identity(system_rng).public
        if swap == "identity-key"
        else companion_key,
        link_id=link_id
        if swap == "identity-key"
        else ("y" if link_id[0] == "x" else "x") + link_id[1:],
    )
    if swap == "link-id":
        assert forged.link_id != link_id
    sealed = b64u_encode(seal_provisioning(forged, ephemeral))

    def substitute(body):
        if body.get("provisioning"):
            body["provisioning"] = sealed
        return body

    hits = rewrite_json(companion, f"**/api/link/{link_id}", "GET", substitute)
    signed: list[str] = []
    companion.on(
        "request",
        lambda r: (
            signed.append(r.url) if r.url.endswith(("/device-signature", "/redeem")) else None
        ),
    )
    open_approval(primary, url)
    approve(primary, "Laptop")
    expect(companion.locator("#link-refused-text")).to_contain_text(
        "The approval was not signed for this browser's key and this code, so it was refused.",
        timeout=SLOW,
    )
    screenshot(companion, f"link-swapped-provisioning-{swap}-1440")
    assert hits
    assert signed == []  # no device signature, no redeemed token
    primary.goto("/devices")
    expect(primary.locator("#device-list .device")).to_have_count(1, timeout=SLOW)


def test_a_substituted_bundle_identity_key_is_refused_and_nothing_is_sent(new_device, screenshot):
    alice_name, bob_name = new_username("alice"), new_username("bob")
    alice, _ = new_primary(new_device(), alice_name)
    bob, _ = new_primary(new_device(), bob_name)
    open_chats(alice)
    add_contact(alice, bob_name)
    open_chats(bob)
    errors = collect_errors(alice)
    delivered: list[str] = []
    bob.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived",
            lambda payload: (
                delivered.append(payload)
                if isinstance(payload, str) and '"deliver"' in payload
                else None
            ),
        ),
    )
    bob.reload()
    open_chats(bob)

    def substitute(body):
        for bundle in body["bundles"]:
            # a complete, well-signed bundle of another identity (the server's own key)
            other = generate_identity(system_rng)
            prekey = generate_signed_prekey(other, bundle["signed_prekey"]["id"], system_rng)
            bundle["identity_key"] = b64u_encode(other.public)
            bundle["signed_prekey"] = {
                "id": prekey.id,
                "public_key": b64u_encode(prekey.key.public),
                "signature": b64u_encode(prekey.signature),
            }
            bundle["one_time_prekey"] = None
        return body

    hits = rewrite_json(alice, f"**/api/accounts/{bob_name}/bundles", "POST", substitute)
    send(alice, "Meant for Bob only")
    expect_status(alice, "Meant for Bob only", "failed")
    reason = bubble(alice, "Meant for Bob only").locator(".message-reason")
    expect(reason).to_contain_text("identity key differs from the signed device list")
    screenshot(alice, "conversation-substituted-bundle-1440")
    assert hits
    time.sleep(1)
    assert delivered == []
    expect(bob.locator(f'#conversation-list [data-peer="{alice_name}"]')).to_have_count(0)
    assert not [e for e in errors if "Meant for Bob" in e]


def test_a_link_token_redeemed_by_another_browser_is_refused_and_the_owner_still_links(
    new_device,
):
    primary, _ = new_primary(new_device())
    companion = new_device().new_page()
    url = show_link_code(companion)
    link_id, _, _ = _qr_parts(url)
    thief = new_device().new_page()
    thief.goto("/link")  # a browser with its own link cookie, not this link's
    answers = thief.evaluate(
        """async (id) => {
          const out = [];
          for (const [method, path, body] of [
            ["POST", `/api/link/${id}/redeem`, {signature: "A".repeat(86)}],
            ["GET", `/api/link/${id}`, null],
          ]) {
            const r = await fetch(path, {
              method,
              headers: body
                ? {
                    "Content-Type": "application/json",
                    "X-CSRFToken": document.cookie.match(/csrftoken=([^;]+)/)[1],
                  }
                : {},
              body: body ? JSON.stringify(body) : undefined,
            });
            out.push([r.status, await r.json()]);
          }
          return out;
        }""",
        link_id,
    )
    for status, body in answers:
        assert status == 404, answers
        assert body["error"]["code"] == "link_not_found", answers

    open_approval(primary, url)
    approve(primary, "Laptop")
    wait_linked(primary, companion, "Laptop")
    # The thief was signed into nothing.
    assert thief.evaluate("async () => (await fetch('/api/devices')).status") in (401, 403)
