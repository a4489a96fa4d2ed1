"""Settings for the peer server (djust 1.2.6 from PyPI, run from its own virtual environment).

Its message-size and rate limits are raised so that a 1 GiB upload in 64 KiB chunks completes:
by default every chunk frame (65,557 bytes) is over the 65,536-byte message limit and the
upload-frame bucket (200 frames/s) drops chunks and then disconnects.
"""

import os
from pathlib import Path

STATE_DIR = Path(os.environ["PEER_STATE_DIR"])

SECRET_KEY = "bench-peer-not-secret"
DEBUG = os.environ.get("PEER_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "djust",
    "bench.peer_site",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "bench.peer_site.urls"
ASGI_APPLICATION = "bench.peer_site.asgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": STATE_DIR / "db.sqlite3"}}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
MEDIA_ROOT = STATE_DIR / "media"
STATIC_URL = "/static/"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LIVEVIEW_ALLOWED_MODULES = ["bench.peer_site"]
LIVEVIEW_CONFIG = {
    "max_message_size": 2 * 1024 * 1024,
    "rate_limit": {
        "rate": 1_000_000,
        "burst": 1_000_000,
        "upload_rate": 1_000_000,
        "upload_burst": 1_000_000,
        "max_connections_per_ip": 100,
    },
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
