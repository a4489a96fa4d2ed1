"""The fault-injecting proxy of the test suite, against a plain TCP server: each fault does what
it says to both ends, and nothing else."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.faultproxy import FaultProxy


class Peer:
    """One connection the backend accepted: the bytes it got and how it ended."""

    def __init__(self, sock: socket.socket, echo: bool) -> None:
        self.sock = sock
        self.echo = echo
        self.received = bytearray()
        self.ended: str | None = None  # "eof" or "reset"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            while data := self.sock.recv(65536):
                self.received += data
                if self.echo:
                    self.sock.sendall(data)
            self.ended = "eof"
        except (ConnectionResetError, BrokenPipeError):
            self.ended = "reset"
        except OSError:
            self.ended = "closed"


class Backend:
    """A TCP server on 127.0.0.1 that echoes (or only takes) what each connection sends."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.peers: list[Peer] = []
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            sock.settimeout(None)
            self.peers.append(Peer(sock, self.echo))

    def close(self) -> None:
        self.stopping = True
        self.thread.join(5)
        self.listener.close()
        for peer in self.peers:
            with contextlib.suppress(OSError):
                peer.sock.shutdown(socket.SHUT_RDWR)
            peer.thread.join(5)
            peer.sock.close()


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        block = sock.recv(n - len(data))
        if not block:
            break
        data += block
    return bytes(data)


def read_to_end(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, str]:
    """What the client still reads, and how its connection ends: "eof", "reset" or "open"."""
    sock.settimeout(timeout)
    data = bytearray()
    try:
        while block := sock.recv(65536):
            data += block
        return bytes(data), "eof"
    except ConnectionResetError:
        return bytes(data), "reset"
    except TimeoutError:
        return bytes(data), "open"


def ending(sock: socket.socket, timeout: float = 5.0) -> str:
    """How the connection ends as the client sees it: "eof", "reset", or "open" (no news)."""
    return read_to_end(sock, timeout)[1]


@pytest.fixture
def backend() -> Iterator[Backend]:
    server = Backend()
    yield server
    server.close()


@pytest.fixture
def sink() -> Iterator[Backend]:
    server = Backend(echo=False)
    yield server
    server.close()


@pytest.fixture
def clients() -> Iterator:
    opened: list[socket.socket] = []

    def connect(port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        opened.append(sock)
        return sock

    yield connect
    for sock in opened:
        sock.close()


def test_bytes_pass_both_ways_and_are_counted(backend, clients) -> None:
    with FaultProxy(backend.port) as proxy:
        sock = clients(proxy.port)
        sock.sendall(b"hello, server")
        assert recv_exactly(sock, 13) == b"hello, server"
        assert (proxy.bytes_up, proxy.bytes_down, proxy.connections) == (13, 13, 1)
        assert len(proxy.accepted_at) == 1


def test_a_large_transfer_arrives_intact_under_flow_control(backend, clients) -> None:
    payload = os.urandom(16 * 1024 * 1024)
    with FaultProxy(backend.port) as proxy:
        sock = clients(proxy.port)
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        echoed = recv_exactly(sock, len(payload))
        sender.join()
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()


def test_reset_resets_the_client(backend, clients) -> None:
    with FaultProxy(backend.port) as proxy:
        sock = clients(proxy.port)
        sock.sendall(b"x")
        recv_exactly(sock, 1)
        proxy.reset()
        assert ending(sock) == "reset"


def test_reset_resets_the_server(backend, clients) -> None:
    with FaultProxy(backend.port) as proxy:
        clients(proxy.port).sendall(b"x")
        assert wait_for(lambda: backend.peers and backend.peers[0].received)
        proxy.reset()
        assert wait_for(lambda: backend.peers[0].ended is not None)
        assert backend.peers[0].ended == "reset"
        assert proxy.resets == 1


def test_a_client_connects_again_after_a_reset(backend, clients) -> None:
    with FaultProxy(backend.port) as proxy:
        clients(proxy.port).sendall(b"x")
        assert wait_for(lambda: proxy.bytes_down == 1)
        proxy.reset()
        again = clients(proxy.port)
        again.sendall(b"again")
        assert recv_exactly(again, 5) == b"again"
        assert proxy.connections == 2


def test_stall_forwards_nothing_and_closes_nothing(backend, clients) -> None:
    with FaultProxy(backend.port) as proxy:
        sock = clients(proxy.port)
        sock.sendall(b"before")
        recv_exactly(sock, 6)
        proxy.stall()
        sock.sendall(b"during")
        assert ending(sock, timeout=0.3) == "open"  # no echo, no EOF, no reset
        assert bytes(backend.peers[0].received) == b"before"
        assert backend.peers[0].ended is None


def test_resume_delivers_what_the_stall_held(backend, clients) -> None:
    with FaultProxy(backend.port) as proxy:
        sock = clients(proxy.port)
        sock.sendall(b"before")
        recv_exactly(sock, 6)
        proxy.stall()
        sock.sendall(b"during")
        proxy.resume()
        assert recv_exactly(sock, 6) == b"during"


def test_a_connection_made_during_a_stall_flows(backend, clients) -> None:
    with FaultProxy(backend.port) as proxy:
        clients(proxy.port).sendall(b"old")
        assert wait_for(lambda: proxy.bytes_down == 3)
        proxy.stall()
        fresh = clients(proxy.port)
        fresh.sendall(b"new")
        assert recv_exactly(fresh, 3) == b"new"


def test_half_open_resets_the_client(backend, clients) -> None:
    with FaultProxy(backend.port) as proxy:
        sock = clients(proxy.port)
        sock.sendall(b"x")
        recv_exactly(sock, 1)
        proxy.half_open()
        assert ending(sock) == "reset"


def test_half_open_leaves_the_server_connected_and_writing(backend, clients) -> None:
    with FaultProxy(backend.port) as proxy:
        sock = clients(proxy.port)
        sock.sendall(b"x")
        recv_exactly(sock, 1)
        proxy.half_open()
        assert ending(sock) == "reset"
        peer = backend.peers[0]
        for _ in range(100):  # the server's writes keep succeeding: it believes the client is there
            peer.sock.sendall(bytes(65536))
        assert peer.ended is None
        assert proxy.open_connections == 1


def test_a_half_open_connection_goes_when_the_server_closes_it(backend, clients) -> None:
    with FaultProxy(backend.port) as proxy:
        clients(proxy.port).sendall(b"x")
        assert wait_for(lambda: proxy.bytes_down == 1)
        proxy.half_open()
        backend.peers[0].sock.shutdown(socket.SHUT_RDWR)
        assert proxy.wait_for(lambda: proxy.open_connections == 0)


def test_reset_after_forwards_exactly_that_many_bytes_then_resets(sink, clients) -> None:
    with FaultProxy(sink.port) as proxy:
        sock = clients(proxy.port)
        sock.sendall(b"a")
        assert wait_for(lambda: sink.peers and sink.peers[0].received == b"a")
        proxy.reset_after(100_000)
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(os.urandom(500_000))
        assert ending(sock) == "reset"
        assert wait_for(lambda: sink.peers[0].ended is not None)
        assert len(sink.peers[0].received) == 1 + 100_000
        assert proxy.bytes_up == 1 + 100_000


def test_reset_after_fires_once(sink, clients) -> None:
    with FaultProxy(sink.port) as proxy:
        proxy.reset_after(10)
        first = clients(proxy.port)
        first.sendall(b"0123456789abc")
        assert ending(first) == "reset"
        second = clients(proxy.port)
        second.sendall(bytes(1000))
        assert wait_for(lambda: len(sink.peers) == 2 and len(sink.peers[1].received) == 1000)
        assert not proxy.armed
        assert proxy.resets == 1


def test_reset_after_counts_downstream_bytes_when_asked(backend, clients) -> None:
    with FaultProxy(backend.port) as proxy:
        sock = clients(proxy.port)
        proxy.reset_after(4, direction="down")
        sock.sendall(b"0123456789")
        assert read_to_end(sock) == (b"0123", "reset")
        assert proxy.bytes_down == 4


def test_a_client_is_reset_when_the_server_is_down(clients) -> None:
    with socket.create_server(("127.0.0.1", 0)) as unused:
        port = unused.getsockname()[1]
    with FaultProxy(port) as proxy:
        try:
            outcome = ending(clients(proxy.port))
        except ConnectionResetError:
            outcome = "reset"  # the reset came before connect() returned
        assert outcome == "reset"
        assert wait_for(lambda: proxy.open_connections == 0)


def test_an_orderly_close_passes_through_half_closed(backend, clients) -> None:
    with FaultProxy(backend.port) as proxy:
        sock = clients(proxy.port)
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        assert recv_exactly(sock, 10) == b"last words"  # the server still answered
        assert wait_for(lambda: backend.peers[0].ended == "eof")


def test_close_ends_the_thread_and_every_connection(backend, clients) -> None:
    proxy = FaultProxy(backend.port).start()
    sock = clients(proxy.port)
    sock.sendall(b"x")
    recv_exactly(sock, 1)
    proxy.close()
    assert not proxy._thread.is_alive()
    assert ending(sock) in ("eof", "reset")
    assert wait_for(lambda: backend.peers[0].ended is not None)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()


def test_close_leaves_no_socket_or_thread_behind() -> None:
    threads, descriptors = threading.active_count(), len(os.listdir("/proc/self/fd"))
    backend = Backend()
    with FaultProxy(backend.port) as proxy:
        half = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        half.sendall(b"x")
        assert wait_for(lambda: proxy.bytes_down == 1)
        proxy.half_open()
        stalled = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        stalled.sendall(b"y")
        assert wait_for(lambda: proxy.bytes_down == 2)
        proxy.stall()
    half.close()
    stalled.close()
    backend.close()
    assert threading.active_count() == threads
    assert len(os.listdir("/proc/self/fd")) == descriptors
