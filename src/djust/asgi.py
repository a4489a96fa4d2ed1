"""``get_asgi_application()``: Django over HTTP plus djust's WebSocket route."""

from __future__ import annotations

from typing import Any


def get_asgi_application() -> Any:
    """HTTP (plus static files in DEBUG) and the origin-checked, authenticated socket."""
    from django.core.asgi import get_asgi_application as django_asgi_application

    http = django_asgi_application()  # sets Django up before anything imports models

    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.apps import apps
    from django.conf import settings
    from django.urls import path

    from djust import conf
    from djust.transport.consumer import LiveConsumer
    from djust.transport.origin import OriginValidator

    if apps.is_installed("django.contrib.staticfiles") and (
        settings.DEBUG or conf.get("SERVE_STATIC")
    ):
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        http = ASGIStaticFilesHandler(http)
    socket = OriginValidator(
        AuthMiddlewareStack(URLRouter([path(conf.get("WS_PATH"), LiveConsumer.as_asgi())]))
    )
    return ProtocolTypeRouter({"http": http, "websocket": socket})
