"""What the uploads of a process hold, and whether one more may register (pure policy).

An unfinished upload is charged the bytes it has received plus a reservation of at most one
window ahead of them (what its client may send before the next acknowledgement); a complete one
is charged its size. A client that declares 10 GiB and sends a byte now and then holds one
window, not 10 GiB: holding the process's quota costs a client the bytes it really sends.
Unfinished uploads are also counted, for the process (each may hold a temp-file descriptor)
and for whoever registered them: a signed-in user, or an anonymous visitor's address.
"""

from __future__ import annotations

import ipaddress
import os
import resource
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from djust.errors import QuotaExceeded


@dataclass(frozen=True)
class Limits:
    """The process-wide limits (``DJUST`` settings); ``None`` turns a count limit off."""

    process_bytes: int
    reservation: int
    uploads_per_process: int | None = None
    uploads_per_client: int | None = None
    uploads_per_user: int | None = None
    min_free_descriptors: int | None = None


class Hold:
    """One upload's share of the process: its charged bytes and whom it counts against."""

    __slots__ = ("charged", "client", "released", "unfinished", "user", "waiting")

    def __init__(self, charged: int, client: str | None, user: str | None) -> None:
        self.charged = charged
        self.client = client
        self.user = user
        self.unfinished = True
        self.waiting = True  # no byte yet, so no temp file open yet
        self.released = False


class Ledger:
    """The process's account of its uploads. Thread-safe: entries leave on handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes = 0  # charged bytes of all entries, unfinished or complete
        self.uploads = 0  # unfinished uploads
        self.waiting = 0  # unfinished uploads that have not received a byte (no file open yet)
        self.opened = 0  # uploads that ever received bytes (opened a file): a running count
        self.clients: Counter[str] = Counter()
        self.users: Counter[str] = Counter()

    def admit(
        self,
        limits: Limits,
        size: int,
        *,
        client: str | None,
        user: str | None,
        free_descriptors: int | None = None,
    ) -> Hold:
        """Charge a new upload of ``size`` declared bytes, or raise ``QuotaExceeded``.

        ``user`` (signed in) counts against ``uploads_per_user`` wherever it connects from;
        otherwise ``client`` (the address) counts against ``uploads_per_client``.
        """
        charge = min(size, limits.reservation)
        with self._lock:
            if size > limits.process_bytes:
                raise QuotaExceeded(
                    f"a file of {size} bytes is more than this server holds at once "
                    f"({limits.process_bytes} bytes)"
                )
            if self.bytes + charge > limits.process_bytes:
                raise QuotaExceeded("the server holds too many uploaded bytes; try again later")
            if _over(self.uploads, limits.uploads_per_process):
                raise QuotaExceeded("the server has too many uploads in progress; try again later")
            if user is not None:
                if _over(self.users[user], limits.uploads_per_user):
                    raise QuotaExceeded(
                        f"at most {limits.uploads_per_user} uploads at once per user"
                    )
            elif client is not None and _over(self.clients[client], limits.uploads_per_client):
                raise QuotaExceeded(
                    f"at most {limits.uploads_per_client} uploads at once from one address"
                )
            if (
                free_descriptors is not None
                and limits.min_free_descriptors is not None
                # Uploads without a byte yet open their file later: count them as open.
                and free_descriptors - self.waiting - 1 < limits.min_free_descriptors
            ):
                raise QuotaExceeded("the server is short of file descriptors; try again later")
            self.bytes += charge
            self.uploads += 1
            self.waiting += 1
            if user is not None:
                self.users[user] += 1
            elif client is not None:
                self.clients[client] += 1
            return Hold(charge, client if user is None else None, user)

    def grow(self, hold: Hold, want: int, limits: Limits) -> None:
        """Raise ``hold``'s charge towards ``want`` bytes, as far as the process has room."""
        with self._lock:
            if hold.released:
                return
            more = min(want - hold.charged, limits.process_bytes - self.bytes)
            if more > 0:
                hold.charged += more
                self.bytes += more

    def streaming(self, hold: Hold) -> None:
        """The upload's first bytes arrived: its file is being opened."""
        with self._lock:
            if hold.waiting and not hold.released:
                hold.waiting = False
                self.waiting -= 1
                self.opened += 1

    def finish(self, hold: Hold) -> None:
        """Every byte arrived: the upload is no longer counted as unfinished (its bytes are)."""
        with self._lock:
            if hold.unfinished and not hold.released:
                self._uncount(hold)

    def release(self, hold: Hold) -> None:
        """The entry left: everything it held is free again (idempotent)."""
        with self._lock:
            if hold.released:
                return
            if hold.unfinished:
                self._uncount(hold)
            self.bytes -= hold.charged
            hold.released = True

    def _uncount(self, hold: Hold) -> None:
        hold.unfinished = False
        self.uploads -= 1
        if hold.waiting:
            hold.waiting = False
            self.waiting -= 1
        for counter, key in ((self.users, hold.user), (self.clients, hold.client)):
            if key is not None:
                counter[key] -= 1
                if not counter[key]:
                    del counter[key]


def _over(count: int, limit: int | None) -> bool:
    return limit is not None and count >= limit


def client_key(client: object) -> str | None:
    """Whom an ASGI scope's ``client`` stands for: its address, or its /64 network for IPv6
    (one subscriber's share); ``None`` when the server knows no address (a Unix socket)."""
    if not isinstance(client, list | tuple) or not client or not isinstance(client[0], str):
        return None
    host = client[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


_FD_DIRS = ("/proc/self/fd", "/dev/fd")


class DescriptorGauge:
    """Free descriptors, listed at most every ``max_age`` seconds: listing costs about 0.4 µs
    per open descriptor (2 ms at 5,000). In between, the last count less the upload files
    opened since (``Ledger.opened``)."""

    def __init__(
        self,
        max_age: float = 0.1,
        probe: Callable[[], int | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age
        self._probe = probe or free_descriptors
        self._clock = clock
        self._at = -max_age  # never counted
        self._free: int | None = None
        self._opened = 0

    def free(self, opened: int) -> int | None:
        now = self._clock()
        if now - self._at >= self.max_age:
            self._at, self._free, self._opened = now, self._probe(), opened
        if self._free is None:
            return None
        return self._free - (opened - self._opened)


def free_descriptors() -> int | None:
    """File descriptors this process may still open (soft ``RLIMIT_NOFILE``); ``None`` if
    unknown or unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    for directory in _FD_DIRS:
        try:
            # Listing opens one descriptor of its own, which it closes again.
            return soft - (len(os.listdir(directory)) - 1)
        except OSError:
            continue
    return None
