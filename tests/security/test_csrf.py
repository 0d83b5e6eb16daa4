"""Every state-changing call needs Django's CSRF token; a refusal is a JSON 403."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import get_resolver

pytestmark = pytest.mark.django_db

POSTS = sorted(
    "/"
    + str(p.pattern)
    .replace("<str:link_id>", "L")
    .replace("<str:device_id>", "D")
    .replace("<str:username>", "u")
    .replace("<str:blob_id>", "B")
    .replace("<int:index>", "0")
    for p in get_resolver().url_patterns
    if str(p.pattern).startswith("api/")
)


@pytest.mark.parametrize("path", POSTS)
def test_a_post_without_the_csrf_token_is_refused_with_a_json_reason(path):
    response = Client(enforce_csrf_checks=True).post(path, "{}", content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"


def test_the_same_post_with_the_token_gets_through_csrf():
    client = Client(enforce_csrf_checks=True)
    client.get("/signup")
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/api/accounts/signin/options",
        "{}",
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200
