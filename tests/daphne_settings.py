"""The test project with daphne installed as Channels' tutorial has it: ``runserver`` is daphne."""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = ["daphne", *INSTALLED_APPS]
