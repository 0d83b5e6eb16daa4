"""The proxy's health checks, answered before any other middleware (first in MIDDLEWARE).

A proxy checks each node over plain HTTP at the node's own address: so the probes are not
redirected to HTTPS (SECURE_SSL_REDIRECT, on with an https PARLEY_ORIGIN), answer whatever
Host the check sends (the node's address is rarely in ALLOWED_HOSTS, and the probes build no
URL from it), and touch no session. They are not rate-limited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from web import views

PROBES: dict[str, Callable[[HttpRequest], Awaitable[HttpResponse]]] = {
    "/healthz": views.healthz,
    "/readyz": views.readyz,
}


class ProbeMiddleware:
    """Async, so that a probe is answered on the event loop without waiting for the thread
    that runs the other (synchronous) views; Django runs the rest of the chain in that
    thread as before."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]):
        self.get_response = get_response
        markcoroutinefunction(self)  # Django tells an async middleware by this mark

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is not None:
            return await probe(request)
        return await self.get_response(request)
