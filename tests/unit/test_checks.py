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
        ({"MAX_SYNC_THREADS": 0}, "djust.E006"),
        ({"MAX_SYNC_THREADS": 8.5}, "djust.E006"),
        (
            {"SOCKET_MIDDLEWARE": "django.contrib.sessions.middleware.SessionMiddleware"},
            "djust.E007",
        ),
        ({"SOCKET_MIDDLEWARE": [1]}, "djust.E007"),
        ({"UPLOAD_DIRECT_IO": "16M"}, "djust.E005"),
        ({"UPLOAD_DIRECT_IO": True}, "djust.E005"),
        ({"UPLOAD_WINDOWS": 1}, "djust.W001"),
        ({"MAX_FRAMES_PER_SECOND": 0}, "djust.W002"),
        ({"UPLOAD_STALL_TIMEOUT": 0}, "djust.W003"),
        ({"MAX_UPLOADS_PER_CLIENT": 0}, "djust.E010"),
        ({"MAX_UPLOADS_PER_USER": "16"}, "djust.E010"),
        ({"MIN_FREE_DESCRIPTORS": -1}, "djust.E010"),
        ({"UPLOAD_MIN_RATE": None}, "djust.E010"),
        ({"UPLOAD_MIN_RATE_WINDOW": 0}, "djust.E010"),
        ({"MAX_TEXT_FRAMES_PER_SECOND": 0}, "djust.W005"),
        ({"MAX_TEXT_FRAMES_PER_SECOND_PER_PROCESS": 0}, "djust.W005"),
        ({"ALLOWED_ORIGINS": "https://app.example.com"}, "djust.E008"),
        ({"ALLOWED_ORIGINS": ["https://app.example.com/"]}, "djust.E008"),
        ({"ALLOWED_ORIGINS": ["app.example.com"]}, "djust.E008"),
        ({"ALLOWED_ORIGINS": ["https://*.example.com"]}, "djust.E008"),
        ({"ALLOWED_ORIGINS": ["*"]}, "djust.E008"),
    ],
)
def test_a_bad_setting_is_reported(djust, expected) -> None:
    assert ids(**djust) == [expected]


@pytest.mark.parametrize("value", [None, 0, 64 * 1024**2])
def test_upload_direct_io_takes_a_size_or_none(value) -> None:
    assert ids(UPLOAD_DIRECT_IO=value) == []


def test_allowed_origins_takes_full_origins() -> None:
    assert ids(ALLOWED_ORIGINS=["https://app.example.com", "http://127.0.0.1:8000"]) == []


def test_a_wildcard_host_without_allowed_origins_is_reported() -> None:
    with override_settings(ALLOWED_HOSTS=["*"]):
        assert ids() == ["djust.W004"]


def test_a_wildcard_host_with_allowed_origins_passes() -> None:
    with override_settings(ALLOWED_HOSTS=["*"]):
        assert ids(ALLOWED_ORIGINS=["https://app.example.com"]) == []


def test_channels_must_be_installed() -> None:
    apps = [app for app in settings.INSTALLED_APPS if app != "channels"]
    with override_settings(INSTALLED_APPS=apps):
        assert "djust.E002" in [message.id for message in check_settings()]


def test_an_upload_dir_other_users_can_write_is_an_error(tmp_path) -> None:
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads").chmod(0o777)
    assert ids(UPLOAD_DIR=str(tmp_path / "uploads")) == ["djust.E009"]


def test_the_upload_dir_error_says_what_to_do(tmp_path) -> None:
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads").chmod(0o777)
    with override_settings(DJUST={**settings.DJUST, "UPLOAD_DIR": str(tmp_path / "uploads")}):
        (message,) = check_settings()
    assert str(tmp_path / "uploads") in message.msg
    assert "chmod 700" in message.hint and "UPLOAD_DIR" in message.hint


def test_a_missing_upload_dir_passes_and_is_not_created_by_the_check(tmp_path) -> None:
    assert ids(UPLOAD_DIR=str(tmp_path / "uploads")) == []
    assert not (tmp_path / "uploads").exists()


@pytest.mark.parametrize(
    "key", ["MAX_UPLOADS_PER_PROCESS", "MAX_UPLOADS_PER_CLIENT", "MAX_UPLOADS_PER_USER"]
)
def test_upload_count_limits_may_be_turned_off_with_none(key) -> None:
    assert ids(**{key: None}) == []


@pytest.mark.parametrize("value", [None, 0, 0.0])
def test_a_stall_timeout_of_none_or_0_is_reported_as_off(value) -> None:
    assert ids(UPLOAD_STALL_TIMEOUT=value) == ["djust.W003"]


@pytest.mark.parametrize("value", ["30", True, [30]])
def test_a_stall_timeout_that_is_not_a_number_is_an_error(value) -> None:
    assert ids(UPLOAD_STALL_TIMEOUT=value) == ["djust.E012"]


def test_a_fractional_stall_timeout_passes() -> None:
    assert ids(UPLOAD_STALL_TIMEOUT=2.5) == []
