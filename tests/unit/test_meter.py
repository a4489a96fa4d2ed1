"""The upload speed the server reports in acks: bytes received over the last few seconds."""

from __future__ import annotations

from djust.uploads.meter import MIN_SPAN, SPAN, RateMeter


def test_no_rate_until_enough_time_is_measured():
    meter = RateMeter()
    assert meter.measure(10.0, 0) is None
    assert meter.measure(10.0 + MIN_SPAN / 2, 500_000) is None


def test_the_rate_is_bytes_over_seconds_since_the_first_sample():
    meter = RateMeter()
    meter.measure(10.0, 0)
    assert meter.measure(11.0, 250_000) == 250_000
    assert meter.measure(12.0, 750_000) == 375_000


def test_the_rate_forgets_what_is_older_than_a_span():
    meter = RateMeter()
    meter.measure(0.0, 0)
    for second in range(1, 11):  # 1 MB/s for ten seconds
        meter.measure(float(second), second * 1_000_000)
    # Then 100 KB/s: after a span and a bit, the fast seconds are gone.
    received = 10_000_000
    for tenth in range(1, int(SPAN * 10) + 11):
        received += 10_000
        rate = meter.measure(10.0 + tenth / 10, received)
    assert rate is not None and 100_000 <= rate < 200_000


def test_a_fast_upload_keeps_few_samples():
    meter = RateMeter()
    for i in range(100_000):  # acked every 10 µs for a second
        meter.measure(i / 100_000, i * 1000)
    assert len(meter._samples) <= 2 * 30 + 2
