"""The app's URLs plus views that crash, for tests of what a crash looks like from outside."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import path

from config.urls import urlpatterns as app_urlpatterns
from web.api import api, public


def crash(request: HttpRequest) -> None:
    raise RuntimeError("secret internals of the crash")


urlpatterns = [
    path("api/crash", api(methods=("GET",), access=public)(crash)),
    path("api/plain-crash", crash),
    path("crash", crash),
    *app_urlpatterns,
]
