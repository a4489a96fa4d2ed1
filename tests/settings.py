"""Settings for the test server and in-process tests: the demo plus views made for tests."""

import os

os.environ.setdefault("DEMO_DEBUG", "0")

from demo_project.settings import *  # noqa: F403
from demo_project.settings import DJUST, INSTALLED_APPS, STATE_DIR

INSTALLED_APPS = [*INSTALLED_APPS, "tests.app"]
ROOT_URLCONF = "tests.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DJUST = {
    **DJUST,
    "UPLOAD_DIR": str(STATE_DIR / "uploads"),
    "UPLOAD_STALL_TIMEOUT": float(os.environ.get("TEST_STALL_TIMEOUT", "30")),
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
