"""The process's upload ledger: what holding quota costs, and who may register another upload."""

from __future__ import annotations

import resource

import pytest

from djust.errors import QuotaExceeded
from djust.uploads.quota import DescriptorGauge, Ledger, Limits, client_key, free_descriptors

MiB = 1024 * 1024
WINDOW = 8 * MiB
LIMITS = Limits(process_bytes=50 * 1024**3, reservation=WINDOW)


def test_an_unfinished_upload_is_charged_one_window_not_its_declared_size():
    ledger = Ledger()
    ledger.admit(LIMITS, 10 * 1024**3, client="a", user=None)
    assert ledger.bytes == WINDOW


def test_a_small_upload_is_charged_its_size():
    ledger = Ledger()
    ledger.admit(LIMITS, 1000, client="a", user=None)
    assert ledger.bytes == 1000


def test_five_huge_declarations_leave_room_for_an_honest_upload():
    # The reported attack: five 10 GiB registrations on a 50 GiB process.
    ledger = Ledger()
    for i in range(5):
        ledger.admit(LIMITS, 10 * 1024**3, client=f"attacker{i}", user=None)
    ledger.admit(LIMITS, 10 * 1024**3, client="honest", user=None)
    assert ledger.bytes == 6 * WINDOW


def test_a_declaration_larger_than_the_process_holds_is_refused():
    with pytest.raises(QuotaExceeded, match="more than this server holds"):
        Ledger().admit(LIMITS, LIMITS.process_bytes + 1, client="a", user=None)


def test_a_full_process_refuses_a_registration():
    limits = Limits(process_bytes=3 * WINDOW, reservation=WINDOW)
    ledger = Ledger()
    for _ in range(3):
        ledger.admit(limits, 2 * WINDOW, client=None, user=None)
    with pytest.raises(QuotaExceeded, match="too many uploaded bytes"):
        ledger.admit(limits, 1, client=None, user=None)


def test_bytes_received_grow_the_charge_as_far_as_the_process_has_room():
    limits = Limits(process_bytes=20 * MiB, reservation=WINDOW)
    ledger = Ledger()
    hold = ledger.admit(limits, 20 * MiB, client=None, user=None)
    ledger.grow(hold, 12 * MiB, limits)
    assert (hold.charged, ledger.bytes) == (12 * MiB, 12 * MiB)
    other = ledger.admit(limits, 20 * MiB, client=None, user=None)
    ledger.grow(other, 30 * MiB, limits)
    assert other.charged == 8 * MiB and ledger.bytes == limits.process_bytes


def test_release_frees_everything_once():
    ledger = Ledger()
    hold = ledger.admit(LIMITS, 1024**3, client="a", user=None)
    ledger.streaming(hold)
    ledger.release(hold)
    ledger.release(hold)
    assert (ledger.bytes, ledger.uploads, ledger.waiting, ledger.clients) == (0, 0, 0, {})


def test_a_complete_upload_keeps_its_bytes_but_no_longer_counts_as_unfinished():
    limits = Limits(process_bytes=50 * 1024**3, reservation=WINDOW, uploads_per_client=1)
    ledger = Ledger()
    hold = ledger.admit(limits, 1000, client="a", user=None)
    ledger.finish(hold)
    assert (ledger.bytes, ledger.uploads) == (1000, 0)
    ledger.admit(limits, 1000, client="a", user=None)  # the address may start another


def test_an_address_may_hold_only_so_many_unfinished_uploads():
    limits = Limits(process_bytes=50 * 1024**3, reservation=WINDOW, uploads_per_client=3)
    ledger = Ledger()
    holds = [ledger.admit(limits, 10, client="198.51.100.7", user=None) for _ in range(3)]
    with pytest.raises(QuotaExceeded, match="from one address"):
        ledger.admit(limits, 10, client="198.51.100.7", user=None)
    ledger.admit(limits, 10, client="198.51.100.8", user=None)
    ledger.release(holds[0])
    ledger.admit(limits, 10, client="198.51.100.7", user=None)


def test_a_signed_in_user_counts_as_the_user_not_as_the_address():
    limits = Limits(
        process_bytes=50 * 1024**3,
        reservation=WINDOW,
        uploads_per_client=1,
        uploads_per_user=2,
    )
    ledger = Ledger()
    ledger.admit(limits, 10, client="office", user="1")
    ledger.admit(limits, 10, client="office", user="1")
    with pytest.raises(QuotaExceeded, match="per user"):
        ledger.admit(limits, 10, client="home", user="1")
    ledger.admit(limits, 10, client="office", user="2")  # a colleague behind the same NAT
    ledger.admit(limits, 10, client="office", user=None)


def test_the_process_may_hold_only_so_many_unfinished_uploads():
    limits = Limits(process_bytes=50 * 1024**3, reservation=WINDOW, uploads_per_process=2)
    ledger = Ledger()
    ledger.admit(limits, 10, client="a", user=None)
    ledger.admit(limits, 10, client="b", user=None)
    with pytest.raises(QuotaExceeded, match="too many uploads in progress"):
        ledger.admit(limits, 10, client="c", user=None)


def test_registrations_stop_before_the_descriptors_run_out():
    limits = Limits(process_bytes=50 * 1024**3, reservation=WINDOW, min_free_descriptors=100)
    ledger = Ledger()
    ledger.admit(limits, 10, client=None, user=None, free_descriptors=101)
    # The first upload has not opened its file yet: it will need one of the 101.
    with pytest.raises(QuotaExceeded, match="file descriptors"):
        ledger.admit(limits, 10, client=None, user=None, free_descriptors=101)


def test_an_upload_that_streams_has_its_descriptor_counted_by_the_system_not_twice():
    limits = Limits(process_bytes=50 * 1024**3, reservation=WINDOW, min_free_descriptors=100)
    ledger = Ledger()
    hold = ledger.admit(limits, 10, client=None, user=None, free_descriptors=101)
    ledger.streaming(hold)
    ledger.admit(limits, 10, client=None, user=None, free_descriptors=101)


@pytest.mark.parametrize(
    ("client", "key"),
    [
        (["203.0.113.9", 5000], "203.0.113.9"),
        (("2001:db8:1:2:3:4:5:6", 443), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:ffff::1", 443), "2001:db8:1:2::/64"),
        (("::ffff:203.0.113.9", 1), "203.0.113.9"),
        (("testclient", 50000), "testclient"),
        (None, None),
        ([], None),
    ],
)
def test_the_client_key_is_the_address_or_its_ipv6_subscriber_network(client, key):
    assert client_key(client) == key


def test_free_descriptors_follow_the_soft_limit():
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    free = free_descriptors()
    assert free is not None and 0 < free < soft
    with open(__file__, "rb"):
        assert free_descriptors() == free - 1


def test_the_descriptor_gauge_lists_at_most_every_max_age_and_counts_opened_files_between():
    now, probes = [0.0], []

    def probe() -> int:
        probes.append(now[0])
        return 500

    gauge = DescriptorGauge(max_age=0.1, probe=probe, clock=lambda: now[0])
    assert gauge.free(opened=7) == 500
    now[0] = 0.05
    assert gauge.free(opened=10) == 497  # three upload files opened since the count
    now[0] = 0.2
    assert gauge.free(opened=10) == 500
    assert probes == [0.0, 0.2]
