"""`{% module_script "js/app/chats.js" %}`: a page's entry script under its versioned URL and
with its integrity hash (web.importmap), the same URL the import map gives it, so that a
module that is both an entry and imported is one module."""

from __future__ import annotations

from django import template
from django.conf import settings
from django.utils.html import format_html

from web.importmap import scripts

register = template.Library()


@register.simple_tag
def module_script(path: str) -> str:
    plain = settings.STATIC_URL + path
    served = scripts()
    return format_html(
        '<script type="module" src="{}" integrity="{}"></script>',
        served.url(plain),
        served.integrity[plain],
    )
