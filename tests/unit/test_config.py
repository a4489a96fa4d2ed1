from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from djust.transport.protocol import HEADER_SIZE
from djust.uploads.config import MIN_CHUNK_SIZE, UploadConfig, make_config

FRAME = 64 * 1024 + HEADER_SIZE


def config(name: Any = "files", **options: Any) -> UploadConfig:
    return make_config(name, max_frame_size=FRAME, **options)


def test_defaults_follow_the_spec() -> None:
    c = config()
    assert (c.max_entries, c.max_file_size, c.chunk_size, c.auto_upload) == (
        1,
        10_000_000,
        65536,
        True,
    )
    assert c.accept.allows_all and not c.allow_active_content and c.writer is None


@pytest.mark.parametrize("name", ["", "1files", "my-files", "my files", "a.b", None, 3, b"files"])
def test_a_name_that_is_not_an_identifier_is_refused(name: Any) -> None:
    with pytest.raises(ImproperlyConfigured):
        config(name)


@pytest.mark.parametrize("accept", ["jpg", ".jp g", "image/", "*", "image/*/x", ".jpg;.png", 5])
def test_a_bad_accept_is_refused(accept: Any) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        config(accept=accept)
    assert "files" in str(caught.value)


def test_accept_is_parsed() -> None:
    c = config(accept=".JPG, image/png,video/*")
    assert c.accept.tokens == (".jpg", "image/png", "video/*")


@pytest.mark.parametrize("chunk_size", [MIN_CHUNK_SIZE, 16 * 1024, FRAME - HEADER_SIZE])
def test_chunk_size_within_bounds_is_accepted(chunk_size: int) -> None:
    assert config(chunk_size=chunk_size).chunk_size == chunk_size


@pytest.mark.parametrize("chunk_size", [0, 1, MIN_CHUNK_SIZE - 1, FRAME - HEADER_SIZE + 1, FRAME])
def test_chunk_size_out_of_bounds_is_refused(chunk_size: int) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        config(chunk_size=chunk_size)
    assert "chunk_size" in str(caught.value)


def test_the_default_chunk_size_needs_a_frame_larger_than_64_kib() -> None:
    # A 64 KiB chunk plus its 13-byte header does not fit in a 64 KiB frame.
    with pytest.raises(ImproperlyConfigured):
        make_config("files", max_frame_size=64 * 1024)
    assert make_config("files", max_frame_size=64 * 1024 + HEADER_SIZE).chunk_size == 64 * 1024


@pytest.mark.parametrize("field", ["max_entries", "max_file_size", "chunk_size"])
@pytest.mark.parametrize("value", [-1, 1.5, "10", True, None])
def test_limits_must_be_non_negative_ints(field: str, value: Any) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        config(**{field: value})
    assert field in str(caught.value)


def test_max_entries_must_be_at_least_one() -> None:
    with pytest.raises(ImproperlyConfigured):
        config(max_entries=0)


def test_max_file_size_of_zero_is_allowed() -> None:
    assert config(max_file_size=0).max_file_size == 0


def test_to_client_gives_what_the_browser_needs() -> None:
    c = config(
        accept=".pdf,image/*",
        max_entries=3,
        max_file_size=5000,
        chunk_size=2048,
        auto_upload=False,
        allow_active_content=True,
        writer=lambda: None,
    )
    assert c.to_client() == {
        "accept": ".pdf,image/*",
        "max_entries": 3,
        "max_file_size": 5000,
        "chunk_size": 2048,
        "auto_upload": False,
    }
