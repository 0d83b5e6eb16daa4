"""The devices page (DESIGN section 5): every device with its last use, and logging out —
a companion by the primary, a companion by itself, and the primary resetting the account."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.helpers_accounts import (
    SLOW,
    api_status,
    collect_errors,
    indexeddb_names,
    link_companion,
    new_primary,
    new_username,
)
from tests.support.browser import DESKTOP, PHONE


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
    primary.wait_for_function(
        """async () => (await (await fetch('/api/devices')).json()).devices
            .some((d) => d.name === 'Tablet' && !d.active_now)""",
        polling=100,
        timeout=SLOW,
    )
    primary.reload()
    expect(primary.locator("#device-list .device")).to_have_count(3, timeout=SLOW)
    expect(device_row(primary, "This device")).to_contain_text("Primary")
    expect(device_row(primary, "Laptop")).to_contain_text("Active now")
    expect(device_row(primary, "Tablet")).to_contain_text("Last used just now")
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
    primary.wait_for_function(
        "async () => (await (await fetch('/api/devices')).json()).suspended.length === 0",
        polling=100,
        timeout=SLOW,
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
