"""Folder uploads: the relative path a browser reports, as ``entry.client_path`` holds it."""

from __future__ import annotations

import pytest

from djust.uploads.names import MAX_DEPTH, safe_path


def test_a_plain_relative_path_is_kept():
    assert safe_path("photos/2024/beach.jpg", "beach.jpg") == "photos/2024/beach.jpg"


def test_each_part_is_made_a_safe_name():
    assert safe_path("my\u202edocs/CON/a.txt", "a.txt") == "mydocs/_CON/a.txt"


@pytest.mark.parametrize(
    "raw",
    [
        "../a.txt",
        "docs/../../a.txt",
        "/etc/a.txt",
        "docs//a.txt",
        "docs/./a.txt",
        "docs/",
        "docs\\a.txt",
        "/".join(["d"] * MAX_DEPTH + ["a.txt"]),
    ],
)
def test_anything_but_a_plain_relative_path_is_refused(raw):
    with pytest.raises(ValueError):
        safe_path(raw, "a.txt")


def test_the_path_must_end_in_the_files_name():
    with pytest.raises(ValueError):
        safe_path("docs/b.txt", "a.txt")
