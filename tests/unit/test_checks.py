"""System checks: each setting that would break uploads or remove a protection is reported."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

from djust.checks import check_settings


def ids(**djust) -> list[str]:
    with override_settings(DJUST={**settings.DJUST, **djust}):
        return [message.id for message in check_settings()]


def test_the_test_settings_pass() -> None:
    assert ids() == []


@pytest.mark.parametrize(
    ("djust", "expected"),
    [
        ({"MAX_FRAME_SIZE": 65536 + 12}, "djust.E001"),
        ({"UPLOAD_WINDOW": 1024 * 1024}, "djust.E003"),
        ({"MAX_CONCURRENT_UPLOADS": 0}, "djust.E004"),
        ({"UPLOAD_DIRECT_IO": "16M"}, "djust.E005"),
        ({"UPLOAD_DIRECT_IO": True}, "djust.E005"),
        ({"UPLOAD_WINDOWS": 1}, "djust.W001"),
        ({"MAX_FRAMES_PER_SECOND": 0}, "djust.W002"),
        ({"UPLOAD_STALL_TIMEOUT": 0}, "djust.W003"),
    ],
)
def test_a_bad_setting_is_reported(djust, expected) -> None:
    assert ids(**djust) == [expected]


@pytest.mark.parametrize("value", [None, 0, 64 * 1024**2])
def test_upload_direct_io_takes_a_size_or_none(value) -> None:
    assert ids(UPLOAD_DIRECT_IO=value) == []


def test_channels_must_be_installed() -> None:
    apps = [app for app in settings.INSTALLED_APPS if app != "channels"]
    with override_settings(INSTALLED_APPS=apps):
        assert "djust.E002" in [message.id for message in check_settings()]
