"""The devices page (DESIGN section 5): every device with its last use, and logging out —
a companion by the primary, a companion by itself, the primary resetting the account, and a
just-linked device removed by an older one in the veto window."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import DESKTOP, PHONE, new_device_context
from tests.support.server import start_server
from tests.support.web import (
    SLOW,
    api_post,
    api_status,
    collect_errors,
    indexeddb_names,
    link_companion,
    new_device_notice,
    new_primary,
    new_username,
    wait_until,
)

# Long enough to link a device and remove it by hand; short enough to wait out in a test.
VETO_WINDOW_SECONDS = 20


def device_row(page, name: str):
    return page.locator("#device-list .device").filter(has_text=name)


def server_devices(page) -> dict:
    return page.evaluate("async () => (await fetch('/api/devices')).json()")


def test_devices_page_lists_devices_and_the_primary_logs_a_companion_out(new_device, screenshot):
    primary, _ = new_primary(new_device())
    errors = collect_errors(primary)
    laptop = new_device().new_page()
    link_companion(primary, laptop, "Laptop")
    tablet_context = new_device()
    tablet = tablet_context.new_page()
    link_companion(primary, tablet, "Tablet")
    tablet.close()  # its socket closes: no longer "active now"

    primary.goto("/devices")
    wait_until(
        primary,
        """async () => (await (await fetch('/api/devices')).json()).devices
            .some((d) => d.name === 'Tablet' && !d.active_now)""",
    )
    primary.reload()
    expect(primary.locator("#device-list .device")).to_have_count(3, timeout=SLOW)
    expect(device_row(primary, "This device")).to_contain_text("Primary")
    expect(device_row(primary, "Laptop")).to_contain_text("Active now")
    # exact when the tablet wrote its last use before it closed, else the day the server keeps
    expect(device_row(primary, "Tablet")).to_contain_text(
        re.compile(r"Last used just now|Last seen today")
    )
    expect(device_row(primary, "Laptop")).to_contain_text("Linked ")
    expect(laptop.get_by_role("button", name="Log out this device")).to_be_visible()
    expect(laptop.get_by_role("button", name="Log out Tablet")).to_have_count(0)
    for viewport in (PHONE, DESKTOP):
        for page, name in ((primary, "devices"), (laptop, "devices-companion")):
            page.set_viewport_size(viewport)
            screenshot(page, f"{name}-{viewport['width']}")

    primary.get_by_role("button", name="Log out Laptop").click()
    dialog = primary.get_by_role("dialog")
    expect(dialog).to_contain_text("Log out Laptop?")
    screenshot(primary, "devices-confirm-1440")
    dialog.get_by_role("button", name="Log out").click()

    expect(laptop.get_by_role("heading", name="This device was logged out")).to_be_visible(
        timeout=2_000
    )
    expect(laptop.locator("html")).to_have_attribute("data-device-socket", "revoked")
    # The footer agrees: no "Connected · realtime round trip" on a device that is cut off.
    footer = laptop.locator("#status")
    expect(footer).to_have_attribute("data-state", "logged-out")
    expect(footer).to_have_text("Logged out · this device no longer connects to Parley")
    assert api_status(laptop, "/api/me") in (401, 403)
    assert indexeddb_names(laptop) == []
    for viewport in (PHONE, DESKTOP):
        laptop.set_viewport_size(viewport)
        screenshot(laptop, f"logged-out-{viewport['width']}")

    expect(primary.locator("#device-list .device")).to_have_count(2, timeout=SLOW)
    listed = server_devices(primary)
    assert len(listed["device_list"]["devices"]) == 2
    assert listed["device_list"]["version"] == 4  # v1, +Laptop, +Tablet, -Laptop
    assert errors == []


LAST_USE_WRITTEN = """() => new Promise((resolve, reject) => {
    const open = indexedDB.open("parley");
    open.onsuccess = () => {
        const get = open.result.transaction("meta").objectStore("meta").get("sync");
        get.onsuccess = () => resolve(Boolean(get.result && get.result.account.records.some(
            (r) => r.collection === "devices" && r.value && Number.isInteger(r.value.last_used))));
        get.onerror = () => reject(get.error);
    };
})"""


def test_the_devices_page_shows_the_last_use_each_device_wrote_else_the_day_the_server_saw_it(
    new_device, screenshot
):
    primary, _ = new_primary(new_device(viewport=DESKTOP))
    laptop = new_device().new_page()
    link_companion(primary, laptop, "Laptop")
    # The tablet never writes to the account's state (as the Python client never writes its
    # last use): only the day the server saw it can be shown.
    tablet = new_device().new_page()
    tablet.route(
        re.compile(r".*/api/state$"),
        lambda route: route.abort() if route.request.method == "POST" else route.continue_(),
    )
    link_companion(primary, tablet, "Tablet")
    laptop.goto("/chats")
    wait_until(laptop, LAST_USE_WRITTEN)
    laptop.close()
    tablet.close()

    primary.goto("/devices")
    wait_until(
        primary,
        """async () => (await (await fetch('/api/devices')).json()).devices
            .filter((d) => !d.this_device).every((d) => !d.active_now)""",
    )
    primary.reload()
    laptop_use = device_row(primary, "Laptop").locator(".presence")
    expect(laptop_use).to_have_text(
        re.compile(r"^Last used (just now|1 minute ago)$"), timeout=SLOW
    )
    expect(laptop_use).to_have_attribute("data-last-use", "exact")
    expect(laptop_use).to_have_attribute("title", re.compile(r"\d{4}, \d{2}:\d{2}"))
    expect(device_row(primary, "Tablet").locator(".presence")).to_have_text("Last seen today")
    expect(device_row(primary, "This device").locator(".presence")).to_have_text("Active now")
    # the server itself knows the day only
    today = primary.evaluate("() => new Date().toISOString().slice(0, 10)")
    for device in server_devices(primary)["devices"]:
        assert device["last_seen_on"] == today
        assert "last_used_at" not in device
    for viewport in (PHONE, DESKTOP):
        primary.set_viewport_size(viewport)
        screenshot(primary, f"devices-last-use-{viewport['width']}")


def test_a_companion_logs_itself_out_and_the_primary_re_signs_the_list(new_device):
    primary, _ = new_primary(new_device())
    laptop = new_device().new_page()
    link_companion(primary, laptop, "Laptop")
    primary.goto("/devices")
    expect(primary.locator("#device-list .device")).to_have_count(2, timeout=SLOW)

    laptop.get_by_role("button", name="Log out this device").click()
    laptop.get_by_role("dialog").get_by_role("button", name="Log out this device").click()
    expect(laptop.get_by_role("heading", name="This device was logged out")).to_be_visible(
        timeout=SLOW
    )
    assert indexeddb_names(laptop) == []
    assert api_status(laptop, "/api/devices") in (401, 403)

    # The open devices page hears of it, re-signs a list without the laptop.
    expect(primary.locator("#device-list .device")).to_have_count(1, timeout=SLOW)
    wait_until(
        primary,
        "async () => (await (await fetch('/api/devices')).json()).suspended.length === 0",
    )
    listed = server_devices(primary)
    assert [d["device_id"] for d in listed["device_list"]["devices"]] == [
        listed["devices"][0]["device_id"]
    ]


def test_the_primary_logging_itself_out_resets_the_account(new_device, screenshot):
    username = new_username()
    primary, _ = new_primary(new_device(), username)
    laptop = new_device().new_page()
    link_companion(primary, laptop, "Laptop")
    primary.goto("/devices")
    primary.get_by_role("button", name="Log out and reset account").click()
    dialog = primary.get_by_role("dialog")
    confirm = dialog.get_by_role("button", name="Reset account")
    expect(confirm).to_be_disabled()
    screenshot(primary, "devices-reset-confirm-1440")
    dialog.get_by_label(f"Type {username} to confirm").fill(username)
    confirm.click()
    for page in (primary, laptop):
        expect(page.get_by_role("heading", name="This device was logged out")).to_be_visible(
            timeout=SLOW
        )
        expect(page.locator("#status")).to_have_attribute("data-state", "logged-out")
        assert indexeddb_names(page) == []


@pytest.fixture
def short_veto_app(tmp_path, redis_server):
    server = start_server(
        tmp_path,
        redis_url=redis_server.url,
        extra_env={"PARLEY_VETO_WINDOW_SECONDS": str(VETO_WINDOW_SECONDS)},
    )
    yield server
    server.stop()


def test_an_older_companion_removes_a_just_linked_one_until_the_veto_window_ends(
    browser, short_veto_app, screenshot
):
    contexts = [new_device_context(browser, base_url=short_veto_app.url) for _ in range(4)]
    try:
        primary, _ = new_primary(contexts[0])
        laptop, desk, intruder = (context.new_page() for context in contexts[1:])
        errors = collect_errors(laptop)
        for page, name in ((laptop, "Laptop"), (desk, "Desk"), (intruder, "Intruder")):
            link_companion(primary, page, name)
        primary.goto("/devices")
        expect(primary.locator("#device-list .device")).to_have_count(4, timeout=SLOW)
        ids = {d["name"]: d["device_id"] for d in server_devices(primary)["devices"]}

        # The laptop, linked before both, is told of each and may remove it; the newest
        # device is told of nothing (it cannot evict the older ones).
        told = re.compile(
            r"^New device Intruder linked at \d\d:\d\d.* from .+\. Not you\? Remove it"
        )
        expect(new_device_notice(laptop, "Intruder")).to_have_text(told, timeout=SLOW)
        expect(new_device_notice(laptop, "Desk")).to_be_visible()
        expect(new_device_notice(laptop, "Laptop")).to_have_count(0)
        expect(new_device_notice(primary, "Intruder")).to_be_visible()
        expect(intruder.locator(".new-device-notice")).to_have_count(0)
        for viewport in (PHONE, DESKTOP):
            laptop.set_viewport_size(viewport)
            screenshot(laptop, f"devices-new-device-{viewport['width']}")

        new_device_notice(laptop, "Intruder").get_by_role("button", name="Remove it").click()
        dialog = laptop.get_by_role("dialog")
        expect(dialog).to_contain_text("Remove Intruder?")
        dialog.get_by_role("button", name="Remove").click()

        # Cut off at once, like a primary's log-out.
        expect(intruder.get_by_role("heading", name="This device was logged out")).to_be_visible(
            timeout=2_000
        )
        assert api_status(intruder, "/api/me") in (401, 403)
        assert indexeddb_names(intruder) == []
        expect(laptop.locator("#devices-message")).to_have_text(
            "Your device “Intruder” was removed."
        )
        expect(new_device_notice(laptop, "Intruder")).to_have_count(0)
        expect(laptop.locator("#device-list .device")).to_have_count(3)

        # The primary's open devices page hears of it and signs a list without the intruder.
        expect(primary.locator("#device-list .device")).to_have_count(3, timeout=SLOW)
        wait_until(
            primary,
            "async () => (await (await fetch('/api/devices')).json()).suspended.length === 0",
        )
        listed = server_devices(primary)["device_list"]
        assert ids["Intruder"] not in {d["device_id"] for d in listed["devices"]}
        assert len(listed["devices"]) == 3 and listed["version"] == 5  # v1, +3, -Intruder

        # Once the window ends the laptop's button is gone, and the server refuses too.
        expect(new_device_notice(laptop, "Desk")).to_have_count(
            0, timeout=(VETO_WINDOW_SECONDS + 10) * 1000
        )
        laptop.reload()
        expect(laptop.locator("#device-list .device")).to_have_count(3, timeout=SLOW)
        expect(laptop.get_by_role("button", name="Remove it")).to_have_count(0)
        status, body = api_post(laptop, f"/api/devices/{ids['Desk']}/revoke", {})
        assert (status, body["error"]["code"]) == (403, "not_primary")
        assert errors == []
    finally:
        for context in contexts:
            context.close()
