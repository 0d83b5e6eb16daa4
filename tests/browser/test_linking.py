"""Linking a new browser to an account (DESIGN section 4): QR + check code on the new
browser, the anti-phishing approval with a passkey on the primary, and every refusal."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.support.browser import DESKTOP, PHONE, new_device_context
from tests.support.ports import free_port
from tests.support.server import start_server
from tests.support.web import (
    SLOW,
    approve,
    check_code,
    collect_errors,
    link_companion,
    new_device_notice,
    new_primary,
    open_approval,
    show_link_code,
    wait_linked,
)

NOT_VERIFIED = "Fingerprint or face not verified — nothing was approved"


def test_companions_link_by_scanner_and_by_url_every_device_is_told_and_a_used_link_is_refused(
    camera, live_app, new_device, screenshot
):
    context = camera.browser.new_context(base_url=live_app.url, viewport=DESKTOP)
    try:
        primary, _ = new_primary(context)
        errors = collect_errors(primary)
        laptop = new_device(viewport=DESKTOP).new_page()
        laptop_errors = collect_errors(laptop)
        laptop_url = url = show_link_code(laptop)
        assert url.startswith(f"{live_app.url}/link/approve#v1.")
        expect(laptop.locator("#link-check-code")).to_have_text(re.compile(r"^\d{3} \d{3}$"))
        expect(laptop.locator("#link-countdown")).to_contain_text("A new code appears")
        screenshot(laptop, "link-1440")

        # The primary scans the QR with its camera, in the page.
        camera.show(url)
        primary.goto("/devices")
        primary.get_by_role("link", name="Scan QR code").click()
        expect(
            primary.get_by_role("heading", name="Scan the code on your new device")
        ).to_be_visible()
        screenshot(primary, "approve-scanner-1440")
        primary.get_by_role("button", name="Turn on camera").click()
        expect(primary.get_by_role("heading", name="Link a new device?")).to_be_visible(
            timeout=SLOW
        )
        expect(primary.get_by_text("Only approve a device you are holding now.")).to_be_visible()
        expect(
            primary.get_by_text("Parley never asks you to link a device for support.")
        ).to_be_visible()
        expect(primary.locator("#approve-platform")).to_contain_text("on Linux")
        assert check_code(primary, "#approve-check-code") == check_code(laptop, "#link-check-code")
        expect(primary.get_by_label("Send my message history to this device")).not_to_be_checked()
        screenshot(primary, "approve-1440")
        approve(primary, "Work laptop")
        wait_linked(primary, laptop, "Work laptop")
        expect(laptop.locator("#device-list .device")).to_have_count(2)
        expect(laptop.locator('#device-list .device:has-text("This device")')).to_contain_text(
            "Work laptop"
        )

        # A second companion: the primary opens the QR's URL directly (a phone's camera app).
        phone = new_device(viewport=PHONE).new_page()
        url = show_link_code(phone)
        screenshot(phone, "link-390")
        primary.set_viewport_size(PHONE)
        open_approval(primary, url)
        screenshot(primary, "approve-390")
        approve(primary, "Tablet")
        wait_linked(primary, phone, "Tablet")
        screenshot(primary, "approve-done-390")
        expect(phone.locator("#device-list .device")).to_have_count(3)

        # Every older device already signed in is told, with a way to remove the new one:
        # a link to the devices page elsewhere, the button itself on the devices page.
        told = re.compile(r"^New device Tablet linked at \d\d:\d\d.* from .+\. Not you\? Remove it")
        for page in (primary, laptop):
            expect(new_device_notice(page, "Tablet")).to_have_text(told, timeout=SLOW)
        expect(
            new_device_notice(primary, "Tablet").get_by_role("link", name="Remove it")
        ).to_have_attribute("href", "/devices")
        expect(
            new_device_notice(laptop, "Tablet").get_by_role("button", name="Remove it")
        ).to_be_visible()
        expect(phone.locator(".new-device-notice")).to_have_count(0)
        expect(laptop.locator("#device-list .device")).to_have_count(3)
        screenshot(laptop, "devices-notice-1440")

        # The first QR's link was used: opening it again is refused.
        primary.goto("/devices")
        expect(primary.locator("#device-list .device")).to_have_count(3)
        primary.goto(laptop_url)
        expect(primary.locator("#approve-gate-text")).to_contain_text(
            "This link request was already used", timeout=SLOW
        )
        screenshot(primary, "approve-used-390")
        assert errors == [] and laptop_errors == []
    finally:
        context.close()


def test_failed_user_verification_approves_nothing(new_device, screenshot):
    primary, auth = new_primary(new_device())
    companion = new_device().new_page()
    url = show_link_code(companion)
    open_approval(primary, url)
    auth.set_user_verified(False)
    approve(primary, "Laptop")
    expect(primary.locator("#approve-message")).to_contain_text(NOT_VERIFIED, timeout=SLOW)
    screenshot(primary, "approve-not-verified-1440")
    expect(companion.locator("#link-qr")).to_be_visible()
    primary.goto("/devices")
    expect(primary.locator("#device-list .device")).to_have_count(1, timeout=SLOW)


def test_a_qr_whose_keys_differ_from_the_server_challenge_is_refused(new_device):
    primary, auth = new_primary(new_device())
    companion = new_device().new_page()
    url = show_link_code(companion)
    head, ephemeral = url.rsplit(".", 1)
    swapped = ephemeral[:-2] + ("AA" if ephemeral[-2:] != "AA" else "BA")
    open_approval(primary, f"{head}.{swapped}")
    sign_count = auth.credentials()[0]["signCount"]
    approve(primary, "Laptop")
    expect(primary.locator("#approve-message")).to_contain_text(
        "does not match the QR code you scanned", timeout=SLOW
    )
    assert auth.credentials()[0]["signCount"] == sign_count  # no assertion was made


def test_a_cancelled_link_offers_a_new_code(new_device, screenshot):
    primary, _ = new_primary(new_device())
    companion = new_device(viewport=PHONE).new_page()
    url = show_link_code(companion)
    companion.get_by_role("button", name="Cancel").click()
    expect(companion.get_by_text("You cancelled linking. Nothing was linked.")).to_be_visible()
    screenshot(companion, "link-cancelled-390")
    primary.goto(url)
    expect(primary.locator("#approve-gate-text")).to_contain_text("already used", timeout=SLOW)
    companion.get_by_role("button", name="Show a new code").click()
    qr = companion.locator("#link-qr")
    expect(qr).not_to_have_attribute("data-url", url, timeout=SLOW)
    expect(qr).to_have_attribute("data-url", re.compile(r"/link/approve#v1\."))
    expect(qr).to_be_visible()


@pytest.fixture
def short_ttl_app(tmp_path, redis_server):
    server = start_server(
        tmp_path, redis_url=redis_server.url, extra_env={"PARLEY_LINK_TTL_SECONDS": "3"}
    )
    yield server
    server.stop()


def test_an_expired_link_is_refused_and_the_qr_rotates_before_expiry(
    browser, short_ttl_app, screenshot
):
    contexts = [new_device_context(browser, base_url=short_ttl_app.url) for _ in range(2)]
    try:
        primary, _ = new_primary(contexts[0])
        companion = contexts[1].new_page()
        url = show_link_code(companion)
        shown = time.monotonic()  # the link session was opened before its QR appeared
        first_link = companion.locator("#link-qr").get_attribute("data-link-id")
        # A fresh code replaces the old one before it expires.
        expect(companion.locator("#link-qr")).not_to_have_attribute(
            "data-link-id", first_link, timeout=SLOW
        )
        time.sleep(max(0.0, 3.2 - (time.monotonic() - shown)))  # the first code's TTL
        primary.goto(url)
        expect(primary.locator("#approve-gate-text")).to_contain_text(
            "This link request expired", timeout=SLOW
        )
        screenshot(primary, "approve-expired-1440")
    finally:
        for context in contexts:
            context.close()


def test_a_full_account_says_so_before_the_approval_and_the_new_browser_is_told(
    new_device, screenshot
):
    primary, _ = new_primary(new_device())
    companions = [new_device().new_page() for _ in range(4)]
    for n, companion in enumerate(companions, start=1):
        link_companion(primary, companion, f"Companion {n}")

    # At 4 of 4 the devices page offers no scan, and says how to make room.
    primary.goto("/devices")
    expect(primary.locator("#device-list .device")).to_have_count(5, timeout=SLOW)
    expect(primary.locator("#link-capacity")).to_have_text("4 of 4 linked devices in use.")
    expect(primary.locator("#link-full")).to_have_text(
        "Your account is full: all 4 linked devices are in use. Log one out above to link another."
    )
    expect(primary.get_by_role("link", name="Scan QR code")).to_have_count(0)
    companions[0].goto("/devices")
    expect(companions[0].locator("#link-full")).to_contain_text(
        "Your account is full", timeout=SLOW
    )
    for viewport in (PHONE, DESKTOP):
        primary.set_viewport_size(viewport)
        screenshot(primary, f"devices-full-{viewport['width']}")
    primary.goto("/link/approve")
    expect(primary.get_by_role("heading", name="Your account is full")).to_be_visible(timeout=SLOW)

    # The fifth browser's code opened on the primary: told at once, nothing to name or approve.
    fifth = new_device().new_page()
    primary.goto(show_link_code(fifth))
    expect(primary.get_by_role("heading", name="Your account is full")).to_be_visible(timeout=SLOW)
    expect(primary.locator("#approve-gate-text")).to_have_text(
        "You can link up to 4 devices, and all 4 are in use. Log one out on your devices page,"
        " then show a new code on the new device."
    )
    expect(primary.get_by_label("Name for this device")).to_be_hidden()
    expect(primary.get_by_role("link", name="Log a device out")).to_have_attribute(
        "href", "/devices"
    )
    for viewport in (PHONE, DESKTOP):
        primary.set_viewport_size(viewport)
        screenshot(primary, f"approve-full-{viewport['width']}")

    # The new browser is not signed in: its link request tells it, on its own screen.
    expect(fifth.get_by_role("heading", name="This account is full")).to_be_visible(timeout=SLOW)
    expect(fifth.locator("#link-full-text")).to_contain_text(
        "already has 4 linked devices, the most it can have. Nothing was linked."
    )
    expect(fifth.locator("#link-qr")).to_be_hidden()
    for viewport in (PHONE, DESKTOP):
        fifth.set_viewport_size(viewport)
        screenshot(fifth, f"link-full-{viewport['width']}")
    fifth.get_by_role("button", name="Show a new code").click()
    expect(fifth.locator("#link-qr")).to_be_visible(timeout=SLOW)


def test_the_primary_declines_and_the_new_browser_is_told(new_device):
    primary, _ = new_primary(new_device())
    companion = new_device().new_page()
    open_approval(primary, show_link_code(companion))
    primary.get_by_role("button", name="Decline").click()
    expect(primary.locator("#approve-gate-text")).to_contain_text("Nothing was linked.")
    expect(companion.locator("#link-refused-text")).to_contain_text("declined", timeout=SLOW)
    expect(companion.get_by_role("button", name="Show a new code")).to_be_visible()


@pytest.fixture
def two_origins(tmp_path, redis_server):
    """One deployment served at two origins (like `make cluster`'s nodes): one database,
    one Redis, and PARLEY_DEPLOYMENT_ORIGINS listing both on each."""
    ports = [free_port(), free_port()]
    origins = ",".join(f"http://localhost:{port}" for port in ports)
    database = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    servers = []
    for n, port in enumerate(ports):
        (tmp_path / f"node{n}").mkdir()
        servers.append(
            start_server(
                tmp_path / f"node{n}",
                redis_url=redis_server.url,
                database_url=database,
                port=port,
                extra_env={"PARLEY_DEPLOYMENT_ORIGINS": origins},
            )
        )
    yield servers
    for server in servers:
        server.stop()


def test_an_approval_page_on_another_origin_says_where_the_account_may_be(
    browser, two_origins, screenshot
):
    home, other = two_origins
    phone_context = new_device_context(browser, base_url=home.url, viewport=PHONE)
    laptop_context = new_device_context(browser, base_url=other.url)
    try:
        phone, _ = new_primary(phone_context)
        laptop = laptop_context.new_page()
        url = show_link_code(laptop)
        assert url.startswith(f"{other.url}/link/approve#v1.")

        # The phone opens the laptop's link: same deployment, but not the origin its
        # account (IndexedDB, passkey) belongs to.
        phone.goto(url)
        expect(phone.get_by_role("heading", name="No account on this address")).to_be_visible(
            timeout=SLOW
        )
        text = phone.locator("#approve-gate-text")
        expect(text).to_contain_text(f"no Parley account for localhost:{other.port}")
        expect(text).to_contain_text(f"also served at localhost:{home.port}")
        expect(text).not_to_contain_text("Open this page on your phone")
        for viewport in (PHONE, DESKTOP):
            phone.set_viewport_size(viewport)
            screenshot(phone, f"approve-other-origin-{viewport['width']}")

        # Opened where the account lives, the same link is approved, and the laptop is linked.
        phone.get_by_role("link", name=f"Open it on localhost:{home.port}").click()
        expect(phone).to_have_url(url.replace(other.url, home.url))
        expect(phone.get_by_role("heading", name="Link a new device?")).to_be_visible(timeout=SLOW)
        approve(phone, "Laptop")
        wait_linked(phone, laptop, "Laptop")
    finally:
        phone_context.close()
        laptop_context.close()
