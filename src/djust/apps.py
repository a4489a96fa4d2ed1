from __future__ import annotations

import logging

from django.apps import AppConfig

logger = logging.getLogger("djust")


class DjustConfig(AppConfig):
    name = "djust"
    verbose_name = "djust"

    def ready(self) -> None:
        from djust import auth, checks  # noqa: F401  (checks registers the system checks)
        from djust.uploads import resume
        from djust.uploads.writers import sweep_orphans

        auth.connect_signals()  # logout and user changes end the user's live pages

        # Uploads of a process that died (crash, SIGKILL) leave temp files nobody will remove;
        # those that can be resumed stay until their grace period ends.
        try:
            removed = sweep_orphans()
            removed += resume.sweep_quietly()
        except OSError as exc:
            logger.warning("djust: cannot sweep the upload directory: %s", exc)
        else:
            if removed:
                logger.info("djust: removed %d orphaned upload file(s)", len(removed))
