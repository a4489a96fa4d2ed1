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
# Lower limits for servers that tests start with ``make_server(TEST_...="...")``.
_LIMITS = {
    "TEST_MAX_FPS": "MAX_FRAMES_PER_SECOND",
    "TEST_MAX_REGISTRATIONS": "MAX_REGISTRATIONS_PER_MINUTE",
    "TEST_MAX_CONNECTION_BYTES": "MAX_UPLOAD_BYTES_PER_CONNECTION",
    "TEST_UPLOAD_WINDOW": "UPLOAD_WINDOW",
    "TEST_MAX_FRAME_SIZE": "MAX_FRAME_SIZE",
}
DJUST.update({key: int(os.environ[env]) for env, key in _LIMITS.items() if env in os.environ})
LOGGING = {"version": 1, "disable_existing_loggers": False}
# Several workers: ``make_server(TEST_REDIS_URL=...)`` puts them on one Redis channel layer.
if "TEST_REDIS_URL" in os.environ:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["TEST_REDIS_URL"]]},
        }
    }
