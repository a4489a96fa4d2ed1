"""Settings for bench/s3.py's server: the bench settings, with its page of S3 slots at the root.

The S3 settings themselves (django-storages' ``S3Storage`` as ``default_storage``, the bucket on
moto's server) come from tests/settings.py, which reads ``TEST_S3_ENDPOINT``/``TEST_S3_BUCKET``.
"""

from bench.settings import *  # noqa: F403

ROOT_URLCONF = "bench.s3_site"
