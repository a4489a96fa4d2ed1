"""Settings for the benchmark server: the test project plus the bench-only pages and routes.

Served by ``manage.py djust_serve`` like the test server, so djust, the raw WebSocket sink and
the plain Django POST view all run in one uvicorn process with the same options.
"""

import os

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
ASGI_APPLICATION = "bench.asgi.application"
# Django's defaults for request bodies and multipart uploads are kept on purpose (files above
# 2.5 MB go to a temp file through TemporaryFileUploadHandler); only logging is quieter.
LOGGING = {"version": 1, "disable_existing_loggers": False}
# djust's default grace period, which the test suite turns off: uploads resume after a drop, as
# in production (``TEST_RESUME_TTL=0`` measures without; bench/resume.py --no-resume).
DJUST["UPLOAD_RESUME_TTL"] = int(os.environ.get("TEST_RESUME_TTL", 600))  # noqa: F405
