"""The health checks as a proxy asks them, in-process: over plain HTTP with an https origin,
with a Host that is not allowed, without a session; readiness says `draining` once the node
drains (the live drain is tests/cluster/test_drain.py)."""

from __future__ import annotations

import pytest
from django.test import Client

from web import drain

# transaction=True: the readiness check goes through database_sync_to_async (FIELD-NOTES)
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def behind_https(settings):
    """Production's settings with an https PARLEY_ORIGIN: HTTPS redirect, one allowed host."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["chat.example.org"]


@pytest.mark.parametrize(
    "path, body", [("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})]
)
def test_a_probe_over_plain_http_with_the_nodes_address_is_answered(behind_https, path, body):
    response = Client().get(path, HTTP_HOST="10.0.0.7:8000")
    assert (response.status_code, response.json()) == (200, body)
    assert "Set-Cookie" not in response.headers


def test_every_other_path_is_still_redirected_or_refused(behind_https):
    assert Client().get("/", HTTP_HOST="chat.example.org").status_code == 301
    assert Client().get("/", HTTP_HOST="10.0.0.7:8000").status_code == 400


def test_a_draining_node_is_not_ready_but_still_alive():
    drain.node.begun = True
    try:
        response = Client().get("/readyz")
        assert (response.status_code, response.json()) == (503, {"status": "draining"})
        assert Client().get("/healthz").status_code == 200
    finally:
        drain.node.begun = False
