from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from devices.auth import request_device


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"device": request_device(request)})


@ensure_csrf_cookie
def chats(request: HttpRequest, username: str | None = None) -> HttpResponse:
    """The messenger: the conversation list, one conversation, or a contact's safety number.
    Everything in it is decrypted and rendered in the browser (static/js/app/chats.js)."""
    return render(request, "messaging/chats.html")


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """CSRF refusals answer in the API's JSON error shape, like every other 4xx."""
    return JsonResponse(
        {
            "error": {
                "code": "csrf_failed",
                "message": "Missing or wrong CSRF token; reload the page and try again.",
                "data": {},
            }
        },
        status=403,
    )
