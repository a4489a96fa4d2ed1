"""The registration policy on its own: what a declared file may be, without a socket."""

from __future__ import annotations

from typing import Any

import pytest

from djust.errors import (
    ActiveContent,
    BadMessage,
    BadName,
    BadSize,
    NotAccepted,
    QuotaExceeded,
    RateLimited,
    TooLarge,
    TooManyFiles,
)
from djust.transport.protocol import HEADER_SIZE
from djust.uploads import admission
from djust.uploads.config import make_config

FRAME = 64 * 1024 + HEADER_SIZE


def message(**fields: Any) -> dict[str, Any]:
    return {
        "client_name": "report.pdf",
        "client_type": "application/pdf",
        "client_size": 1000,
        **fields,
    }


def config(**options: Any):
    return make_config("docs", max_frame_size=FRAME, **options)


def test_a_declared_file_keeps_its_name_type_size_and_modification_time() -> None:
    file = admission.declared(message(client_modified=1700000000000))
    assert (file.client_name, file.client_type, file.size, file.modified) == (
        "report.pdf",
        "application/pdf",
        1000,
        1700000000000,
    )


def test_a_negative_size_is_bad_size() -> None:
    with pytest.raises(BadSize):
        admission.declared(message(client_size=-1))


@pytest.mark.parametrize("name", ["", "   ", "a" * 4097])
def test_an_empty_or_overlong_name_is_bad_name(name: str) -> None:
    with pytest.raises(BadName):
        admission.declared(message(client_name=name))


def test_a_folder_path_is_made_safe_and_a_traversal_refused() -> None:
    file = admission.declared(message(client_path="trip/day1/report.pdf"))
    assert file.client_path == "trip/day1/report.pdf"
    with pytest.raises(BadName):
        admission.declared(message(client_path="../report.pdf"))


def test_a_slot_that_is_full_refuses_with_too_many_files() -> None:
    file = admission.declared(message())
    with pytest.raises(TooManyFiles):
        admission.check_slot(config(max_entries=2), file, held=2)


def test_a_file_over_the_slot_limit_is_too_large() -> None:
    file = admission.declared(message(client_size=1001))
    with pytest.raises(TooLarge):
        admission.check_slot(config(max_file_size=1000), file, held=0)


def test_a_file_the_accept_list_does_not_name_is_not_accepted() -> None:
    file = admission.declared(message(client_name="tool.exe", client_type=""))
    with pytest.raises(NotAccepted):
        admission.check_slot(config(accept=".pdf", max_file_size=2000), file, held=0)


def test_markup_a_browser_would_run_is_active_content() -> None:
    file = admission.declared(message(client_name="page.html", client_type="text/html"))
    with pytest.raises(ActiveContent):
        admission.check_slot(config(max_file_size=2000), file, held=0)


def test_a_connection_streaming_its_limit_refuses_another() -> None:
    with pytest.raises(QuotaExceeded):
        admission.check_connection(streaming=4, max_streaming=4, reserved=0, size=1, max_bytes=10)


def test_a_connection_holding_its_bytes_refuses_a_file_that_would_not_fit() -> None:
    with pytest.raises(QuotaExceeded):
        admission.check_connection(streaming=0, max_streaming=4, reserved=8, size=3, max_bytes=10)


def test_a_browser_refusal_of_a_file_within_the_limit_is_bad_message() -> None:
    refused = message(code="too_large", client_size=500)
    with pytest.raises(BadMessage):
        admission.refusal(refused, config(max_file_size=1000))


def test_a_browser_refusal_is_the_slots_own_error() -> None:
    refused = message(code="too_large", client_size=5000)
    assert isinstance(admission.refusal(refused, config(max_file_size=1000)), TooLarge)


def test_registrations_beyond_the_minutes_budget_are_rate_limited() -> None:
    rate = admission.RegistrationRate(3)
    for _ in range(3):
        rate.take()
    with pytest.raises(RateLimited):
        rate.take()
