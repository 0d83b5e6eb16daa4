"""Caching of scripts by version (web.importmap): a script asked for under its current
version (`?v=`) is one content for ever, so browsers keep it a year without asking again.
Anything else under /static/ keeps WhiteNoise's short caching."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from web.importmap import VERSION_PARAMETER, scripts

IMMUTABLE = "public, max-age=31536000, immutable"


class VersionedScriptCacheMiddleware:
    """Placed before WhiteNoise's middleware, so that it sees the responses WhiteNoise serves."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        version = request.GET.get(VERSION_PARAMETER)
        current = scripts().versions.get(request.path)
        if version and version == current and response.status_code in (200, 304):
            response["Cache-Control"] = IMMUTABLE
        return response
