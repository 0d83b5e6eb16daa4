"""Every answer under /api/ is JSON and not cached, whatever made it: a view, Django's
404 (in DEBUG a list of every URL), a crash (in DEBUG a traceback page). Pages stay HTML.
The live server's side of this is in test_abuse_live.py."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.security.crashing_urls")]


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("path", ["/api/crash", "/api/plain-crash"])
def test_a_crash_in_the_api_is_a_json_500_that_tells_nothing_and_is_logged(
    settings, caplog, debug, path
):
    settings.DEBUG = debug
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = Client(raise_request_exception=False).get(path)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response.json()["error"]["code"] == "server_error"
    assert b"secret internals" not in response.content
    assert any("secret internals" in str(r.exc_info) for r in caplog.records)


@pytest.mark.parametrize("debug", [True, False])
def test_an_unknown_api_path_is_a_json_404(settings, debug):
    settings.DEBUG = debug
    response = Client().get("/api/nothing/here")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"
    assert b"crashing_urls" not in response.content  # DEBUG's page lists the URLconf


def test_a_crash_outside_the_api_keeps_django_s_page(settings):
    settings.DEBUG = False
    response = Client(raise_request_exception=False).get("/crash")
    assert response.status_code == 500 and response["Content-Type"].startswith("text/html")


def test_django_buffers_no_more_than_the_json_limit(settings):
    from web.validation import MAX_BODY_BYTES

    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == MAX_BODY_BYTES
