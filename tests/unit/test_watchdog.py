"""The stall watchdog on its own: which silences it holds against a client."""

from __future__ import annotations

from typing import Any

from djust.uploads.entry import UploadEntry
from djust.uploads.flow import Transfer
from djust.uploads.watchdog import Watchdog


async def never(entry: UploadEntry, error: Any) -> None:
    raise AssertionError("not called in these tests")


def watchdog(timeout: float | None = 30, min_rate: float = 0) -> Watchdog:
    return Watchdog(
        timeout=timeout, min_rate=min_rate, rate_window=60, busy=lambda: False, on_stalled=never
    )


def uploading(size: int = 10_000_000) -> tuple[UploadEntry, Transfer]:
    entry = UploadEntry(
        ref="1",
        upload_name="any",
        client_name="a.bin",
        raw_name="a.bin",
        client_type="",
        client_size=size,
    )
    transfer = Transfer(entry, window=8 * 1024 * 1024, chunk_size=65536)
    transfer.resize(8 * 1024 * 1024)
    return entry, transfer


def test_an_upload_silent_past_the_timeout_is_stalled() -> None:
    entry, transfer = uploading()
    error = watchdog(timeout=30).stalled(entry, transfer, transfer.last_seen + 31)
    assert error is not None and error.code == "stalled"


def test_silence_while_a_handler_holds_the_session_is_not_a_stall() -> None:
    entry, transfer = uploading()
    dog = watchdog(timeout=30)
    assert dog.stalled(entry, transfer, transfer.last_seen + 31, busy=True) is None
    # The clock started again when the handler was seen: it counts from there.
    assert dog.stalled(entry, transfer, transfer.last_seen + 29) is None


def test_silence_while_the_client_waits_for_an_ack_is_not_a_stall() -> None:
    entry, transfer = uploading()
    entry.received = transfer.window  # a full window sent, nothing acknowledged
    assert watchdog(timeout=30).stalled(entry, transfer, transfer.last_seen + 31) is None


def test_a_timeout_of_none_or_zero_never_stalls() -> None:
    for timeout in (None, 0):
        entry, transfer = uploading()
        assert watchdog(timeout=timeout).stalled(entry, transfer, transfer.last_seen + 1e6) is None


def test_a_trickle_below_the_minimum_rate_over_its_window_is_stalled() -> None:
    entry, transfer = uploading()
    dog = watchdog(timeout=None, min_rate=1024)
    start = transfer.last_seen
    entry.received = 10
    assert dog.stalled(entry, transfer, start + 30) is None  # not a whole window yet
    entry.received = 20
    error = dog.stalled(entry, transfer, start + 61)
    assert error is not None and "bytes a second" in error.message
