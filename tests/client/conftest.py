"""Fixtures of the client tests: a primary (software passkey) signed up on the live server
over real HTTP, the same way the command-line client talks to it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import pytest

from client.http import HttpTransport
from tests.support.actors import PrimaryActor
from tests.support.server import LiveServer
from tests.support.softauthn import SoftAuthenticator


@pytest.fixture
def primary(live_app: LiveServer) -> PrimaryActor:
    return PrimaryActor(
        HttpTransport(live_app.url),
        SoftAuthenticator(origin=live_app.url),
        username=f"cli{secrets.token_hex(4)}",
    ).sign_up()


def wait_until(
    check: Callable[[], object], *, timeout: float = 10.0, what: str = "condition"
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
