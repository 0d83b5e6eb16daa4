"""Shared test harness: real Redis, the whole app on Daphne, Chromium with a virtual
authenticator and a fake camera. Every later test builds on these fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.browser import (
    DESKTOP,
    FakeCamera,
    VirtualAuthenticator,
    add_virtual_authenticator,
    fake_camera_args,
    launch_chromium,
    new_device_context,
    write_qr_y4m,
)
from tests.support.devices import DeviceThread
from tests.support.redis import RedisServer, start_redis
from tests.support.server import LiveServer, start_server

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_channel_layer(settings, redis_server: RedisServer) -> Iterator[None]:
    """Point this test's channel layer at the real test Redis (pub/sub layer, as in production)."""
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_server.url, "socket_timeout": None}]},
        }
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(scope="session")
def live_app(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[LiveServer]:
    """The whole app served by Daphne on a free port, with the Redis channel layer."""
    server = start_server(tmp_path_factory.mktemp("app"), redis_url=redis_server.url)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance):
    browser = launch_chromium(playwright_instance)
    yield browser
    browser.close()


@pytest.fixture
def new_device(browser, live_app: LiveServer) -> Iterator[Callable[..., object]]:
    """Factory of independent browser contexts, one per simulated device."""
    contexts = []

    def make(*, viewport: dict[str, int] | None = None):
        context = new_device_context(browser, base_url=live_app.url, viewport=viewport or DESKTOP)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def device_thread() -> Iterator[DeviceThread]:
    """Python devices beside a browser test's pages (tests.support.devices.DeviceThread)."""
    devices = DeviceThread()
    yield devices
    devices.close()


@pytest.fixture
def authenticator() -> Callable[..., VirtualAuthenticator]:
    """Attach Chromium's virtual platform authenticator (with user verification) to a page."""
    return add_virtual_authenticator


@pytest.fixture(scope="session")
def camera(playwright_instance, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCamera]:
    """A Chromium whose camera shows a QR code of the test's choosing (`camera.show(text)`)."""
    path = tmp_path_factory.mktemp("camera") / "camera.y4m"
    write_qr_y4m(path, "parley: camera ready")
    browser = launch_chromium(playwright_instance, extra_args=fake_camera_args(path))
    yield FakeCamera(path=path, browser=browser)
    browser.close()


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    """Save a full-page screenshot under test-artifacts/ for a person to look at."""

    def take(page, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests run last: Playwright's sync API keeps an event loop running on the main
    thread for the rest of the session, which asyncio tests cannot share. tests/deploy/ drives
    Chromium too (through the deployment's proxy)."""
    here = Path(__file__).resolve().parent
    browser_dirs = {here / "browser", here / "deploy"}
    for item in items:
        if browser_dirs & set(Path(item.fspath).parents):
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Each test starts with empty rate-limit counters (they live in the process's cache)."""
    from django.core.cache import cache

    cache.clear()
    yield
