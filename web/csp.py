"""Content-Security-Policy for every response (DESIGN section 7, web delivery)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from web.importmap import scripts


def content_security_policy() -> str:
    importmap_hash = scripts().csp_source
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {importmap_hash} 'wasm-unsafe-eval'",
            "connect-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob:",
            "style-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            # No form ever submits natively (fields would land in a URL and the server log
            # if one fired before its page's script took over): scripts send everything.
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", content_security_policy())
        return response
