"""``manage.py djust_serve [addr:port]``: serve the project's ASGI app for LiveViews."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Serve ASGI_APPLICATION (HTTP and djust's WebSocket) under uvicorn."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--workers", type=int, default=1)
        parser.add_argument("--log-level", default="info")

    def handle(self, *args: Any, **options: Any) -> None:
        from djust.server import serve

        host, _, port = options["addrport"].rpartition(":")
        if not port.isdigit():
            raise CommandError(f"{options['addrport']!r} is not addr:port")
        app = getattr(settings, "ASGI_APPLICATION", None)
        if not app:
            raise CommandError("set ASGI_APPLICATION (see djust's README)")
        module, _, attr = app.rpartition(".")
        self.stdout.write(f"djust serving {app} on http://{host or '127.0.0.1'}:{port}/")
        serve(
            f"{module}:{attr}",
            host=host or "127.0.0.1",
            port=int(port),
            workers=options["workers"],
            log_level=options["log_level"],
        )
