from __future__ import annotations

from django.apps import AppConfig


class DjustConfig(AppConfig):
    name = "djust"
    verbose_name = "djust"

    def ready(self) -> None:
        from djust import checks  # noqa: F401  (registers the system checks)
