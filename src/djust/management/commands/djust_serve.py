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
        parser.add_argument(
            "--allow-debug-public",
            action="store_true",
            help="Listen on an address other machines can reach even though DEBUG is on.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from djust.server import is_loopback, serve

        host, _, port = options["addrport"].rpartition(":")
        if not port.isdigit():
            raise CommandError(f"{options['addrport']!r} is not addr:port")
        host = host or "127.0.0.1"
        if settings.DEBUG and not is_loopback(host) and not options["allow_debug_public"]:
            # DEBUG pages show tracebacks, local variables and settings to whoever asks, and a
            # project run with DEBUG often has a development SECRET_KEY that signs view tokens.
            raise CommandError(
                f"refusing to listen on {host} with DEBUG on: anyone who can reach it would see "
                "tracebacks and settings. Turn DEBUG off, listen on 127.0.0.1, or pass "
                "--allow-debug-public if only you can reach this address."
            )
        app = getattr(settings, "ASGI_APPLICATION", None)
        if not app:
            raise CommandError("set ASGI_APPLICATION (see djust's README)")
        module, _, attr = app.rpartition(".")
        self.stdout.write(f"djust serving {app} on http://{host}:{port}/")
        serve(
            f"{module}:{attr}",
            host=host.removeprefix("[").removesuffix("]"),  # "[::1]" names the address ::1
            port=int(port),
            workers=options["workers"],
            log_level=options["log_level"],
        )
