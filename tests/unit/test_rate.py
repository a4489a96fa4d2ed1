"""Frame budgets: a connection's token bucket, and the turns a process's connections share."""

from __future__ import annotations

from djust.transport.rate import TokenBucket, Turns


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_passes_a_burst_then_refuses():
    bucket = TokenBucket(200, clock=Clock())
    assert all(bucket.take() for _ in range(200))
    assert not bucket.take()


def test_a_bucket_refills_at_its_rate():
    clock = Clock()
    bucket = TokenBucket(200, clock=clock)
    while bucket.take():
        pass
    clock.now += 0.0501  # ten frames' worth
    assert sum(bucket.take() for _ in range(20)) == 10


def test_a_bucket_of_rate_zero_has_no_limit():
    bucket = TokenBucket(0, clock=Clock())
    assert all(bucket.take() for _ in range(100_000))


def test_turns_pass_a_burst_without_waiting():
    turns = Turns(1000, burst=50, clock=Clock())
    assert [turns.delay() for _ in range(50)] == [0.0] * 50


def test_turns_beyond_the_burst_wait_one_interval_each_in_order():
    turns = Turns(1000, burst=10, clock=Clock())
    for _ in range(10):
        turns.delay()
    delays = [turns.delay() for _ in range(3)]
    assert [round(d, 6) for d in delays] == [0.001, 0.002, 0.003]


def test_a_late_comer_waits_behind_the_turns_already_given_not_behind_a_flood():
    # A flooder holds one frame at a time: however fast it sends, each of its frames takes the
    # next turn after the ones already given, and so does the honest frame.
    clock = Clock()
    turns = Turns(1000, burst=1, clock=clock)
    flooder = turns.delay()
    honest = turns.delay()
    assert (flooder, round(honest, 6)) == (0.0, 0.001)
    clock.now += 0.001
    flooder_again = turns.delay()
    assert round(flooder_again, 6) == 0.001  # behind the honest frame, not before it


def test_turns_are_free_again_after_a_quiet_spell():
    clock = Clock()
    turns = Turns(1000, burst=5, clock=clock)
    for _ in range(20):
        turns.delay()
    clock.now += 10
    assert [turns.delay() for _ in range(5)] == [0.0] * 5
