"""Settings for the test server and in-process tests: the demo plus views made for tests."""

import os

os.environ.setdefault("DEMO_DEBUG", "0")

from demo_project.settings import *  # noqa: F403
from demo_project.settings import DJUST, INSTALLED_APPS, MIDDLEWARE, STATE_DIR

INSTALLED_APPS = [*INSTALLED_APPS, "tests.app"]
ROOT_URLCONF = "tests.urls"
# A site in two languages: LocaleMiddleware after the session, before CommonMiddleware.
MIDDLEWARE = [*MIDDLEWARE]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.common.CommonMiddleware"),
    "django.middleware.locale.LocaleMiddleware",
)
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "French")]
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DJUST = {
    **DJUST,
    "UPLOAD_DIR": os.environ.get("TEST_UPLOAD_DIR", str(STATE_DIR / "uploads")),
    # "None" turns the timeout off, as 0 does.
    "UPLOAD_STALL_TIMEOUT": (
        None
        if os.environ.get("TEST_STALL_TIMEOUT") == "None"
        else float(os.environ.get("TEST_STALL_TIMEOUT", "30"))
    ),
}
# Lower limits for servers that tests start with ``make_server(TEST_...="...")``.
_LIMITS = {
    "TEST_MAX_FPS": "MAX_FRAMES_PER_SECOND",
    "TEST_MAX_REGISTRATIONS": "MAX_REGISTRATIONS_PER_MINUTE",
    "TEST_MAX_CONNECTION_BYTES": "MAX_UPLOAD_BYTES_PER_CONNECTION",
    "TEST_UPLOAD_WINDOW": "UPLOAD_WINDOW",
    "TEST_MAX_FRAME_SIZE": "MAX_FRAME_SIZE",
    "TEST_MAX_TEXT_FPS": "MAX_TEXT_FRAMES_PER_SECOND",
    "TEST_MAX_PROCESS_TEXT_FPS": "MAX_TEXT_FRAMES_PER_SECOND_PER_PROCESS",
    "TEST_MAX_PROCESS_BYTES": "MAX_UPLOAD_BYTES_PER_PROCESS",
    "TEST_MIN_RATE": "UPLOAD_MIN_RATE",
    "TEST_RESUME_TTL": "UPLOAD_RESUME_TTL",
    "TEST_MIN_RATE_WINDOW": "UPLOAD_MIN_RATE_WINDOW",
    "TEST_MAX_UPLOADS_PER_PROCESS": "MAX_UPLOADS_PER_PROCESS",
    "TEST_MAX_UPLOADS_PER_CLIENT": "MAX_UPLOADS_PER_CLIENT",
    "TEST_MAX_UPLOADS_PER_USER": "MAX_UPLOADS_PER_USER",
    "TEST_MIN_FREE_DESCRIPTORS": "MIN_FREE_DESCRIPTORS",
}
# Uploads end with their connection unless a test starts a server that resumes them
# (``make_server(TEST_RESUME_TTL="60")``): the rest of the suite checks what a drop cleans up.
DJUST["UPLOAD_RESUME_TTL"] = 0
DJUST.update({key: int(os.environ[env]) for env, key in _LIMITS.items() if env in os.environ})
# A server short of file descriptors: ``make_server(TEST_NOFILE="256")``.
if "TEST_NOFILE" in os.environ:
    import resource

    resource.setrlimit(
        resource.RLIMIT_NOFILE,
        (int(os.environ["TEST_NOFILE"]), resource.getrlimit(resource.RLIMIT_NOFILE)[1]),
    )
LOGGING = {"version": 1, "disable_existing_loggers": False}
# Several workers: ``make_server(TEST_REDIS_URL=...)`` puts them on one Redis channel layer.
if "TEST_REDIS_URL" in os.environ:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["TEST_REDIS_URL"]]},
        }
    }
# PostgreSQL: ``make_server(TEST_DATABASE_URL="postgres://user@host:port/name")``.
if "TEST_DATABASE_URL" in os.environ:
    from urllib.parse import urlsplit

    _db = urlsplit(os.environ["TEST_DATABASE_URL"])
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _db.path.lstrip("/"),
            "USER": _db.username or "",
            "PASSWORD": _db.password or "",
            "HOST": _db.hostname or "",
            "PORT": str(_db.port or ""),
        }
    }
# Served under a script name: ``make_server(TEST_SCRIPT_NAME="/sub")``.
if "TEST_SCRIPT_NAME" in os.environ:
    ASGI_APPLICATION = "tests.subpath.application"
    STATIC_URL = os.environ["TEST_SCRIPT_NAME"] + "/static/"
# The tests' proxy says "https" in this header (as a TLS-terminating proxy in front would).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Origins besides the site's own: ``make_server(TEST_ALLOWED_ORIGINS="https://a.test,...")``.
if "TEST_ALLOWED_ORIGINS" in os.environ:
    DJUST["ALLOWED_ORIGINS"] = os.environ["TEST_ALLOWED_ORIGINS"].split(",")
# S3 (moto's server, tests/s3server.py): ``make_server(**s3.env(bucket))``. The default storage
# is django-storages' S3 under ``media/``, as a site that keeps its files in a bucket has it.
if "TEST_S3_ENDPOINT" in os.environ:
    AWS_S3_ENDPOINT_URL = os.environ["TEST_S3_ENDPOINT"]
    AWS_STORAGE_BUCKET_NAME = os.environ["TEST_S3_BUCKET"]
    AWS_ACCESS_KEY_ID = "djust-test"
    AWS_SECRET_ACCESS_KEY = "djust-test-secret"
    AWS_S3_REGION_NAME = "us-east-1"
    AWS_LOCATION = "media"
    STORAGES = {
        "default": {"BACKEND": "storages.backends.s3.S3Storage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
