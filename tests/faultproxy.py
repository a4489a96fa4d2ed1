"""A fault-injecting TCP proxy between a client (a browser, ``LiveClient``) and a real server.

It runs its own event loop on a background thread, so synchronous tests drive it directly::

    with FaultProxy(server.port) as proxy:
        page.goto(proxy.url + "/t/uploads/")
        proxy.reset_after(20 * MIB)  # the network drops once, a fifth of the way in
        ...

Every control returns once it has taken effect on the proxy's loop. Faults hit the connections
open at the time of the call; connections accepted afterwards (the client reconnecting) are
forwarded normally.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

UP, DOWN = "up", "down"  # client -> server, server -> client
_LINGER_ZERO = struct.pack("ii", 1, 0)  # close() then sends RST instead of FIN


def _rst(transport: asyncio.BaseTransport) -> None:
    """Close ``transport`` with a TCP reset (SO_LINGER 0), dropping anything unsent."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    transport.abort()


class _Side(asyncio.Protocol):
    """One socket of a proxied connection: the client's (``up`` flows out of it) or the server's."""

    def __init__(self, link: _Link, direction: str) -> None:
        self.link = link
        self.direction = direction  # the direction of the bytes this side reads
        self.transport: asyncio.Transport | None = None
        self.holds: set[str] = set()  # why reading is paused: "connect", "flow", "stall"
        self.eof = False  # the peer of this socket finished sending
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.apply()

    def data_received(self, data: bytes) -> None:
        self.link.forward(self, data)

    def eof_received(self) -> bool:
        self.link.eof(self)
        return True  # keep the socket half open: the peer may still be sending

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.link.lost(self, exc)

    # The other side's write buffer filled up: stop reading here until it drains.
    def pause_writing(self) -> None:
        self.link.other(self).hold("flow")

    def resume_writing(self) -> None:
        self.link.other(self).release("flow")

    def hold(self, reason: str) -> None:
        self.holds.add(reason)
        self.apply()

    def release(self, reason: str) -> None:
        self.holds.discard(reason)
        self.apply()

    def apply(self) -> None:
        """Pause or resume reading this socket as ``holds`` says."""
        transport = self.transport
        if transport is None or self.closed or transport.is_closing():
            return
        if self.holds and transport.is_reading():
            transport.pause_reading()
        elif not self.holds and not transport.is_reading():
            transport.resume_reading()


class _Link:
    """One client connection and its connection to the server."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.client = _Side(self, UP)
        self.server = _Side(self, DOWN)
        self.client.holds.add("connect")  # until the server side is connected
        self.connecting = True
        self.stalled = False
        self.half_open = False
        self.done = proxy._loop.create_future()

    def other(self, side: _Side) -> _Side:
        return self.server if side is self.client else self.client

    def forward(self, side: _Side, data: bytes) -> None:
        target = self.other(side)
        # A selector transport delivers nothing once paused; the stall check guards against a
        # read another transport implementation might still hand over.
        if self.half_open or self.stalled or target.transport is None or target.closed:
            return
        n = self.proxy._count(side.direction, len(data))
        target.transport.write(data if n == len(data) else data[:n])
        self.proxy._fire_if_tripped()

    def eof(self, side: _Side) -> None:
        side.eof = True
        target = self.other(side)
        if self.half_open:
            side.transport.close()  # type: ignore[union-attr]  # the server hung up at last
        elif target.transport is not None and not target.closed:
            if target.eof:  # both directions are finished: flush, then close
                side.transport.close()  # type: ignore[union-attr]
                target.transport.close()
            elif target.transport.can_write_eof():
                target.transport.write_eof()

    def lost(self, side: _Side, exc: Exception | None) -> None:
        target = self.other(side)
        keep = self.half_open and side is self.client  # the server must not hear of it
        if not keep and target.transport is not None and not target.closed:
            if exc is None:
                target.transport.close()  # an orderly close: flush, then FIN
            else:
                _rst(target.transport)  # a reset on one side resets the other
        self.settle()

    def settle(self) -> None:
        """Done once the client's socket is closed and the server's closed or never opened."""
        server_gone = self.server.closed or (self.server.transport is None and not self.connecting)
        if self.client.closed and server_gone and not self.done.done():
            self.done.set_result(None)
            self.proxy._links.discard(self)

    def reset(self) -> None:
        for side in (self.client, self.server):
            if side.transport is not None and not side.closed:
                _rst(side.transport)

    def stall(self) -> None:
        if self.half_open:
            return  # nothing flows on it already
        self.stalled = True
        self.client.hold("stall")
        self.server.hold("stall")

    def resume(self) -> None:
        self.stalled = False
        self.client.release("stall")
        self.server.release("stall")

    def drop_client(self) -> None:
        """Half open: reset the client's socket; keep the server's open, read and discard."""
        self.half_open = True
        self.stalled = False
        self.server.holds.clear()
        self.server.apply()
        if self.client.transport is not None and not self.client.closed:
            _rst(self.client.transport)


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target_port`` that resets, stalls and half-opens.

    Counters, readable from any thread: ``bytes_up`` (client to server), ``bytes_down``,
    ``connections`` (accepted so far), ``resets`` (times connections were reset),
    ``accepted_at`` (``time.monotonic()`` of each accept) and ``open_connections``.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = "127.0.0.1"
        self.port = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.connections = 0
        self.resets = 0
        self.accepted_at: list[float] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"faultproxy-{target_port}", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._trigger: tuple[str, int] | None = None  # (direction, counter value that resets)
        self._tripped = False
        self._closed = False

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Listen on a free port (``self.port``) and forward from now on."""
        self._thread.start()
        self._call(self._listen)
        return self

    def close(self) -> None:
        """Stop listening, close every connection and the loop, and join the thread."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            self._call(self._shutdown)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the server's pages through the proxy."""
        return f"http://{self.host}:{self.port}"

    @property
    def open_connections(self) -> int:
        """Client connections the proxy holds right now (half-open ones included)."""
        return self._call(lambda: len(self._links))

    # -- faults --------------------------------------------------------------------------

    def reset(self) -> None:
        """Reset both sides of every current connection (SO_LINGER 0, then close: RST)."""
        self._call(self._reset_all)

    def stall(self) -> None:
        """Stop forwarding both ways on every current connection, keeping its sockets open."""
        self._call(lambda: [link.stall() for link in self._links])

    def resume(self) -> None:
        """Forward again on the connections ``stall()`` held; nothing held back is lost."""
        self._call(lambda: [link.resume() for link in self._links])

    def half_open(self) -> None:
        """Reset the client side of every current connection and never tell the server.

        The server's socket stays open: what the server sends is read and discarded, nothing
        reaches it any more, and it is closed only when the server closes it or at ``close()``.
        """
        self._call(lambda: [link.drop_client() for link in list(self._links)])

    def reset_after(self, nbytes: int, direction: str = UP) -> None:
        """Once ``nbytes`` more bytes have been forwarded ``direction``, reset every connection.

        Exactly ``nbytes`` are forwarded (a read that crosses the mark is cut there); then the
        trigger is spent.
        """
        if direction not in (UP, DOWN):
            raise ValueError(f"direction must be {UP!r} or {DOWN!r}, not {direction!r}")
        if nbytes < 0:
            raise ValueError("nbytes must not be negative")

        def arm() -> None:
            if nbytes == 0:
                self._reset_all()
                return
            counted = self.bytes_up if direction == UP else self.bytes_down
            self._trigger = (direction, counted + nbytes)

        self._call(arm)

    @property
    def armed(self) -> bool:
        """True while a ``reset_after()`` has not fired yet."""
        return self._trigger is not None

    # -- waiting -------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Poll ``predicate`` (about the counters) until true or ``timeout``; returns its value."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return predicate()
            time.sleep(0.005)
        return True

    # -- the loop's side -----------------------------------------------------------------

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` (a function or a coroutine function) on the proxy's loop; its result."""
        if not self._thread.is_alive():
            raise RuntimeError("the proxy is not running")

        async def run() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            # Transports close their sockets in a callback: let those run before returning.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    async def _listen(self) -> None:
        self._server = await self._loop.create_server(
            self._accept, self.host, 0, reuse_address=True, backlog=128
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def _accept(self) -> _Side:
        link = _Link(self)
        self.connections += 1
        self.accepted_at.append(time.monotonic())
        self._links.add(link)
        task = self._loop.create_task(self._connect(link))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return link.client

    async def _connect(self, link: _Link) -> None:
        try:
            await self._loop.create_connection(lambda: link.server, *self.target)
        except OSError:
            # The server is down: the client sees its connection reset, as a refusal would.
            if link.client.transport is not None and not link.client.closed:
                _rst(link.client.transport)
            return
        finally:
            link.connecting = False
            link.settle()
        if link.client.closed or link.half_open:
            _rst(link.server.transport)  # type: ignore[arg-type]  # the client left meanwhile
        else:
            link.client.release("connect")

    def _count(self, direction: str, n: int) -> int:
        """Count ``n`` bytes forwarded ``direction``; how many of them may go (a trigger cuts)."""
        counted = self.bytes_up if direction == UP else self.bytes_down
        trigger = self._trigger
        if trigger is not None and trigger[0] == direction and counted + n >= trigger[1]:
            n = trigger[1] - counted
            self._trigger = None
            self._tripped = True
        if direction == UP:
            self.bytes_up += n
        else:
            self.bytes_down += n
        return n

    def _fire_if_tripped(self) -> None:
        if self._tripped:
            self._tripped = False
            self._reset_all()

    def _reset_all(self) -> None:
        self.resets += 1
        for link in list(self._links):
            link.reset()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for link in list(self._links):
            for side in (link.client, link.server):
                if side.transport is not None and not side.closed:
                    side.transport.abort()
        waiting = [link.done for link in self._links]
        if waiting:
            await asyncio.wait(waiting, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
