"""Issue 14's deployment for real: deploy/local.py starts the pieces of docs/deploy.md (Caddy
with its internal CA on a loopback port, two Daphne nodes from deploy/parley@.service,
PostgreSQL, Redis). Chromium trusts Caddy's root through its certificate store, never by
ignoring certificate errors, and a person's journey runs over https through the proxy: sign
up with a passkey, link a companion by QR, message, log the companion out, then one node is
killed and the devices carry on through the other with nothing lost."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from deploy.local import Deployment, free_port
from tests.support.browser import (
    DESKTOP,
    PHONE,
    FakeCamera,
    fake_camera_args,
    launch_chromium,
    trusting_home,
    write_qr_y4m,
)
from tests.support.web import (
    SLOW,
    add_contact,
    approve,
    bubble,
    new_primary,
    new_username,
    open_chats,
    open_conversation,
    send,
    show_link_code,
    wait_linked,
)

ACCEPTED = ("sent", "delivered", "read")  # the server answered `accepted` (after its commit)
WATCH_SOCKET = """() => {
    const html = document.documentElement;
    window.socketStates = [[html.dataset.deviceSocket, Date.now()]];
    new MutationObserver(() => window.socketStates.push([html.dataset.deviceSocket, Date.now()]))
        .observe(html, {attributes: true, attributeFilter: ["data-device-socket"]});
}"""


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    # As root, PostgreSQL runs as `postgres`, which cannot enter pytest's private temporary tree.
    parent = Path(tempfile.mkdtemp(prefix="parley-deploy-"))
    parent.chmod(0o755)
    started = Deployment(parent / "deploy", free_port(), (free_port(), free_port()))
    try:
        started.start()
        yield started
    finally:
        started.stop()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def trusting_browser(playwright_instance, deployment: Deployment, tmp_path: Path):
    """Chromium as a person whose certificate store trusts Caddy's root, with a camera."""
    home = trusting_home(tmp_path / "home", deployment.root_certificate)
    video = tmp_path / "camera.y4m"
    write_qr_y4m(video, "parley: camera ready")
    browser = launch_chromium(playwright_instance, extra_args=fake_camera_args(video), home=home)
    yield FakeCamera(path=video, browser=browser)
    browser.close()


def holding_device_sockets(deployment: Deployment) -> int:
    """The node whose access log shows the most device sockets open now."""

    def open_sockets(port: int) -> int:
        log = (deployment.directory / f"node-{port}.log").read_text(errors="replace")
        return log.count('"WSCONNECT /ws/device/') - log.count('"WSDISCONNECT /ws/device/')

    return max(deployment.nodes, key=open_sockets)


SHOWN = """(texts) => {
    const messages = [...document.querySelectorAll("#message-list .message")];
    return texts.map((t) => {
        const shown = messages.find((m) => {
            const text = m.querySelector(".message-text")?.textContent ?? "";
            return text === t || /^\\s/.test(text.slice(t.length)) && text.startsWith(t);
        });
        return shown ? shown.querySelector(".message-status")?.dataset.status ?? "shown" : null;
    });
}"""


def shown(page: Page, texts: list[str]) -> list[str | None]:
    """Each message as `page` shows it: its status ("shown" without one), or None if absent."""
    return page.evaluate(SHOWN, texts)


def test_over_https_through_caddy_a_person_links_messages_logs_out_and_a_killed_node_loses_nothing(
    deployment: Deployment, trusting_browser: FakeCamera, capsys: pytest.CaptureFixture[str]
):
    started = time.monotonic()
    camera = trusting_browser

    def device(viewport=DESKTOP):
        return camera.browser.new_context(base_url=deployment.origin, viewport=viewport)

    alice_name, bob_name = new_username("alice"), new_username("bob")
    phone, _ = new_primary(device(PHONE), alice_name)
    assert phone.url.startswith(f"{deployment.origin}/")
    assert phone.evaluate("() => window.isSecureContext") is True
    security = phone.evaluate(
        "async () => (await fetch('/devices')).headers.get('strict-transport-security')"
    )
    assert security and "max-age=" in security

    # A companion linked by QR: the phone scans the laptop's code with its camera.
    laptop = device().new_page()
    url = show_link_code(laptop)
    assert url.startswith(f"{deployment.origin}/link/approve#")
    camera.show(url)
    phone.goto("/devices")
    phone.get_by_role("link", name="Scan QR code").click()
    phone.get_by_role("button", name="Turn on camera").click()
    expect(phone.get_by_role("heading", name="Link a new device?")).to_be_visible(timeout=SLOW)
    approve(phone, "Laptop")
    wait_linked(phone, laptop, "Laptop")

    # Messages both ways with a contact, the phone seeing what its laptop sent.
    bob, _ = new_primary(device(), bob_name)
    open_chats(bob)
    add_contact(bob, alice_name)
    open_chats(laptop)
    add_contact(laptop, bob_name)
    send(laptop, "Hello from the laptop")
    expect(bubble(bob, "Hello from the laptop")).to_be_visible(timeout=SLOW)
    send(bob, "Hello back")
    expect(bubble(laptop, "Hello back")).to_be_visible(timeout=SLOW)
    open_chats(phone)
    open_conversation(phone, bob_name)
    for text in ("Hello from the laptop", "Hello back"):
        expect(bubble(phone, text)).to_be_visible(timeout=SLOW)

    # The phone logs the laptop out: it is cut off at once.
    phone.goto("/devices")
    phone.get_by_role("button", name="Log out Laptop").click()
    phone.get_by_role("dialog").get_by_role("button", name="Log out").click()
    expect(laptop.get_by_role("heading", name="This device was logged out")).to_be_visible(
        timeout=SLOW
    )
    expect(phone.locator("#device-list .device")).to_have_count(1, timeout=SLOW)

    # One node killed mid-conversation: the devices carry on through Caddy to the other.
    open_chats(phone)
    open_conversation(phone, bob_name)
    for page in (phone, bob):
        page.evaluate(WATCH_SOCKET)
    before = [f"Before the kill {n}" for n in range(5)]
    after = [f"After the kill {n}" for n in range(5)]
    for text in before:
        send(phone, text)
    victim = holding_device_sockets(deployment)
    deployment.kill_node(victim)
    killed_at, killed_wall = time.monotonic(), time.time()
    for text in after:
        send(phone, text)
    send(bob, "Still here")
    expect(bubble(phone, "Still here")).to_be_visible(timeout=30_000)
    sent = before + after

    def counts() -> tuple[list[str], list[str]]:
        """What the phone shows the server accepted, and what Bob's page shows."""
        accepted = [t for t, s in zip(sent, shown(phone, sent), strict=True) if s in ACCEPTED]
        return accepted, [t for t, s in zip(sent, shown(bob, sent), strict=True) if s]

    deadline = killed_at + 45
    while counts() != (sent, sent) and time.monotonic() < deadline:
        phone.wait_for_timeout(200)
    settled = time.monotonic() - killed_at
    accepted, delivered = counts()
    reconnected = []  # the pages whose socket the kill closed, and when they were open again
    for name, page in (("phone", phone), ("bob", bob)):
        states = page.evaluate("() => window.socketStates")
        if {state for state, _ in states} - {"open"}:
            path = " -> ".join(state for state, _ in states)
            reconnected.append(
                f"{name} ({path}, open at {states[-1][1] / 1000 - killed_wall:+.1f} s)"
            )
    with capsys.disabled():  # in `make test`'s output, not only with -s
        print(
            f"\ntopology: node {victim} of {sorted([victim, *deployment.nodes])} killed; "
            f"{len(sent)} sent ({len(before)} before the kill, {len(after)} after), "
            f"accepted {len(accepted)}, delivered {len(delivered)}, settled {settled:.1f} s after "
            f"the kill; reconnected through the proxy: {', '.join(reconnected) or 'none'}; "
            f"the journey took {time.monotonic() - started:.1f} s"
        )
    assert reconnected, "the killed node held none of the devices' sockets"
    assert [t for t in accepted if t not in delivered] == []  # nothing accepted was lost
    assert accepted == delivered == sent
    # A send in flight on the killed socket goes again as soon as the page's socket is back,
    # not after the outbox's 15 s wait for an answer (static/js/app/outbox.js).
    assert settled < 12, f"settled {settled:.1f} s after the kill"
    for page in (phone, bob):
        expect(page.locator("html")).to_have_attribute("data-device-socket", "open")

    # The backup parley-backup.service made at the start is a dump pg_restore reads.
    (dump,) = (deployment.directory / "backups").glob("parley-*.dump")
    listing = subprocess.run(
        ["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True
    ).stdout
    assert "TABLE DATA public accounts_user" in listing
