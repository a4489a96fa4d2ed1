"""``{% load djust %}``: ``{% djust_scripts %}`` includes the client."""

from __future__ import annotations

from django import template
from django.templatetags.static import static
from django.urls import get_script_prefix
from django.utils.html import format_html
from django.utils.safestring import SafeString

from djust import conf

register = template.Library()


def scripts_html() -> SafeString:
    """The ``<script>`` tag that loads the client and tells it where the socket is."""
    # Under a script name (a site served at /app/), the socket's URL is below it too.
    return format_html(
        '<script src="{}" data-djust-ws="{}{}"{} defer></script>',
        static("djust/djust.js"),
        get_script_prefix(),
        conf.get("WS_PATH"),
        "" if conf.get("UPLOAD_DEFAULT_STYLES") else SafeString(' data-djust-styles="off"'),
    )


@register.simple_tag
def djust_scripts() -> SafeString:
    """Load the djust client (place once, before ``</body>``)."""
    return scripts_html()
