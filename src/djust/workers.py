"""gunicorn worker classes that run uvicorn with djust's settings.

    gunicorn mysite.asgi:application -k djust.workers.UvicornWorker

Needs gunicorn and a uvicorn worker base: the ``uvicorn-worker`` package (``djust[gunicorn]``),
or the older ``uvicorn.workers`` module of uvicorn itself.
"""

from __future__ import annotations

import warnings
from typing import Any

from djust.server import UVICORN_OPTIONS

try:
    from uvicorn_worker import UvicornWorker as _UvicornWorker
except ImportError:  # uvicorn's own module, deprecated in favour of the package
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from uvicorn.workers import UvicornWorker as _UvicornWorker

__all__ = ["UvicornWorker"]


class UvicornWorker(_UvicornWorker):
    """uvicorn as ``manage.py djust_serve`` runs it: no permessage-deflate, sans-I/O websockets."""

    CONFIG_KWARGS: dict[str, Any] = {**_UvicornWorker.CONFIG_KWARGS, **UVICORN_OPTIONS}

    def load_wsgi(self) -> None:
        super().load_wsgi()
        # Loading the application set Django up: now djust's settings can be read. As under
        # djust_serve, the server refuses (1009) any message above djust's own limit.
        from django.conf import settings

        if settings.configured:
            from djust import conf

            self.config.ws_max_size = max(conf.get("MAX_FRAME_SIZE"), conf.get("MAX_TEXT_SIZE"))
