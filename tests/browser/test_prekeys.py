"""The browser refills its pool of one-time prekeys at once when the server says it runs low
(issue #9 item 4): on the claim that left it low, and on connect after being closed."""

from __future__ import annotations

import sqlite3
import time

from client.http import HttpTransport
from tests.support.actors import PrimaryActor, ok
from tests.support.browser import DESKTOP
from tests.support.softauthn import SoftAuthenticator
from tests.support.web import collect_errors, new_primary, new_username, open_chats

BROWSER_POOL = 50  # static/js/app/device.js ONE_TIME_PREKEYS


def server_pool(live_app, device_id: str) -> list[int]:
    with sqlite3.connect(live_app.db_path) as db:
        rows = db.execute(
            "SELECT key_id FROM devices_onetimeprekey WHERE device_id = ? ORDER BY key_id",
            [device_id],
        ).fetchall()
    return [r[0] for r in rows]


def leave_only(live_app, device_id: str, keep: int) -> None:
    """As if other accounts had claimed all but the `keep` highest one-time prekeys."""
    with sqlite3.connect(live_app.db_path, timeout=30) as db:
        db.execute(
            "DELETE FROM devices_onetimeprekey WHERE device_id = ? AND key_id NOT IN"
            " (SELECT key_id FROM devices_onetimeprekey WHERE device_id = ?"
            "  ORDER BY key_id DESC LIMIT ?)",
            [device_id, device_id, keep],
        )


def wait_for_pool(live_app, device_id: str, expected: list[int], *, within: float = 15) -> None:
    deadline = time.monotonic() + within
    while (found := server_pool(live_app, device_id)) != expected:
        assert time.monotonic() < deadline, f"pool is {found}, expected {expected}"
        time.sleep(0.1)


def test_the_browser_refills_its_pool_when_told_it_runs_low(new_device, live_app):
    context = new_device(viewport=DESKTOP)
    page, _ = new_primary(context, new_username("alice"))
    errors = collect_errors(page)
    open_chats(page)  # not /devices, which tops the pool up on every visit
    me = page.evaluate("async () => (await (await fetch('/api/me')).json())")
    device_id, account = me["device"]["device_id"], me["account"]["username"]
    assert server_pool(live_app, device_id) == list(range(1, BROWSER_POOL + 1))

    # Bob's claim leaves 5 - 1 = 4: the server pushes `prekeys_low`, the open page uploads
    # 50 fresh keys numbered after its first 50
    leave_only(live_app, device_id, 5)
    bob = PrimaryActor(
        HttpTransport(live_app.url),
        SoftAuthenticator(origin=live_app.url),
        username=new_username("bob"),
    ).sign_up()
    [bundle] = ok(bob.transport.post(f"/api/accounts/{account}/bundles", {}))["bundles"]
    assert bundle["one_time_prekey"]["id"] == 46
    wait_for_pool(live_app, device_id, [47, 48, 49, 50, *range(51, 101)])

    # Closed while its pool ran low, it learns it when it opens again
    page.close()
    leave_only(live_app, device_id, 3)
    again = context.new_page()
    errors += collect_errors(again)
    open_chats(again)
    wait_for_pool(live_app, device_id, [98, 99, 100, *range(101, 151)])
    assert errors == []
