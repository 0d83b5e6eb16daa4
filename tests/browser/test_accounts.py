"""Sign-up and sign-in in a real browser: passkey, device keys, list v1, the home page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.browser import DESKTOP, PHONE
from tests.support.rewriting import unless_closed
from tests.support.web import (
    DEVICES_URL,
    SLOW,
    HeldScripts,
    collect_errors,
    link_companion,
    navigations,
    new_primary,
    new_username,
    sign_up,
)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1440"])
def test_sign_up_makes_this_browser_the_primary_and_signs_in_again_with_the_passkey(
    new_device, authenticator, screenshot, viewport
):
    page = new_device(viewport=viewport).new_page()
    errors = collect_errors(page)
    width = viewport["width"]
    page.goto("/")
    expect(page.get_by_role("link", name="Create account").first).to_be_visible()
    screenshot(page, f"home-signed-out-{width}")
    auth = authenticator(page)
    page.goto("/signup")
    screenshot(page, f"signup-{width}")
    username = new_username()
    sign_up(page, username, display_name="Ada Lovelace")
    assert len(auth.credentials()) == 1
    device = page.locator("#device-list .device")
    expect(device).to_contain_text("This device")
    expect(device).to_contain_text("Primary")
    expect(device).to_contain_text("Active now", timeout=SLOW)
    screenshot(page, f"devices-primary-{width}")
    page.goto("/")
    expect(page.get_by_role("heading", name="Parley", exact=True)).to_be_visible()
    expect(page.get_by_text("Signed in as Ada Lovelace")).to_be_visible()
    screenshot(page, f"home-signed-in-{width}")

    # The session ends (cookies gone); the passkey and the device key sign this browser in.
    page.context.clear_cookies()
    page.goto("/signin")
    screenshot(page, f"signin-{width}")
    page.get_by_role("button", name="Sign in with fingerprint or face").click()
    expect(page).to_have_url(DEVICES_URL, timeout=SLOW)
    expect(page.locator("#device-list .device")).to_have_count(1, timeout=SLOW)
    assert errors == []


def test_a_browser_without_keys_is_told_to_create_an_account_or_link(new_device, screenshot):
    page = new_device(viewport=PHONE).new_page()
    page.goto("/signin")
    expect(page.get_by_text("This browser has no Parley keys.")).to_be_visible()
    expect(page.get_by_role("link", name="Create an account")).to_be_visible()
    expect(page.get_by_role("link", name="Link this browser from your phone")).to_be_visible()
    screenshot(page, "signin-no-keys-390")


def test_failed_user_verification_creates_no_account(new_device, authenticator):
    page = new_device().new_page()
    page.goto("/signup")
    auth = authenticator(page)
    auth.set_user_verified(False)
    page.get_by_label("Username").fill(new_username())
    page.get_by_label("Display name").fill("Nobody")
    page.get_by_role("button", name="Create account with fingerprint or face").click()
    expect(page.locator("#signup-message")).to_contain_text("not verified", timeout=SLOW)
    assert auth.credentials() == []
    assert page.evaluate("async () => (await indexedDB.databases()).length") == 0


def test_a_new_phone_with_the_synced_passkey_becomes_the_primary_and_old_devices_are_logged_out(
    new_device, authenticator, screenshot
):
    username = new_username()
    old_phone, old_auth = new_primary(new_device(viewport=PHONE), username)
    laptop = new_device().new_page()
    link_companion(old_phone, laptop)
    old_phone.goto("/devices")

    new_phone = new_device(viewport=PHONE).new_page()
    new_phone.goto("/signin")
    new_auth = authenticator(new_phone)
    # A synced passkey: the same credential now lives in the new phone's authenticator.
    [credential] = old_auth.credentials()
    new_auth.cdp.send(
        "WebAuthn.addCredential",
        {"authenticatorId": new_auth.authenticator_id, "credential": credential},
    )
    asked: list[tuple[str, str | None, dict]] = []

    def record(route) -> None:  # read each answer before the page navigates away
        with unless_closed():
            response = route.fetch()
            asked.append((route.request.url, route.request.post_data, response.json()))
            route.fulfill(response=response)

    new_phone.route("**/api/accounts/reregister**", record)
    expect(new_phone.get_by_role("heading", name="New phone?")).to_be_visible(timeout=SLOW)
    screenshot(new_phone, "signin-new-phone-390")
    # No username is typed: the passkey picker names the account.
    new_phone.get_by_role("button", name="Make this browser my primary").click()
    expect(new_phone).to_have_url(DEVICES_URL, timeout=SLOW)
    expect(new_phone.locator("#device-list .device")).to_have_count(1, timeout=SLOW)
    expect(new_phone.locator("#device-list .device")).to_contain_text("Primary")
    for page in (old_phone, laptop):
        expect(page.get_by_role("heading", name="This device was logged out")).to_be_visible(
            timeout=SLOW
        )
    # Before the passkey answered, the server was told no name and told nothing back about one.
    answers = {url.rsplit("/api/accounts/", 1)[1]: (sent, got) for url, sent, got in asked}
    assert sorted(answers) == ["reregister", "reregister/options", "reregister/verify"]
    options_request, options = answers["reregister/options"]
    assert username not in (options_request or "") and username not in str(options)
    assert sorted(options) == ["challenge_id", "options"]
    assert options["options"].get("allowCredentials", []) == []
    assert answers["reregister/verify"][1]["account"]["username"] == username


def test_sign_up_clicked_before_its_script_arrives_sends_nothing_and_works_once_it_has(
    new_device, authenticator, live_app
):
    page = new_device(viewport=PHONE).new_page()
    page.goto("/")
    authenticator(page)
    scripts = HeldScripts(page)
    visited = navigations(page)
    page.goto("/signup", wait_until="commit")
    username = new_username("slow")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Display name").fill("Slow Network")
    button = page.get_by_role("button", name="Create account with fingerprint or face")
    # A person taps at once, then presses Enter in the last field.
    button.click(force=True)
    page.get_by_label("Display name").press("Enter")

    scripts.release()
    expect(button).to_be_enabled(timeout=SLOW)
    assert [url.removeprefix(live_app.url) for url in visited] == ["/signup"]
    expect(page.get_by_label("Username")).to_have_value(username)
    button.click()
    expect(page).to_have_url(DEVICES_URL, timeout=SLOW)
    assert [url.removeprefix(live_app.url) for url in visited] == ["/signup", "/devices"]
    assert f"={username}" not in live_app.log()  # never a query string with the name


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1440"])
def test_sign_up_says_loading_until_its_script_is_ready(new_device, screenshot, viewport):
    page = new_device(viewport=viewport).new_page()
    width = viewport["width"]
    scripts = HeldScripts(page)
    page.goto("/signup", wait_until="commit")
    button = page.get_by_role("button", name="Create account with fingerprint or face")
    loading = page.get_by_role("status").filter(has_text="Loading…")
    expect(button).to_be_disabled(timeout=SLOW)
    expect(loading).to_be_visible()
    screenshot(page, f"signup-loading-{width}")
    scripts.release()
    expect(button).to_be_enabled(timeout=SLOW)
    expect(loading).to_be_hidden()
    screenshot(page, f"signup-ready-{width}")


SUBMIT_NATIVELY = """(index) => new Promise((resolve) => {
  const form = document.querySelectorAll("form:not([method=dialog])")[index];
  document.addEventListener("securitypolicyviolation", (event) => resolve(event.violatedDirective));
  setTimeout(() => resolve("not refused"), 10000);
  HTMLFormElement.prototype.submit.call(form);
})"""


def test_no_form_on_any_page_submits_natively_even_before_its_script_runs(new_device):
    page = new_device().new_page()
    HeldScripts(page)
    visited = navigations(page)
    pages = ("/signup", "/signin", "/chats", "/link/approve")
    for path in pages:
        page.goto(path, wait_until="commit")
        expect(page.locator("#status")).to_be_attached(timeout=SLOW)  # the whole page is parsed
        methods = page.locator("form:not([method=dialog])").evaluate_all(
            "(forms) => forms.map((f) => f.getAttribute('method'))"
        )
        assert methods and set(methods) == {"post"}, path
        for index in range(len(methods)):
            assert page.evaluate(SUBMIT_NATIVELY, index) == "form-action", (path, index)
    assert [url.split("/", 3)[3] for url in visited] == [p.removeprefix("/") for p in pages]
