"""Test LiveViews without a browser: mount through the real consumer, fire events, upload files.

``LiveViewTestClient`` is synchronous, for ordinary Django tests::

    from djust.testing import LiveViewTestClient

    def test_counter(transactional_db):
        view = LiveViewTestClient().get("/counter/")
        view.event("increment", by=5)
        assert '<output id="count">5</output>' in view.html

``LiveClient`` is the asynchronous core; it speaks ``docs/protocol.md`` over any transport
(the consumer in process, or a real socket with ``websockets``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from djust.transport.protocol import HEADER_SIZE, encode_chunk

T = TypeVar("T")

_TOKEN = re.compile(r'dj-view="([^"]+)"')


def token_from_html(html: str) -> str:
    """The view token in a rendered page."""
    match = _TOKEN.search(html)
    if match is None:
        raise AssertionError("the page has no LiveView root (dj-view attribute)")
    return match.group(1).replace("&quot;", '"').replace("&amp;", "&")


class Transport:
    """What ``LiveClient`` needs from a connection."""

    async def send_text(self, text: str) -> None:
        raise NotImplementedError

    async def send_bytes(self, data: bytes) -> None:
        raise NotImplementedError

    async def receive(self, timeout: float) -> str | bytes:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class WebSocketTransport(Transport):
    """A real WebSocket (``websockets`` library), for tests and benchmarks against a server."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, url: str, origin: str, **kwargs: Any) -> WebSocketTransport:
        from websockets.asyncio.client import connect

        ws = await connect(url, origin=origin, compression=None, max_size=None, **kwargs)
        return cls(ws)

    async def send_text(self, text: str) -> None:
        await self.ws.send(text)

    async def send_bytes(self, data: bytes) -> None:
        await self.ws.send(data)

    async def receive(self, timeout: float) -> str | bytes:
        return await asyncio.wait_for(self.ws.recv(), timeout)

    async def close(self) -> None:
        await self.ws.close()


class CommunicatorTransport(Transport):
    """The real consumer, in process: ASGI events through asgiref's ``ApplicationCommunicator``."""

    def __init__(self, communicator: Any) -> None:
        self.communicator = communicator

    @classmethod
    async def connect(
        cls,
        application: Any,
        path: str,
        headers: list[tuple[bytes, bytes]],
        scheme: str = "ws",
    ) -> CommunicatorTransport:
        from asgiref.testing import ApplicationCommunicator

        scope = {
            "type": "websocket",
            "scheme": scheme,
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers,
            "subprotocols": [],
            "client": ("127.0.0.1", 0),
            "server": ("testserver", 80),
        }
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "websocket.connect"})
        reply = await communicator.receive_output(10)
        if reply["type"] != "websocket.accept":
            raise AssertionError(f"the WebSocket was refused: {reply}")
        return cls(communicator)

    async def send_text(self, text: str) -> None:
        await self.communicator.send_input({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self.communicator.send_input({"type": "websocket.receive", "bytes": data})

    async def receive(self, timeout: float) -> str | bytes:
        message = await self.communicator.receive_output(timeout)
        if message["type"] == "websocket.close":
            raise ConnectionError(f"closed with code {message.get('code')}")
        return message.get("text") if message.get("text") is not None else message["bytes"]

    async def close(self) -> None:
        await self.communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.communicator.wait(5)


class ServerError(AssertionError):
    """The server answered with an error message."""

    def __init__(self, message: dict[str, Any]) -> None:
        super().__init__(f"{message.get('code')}: {message.get('message')}")
        self.code = message.get("code")
        self.payload = message


@dataclass
class UploadResult:
    """How an upload ended: ``status`` is ``complete`` or ``error`` (with ``code``)."""

    ref: str
    status: str
    code: str | None = None
    message: str | None = None
    acks: list[int] = field(default_factory=list)
    sha256: str = ""
    token: str | None = None  # what resumes it after a drop (``upload(..., resume=token)``)
    offset: int = 0  # where the server said to start (beyond 0 on a resume)
    sent: int = 0  # bytes sent by this call


class LiveClient:
    """The asynchronous protocol client."""

    def __init__(self, transport: Transport, *, timeout: float = 30.0) -> None:
        self.transport = transport
        self.timeout = timeout
        self.html = ""
        self.uploads: dict[str, Any] = {}
        self.max_frame_size = 1024 * 1024 + 64  # the server's, from mounted
        self.received: list[dict[str, Any]] = []
        self._next_id = 1
        self._next_ref = 0
        self._backlog: list[dict[str, Any]] = []
        self._receiving = asyncio.Lock()

    # -- messages --------------------------------------------------------------------

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def send(self, message: dict[str, Any]) -> None:
        await self.transport.send_text(json.dumps(message))

    async def _receive(self) -> dict[str, Any]:
        raw = await self.transport.receive(self.timeout)
        message = json.loads(raw)
        self.received.append(message)
        if message.get("html") is not None:
            self.html = message["html"]
        if message.get("uploads") is not None:
            self.uploads = message["uploads"]
        if message.get("max_frame_size") is not None:
            self.max_frame_size = message["max_frame_size"]
        return message

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The next message matching ``predicate``; others are kept for later waits.

        Safe from concurrent tasks (several uploads at once): one task receives at a time and
        the others find what it received in the backlog.
        """
        while True:
            for i, message in enumerate(self._backlog):
                if predicate(message):
                    return self._backlog.pop(i)
            async with self._receiving:
                if any(predicate(m) for m in self._backlog):
                    continue
                message = await self._receive()
            if predicate(message):
                return message
            self._backlog.append(message)

    # -- the view --------------------------------------------------------------------

    async def mount(self, token: str) -> str:
        """Mount the view named by ``token``; returns its HTML."""
        await self.send({"t": "mount", "token": token})
        reply = await self.wait_for(lambda m: m["t"] in ("mounted", "error"))
        if reply["t"] == "error":
            raise ServerError(reply)
        return self.html

    async def event(self, name: str, **params: Any) -> dict[str, Any]:
        """Fire an event and wait for its reply; ``ServerError`` if the server refused it."""
        message_id = self._id()
        await self.send({"t": "event", "id": message_id, "name": name, "params": params})
        reply = await self.wait_for(lambda m: m.get("id") == message_id)
        if reply["t"] == "error":
            raise ServerError(reply)
        return reply

    async def ping(self) -> None:
        message_id = self._id()
        await self.send({"t": "ping", "id": message_id})
        await self.wait_for(lambda m: m["t"] == "pong" and m["id"] == message_id)

    # -- uploads ---------------------------------------------------------------------

    def new_ref(self) -> str:
        self._next_ref += 1
        return str(self._next_ref)

    async def register(
        self,
        slot: str,
        name: str,
        size: int,
        content_type: str = "",
        *,
        ref: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Announce a file; returns ``upload_registered`` or ``upload_error``.

        ``fields`` adds optional fields of the message: ``client_modified``, ``resume``,
        ``fallback`` (those given as None are left out).
        """
        ref = ref or self.new_ref()
        await self.send(
            {
                "t": "upload_register",
                "id": self._id(),
                "name": slot,
                "ref": ref,
                "client_name": name,
                "client_type": content_type,
                "client_size": size,
                **{key: value for key, value in fields.items() if value is not None},
            }
        )
        reply = await self.wait_for(
            lambda m: (
                (m.get("ref") == ref and m["t"] in ("upload_registered", "upload_error"))
                or m["t"] == "error"
            )
        )
        if reply["t"] == "error":
            raise ServerError(reply)
        return reply

    async def upload(
        self,
        slot: str,
        name: str,
        content: bytes,
        content_type: str = "",
        *,
        chunk_size: int | None = None,
        declared_size: int | None = None,
        runs: bool = False,
        resume: str | None = None,
        modified: int | None = None,
        stop_at: int | None = None,
    ) -> UploadResult:
        """Register and stream ``content`` with the server's window, as the browser does.

        One chunk per message; with ``runs=True``, as the browser sends them: runs of as many
        whole chunks as the window and the server's largest message allow. ``resume`` (a token
        from an earlier result) continues an upload from where the server says; ``stop_at``
        returns, with status ``sent``, once that many bytes of the file are sent (a drop).
        """
        size = len(content) if declared_size is None else declared_size
        reply = await self.register(
            slot, name, size, content_type, client_modified=modified, resume=resume
        )
        ref = reply["ref"]
        if reply["t"] == "upload_error":
            return UploadResult(ref, "error", reply["code"], reply["message"])
        chunk_size = chunk_size or self.uploads.get(slot, {}).get("chunk_size", 65536)
        window = reply["window"]
        result = UploadResult(ref, "uploading", sha256=hashlib.sha256(content).hexdigest())
        result.token, result.offset = reply.get("resume"), reply.get("offset", 0)
        sent = acked = result.offset
        view = memoryview(content)

        def ended(m: dict[str, Any]) -> bool:
            return m.get("ref") == ref and m["t"] in (
                "upload_ack",
                "upload_complete",
                "upload_error",
            )

        per_message = chunk_size
        if runs:
            per_message = max(1, (self.max_frame_size - HEADER_SIZE) // chunk_size) * chunk_size

        while True:
            while sent < len(content):
                end = min(len(content), acked + window, sent + per_message)
                if end < len(content):
                    end = sent + (end - sent) // chunk_size * chunk_size  # whole chunks
                if end <= sent:
                    break
                await self.transport.send_bytes(encode_chunk(ref, sent, view[sent:end], run=runs))
                result.sent += end - sent
                sent = end
                if stop_at is not None and sent >= stop_at:
                    result.status = "sent"
                    return result
            message = await self.wait_for(ended)
            if message["t"] == "upload_ack":
                acked = message["offset"]
                window = message.get("window", window)
                result.acks.append(acked)
            elif message["t"] == "upload_complete":
                result.status = "complete"
                return result
            else:
                result.status, result.code, result.message = (
                    "error",
                    message["code"],
                    message["message"],
                )
                return result

    async def close(self) -> None:
        await self.transport.close()


class LiveViewTestClient:
    """Synchronous: GET a page with Django's test client, then drive its LiveView in-process.

    Needs a database the consumer's threads can see: use ``transactional_db`` with pytest-django
    or ``TransactionTestCase``.
    """

    def __init__(self, client: Any = None) -> None:
        from django.test import Client

        self.client = client or Client()
        self._sessions: list[LiveViewSession] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _run(self, coroutine: Coroutine[Any, Any, T] | Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()  # type: ignore[arg-type]

    def get(self, path: str, *, secure: bool = False) -> LiveViewSession:
        """Render ``path`` over HTTP and mount its LiveView over the consumer.

        ``secure=True`` makes both requests as a browser on an ``https://`` page would (the
        socket is then ``wss``), like ``secure`` of Django's test client.
        """

        response = self.client.get(path, secure=secure)
        if response.status_code != 200:
            raise AssertionError(f"GET {path} answered {response.status_code}")
        return self.mount_html(response.content.decode(), secure=secure)

    def mount_html(self, html: str, *, secure: bool = False) -> LiveViewSession:
        """Mount the LiveView of a rendered page over this client's session and cookies."""
        from django.conf import settings

        from djust import conf
        from djust.asgi import get_asgi_application

        token = token_from_html(html)
        cookie = "; ".join(f"{k}={v.value}" for k, v in self.client.cookies.items())
        host = (settings.ALLOWED_HOSTS or ["testserver"])[0].lstrip(".").replace("*", "testserver")
        origin = f"{'https' if secure else 'http'}://{host}"
        headers = [(b"origin", origin.encode()), (b"host", host.encode())]
        if cookie:
            headers.append((b"cookie", cookie.encode()))

        async def connect() -> LiveClient:
            transport = await CommunicatorTransport.connect(
                get_asgi_application(),
                "/" + conf.get("WS_PATH"),
                headers,
                "wss" if secure else "ws",
            )
            live = LiveClient(transport)
            try:
                await live.mount(token)
            except BaseException:
                await live.close()
                raise
            return live

        session = LiveViewSession(self, self._run(connect()))
        self._sessions.append(session)
        return session

    def broadcast(self, group: str, event: str, /, **payload: Any) -> None:
        """Broadcast as the server would (``djust.broadcast``), on this client's event loop,
        where the in-memory channel layer delivers to the mounted views."""
        from djust.broadcasts import abroadcast

        self._run(abroadcast(group, event, **payload))

    def close(self) -> None:
        """Disconnect every mounted view (their uploads are discarded), then stop the loop."""
        for session in self._sessions:
            session.close()
        self._sessions.clear()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        from djust.transport import threads
        from djust.uploads import resume

        # The views ran on the process's shared threads: end them, so that no database
        # connection of this test (a transaction, an in-memory database) reaches the next one.
        threads.reset()
        # Uploads whose connection closed would wait for a page to resume them: none will.
        resume.reset()


class LiveViewSession:
    """A mounted view: ``html``, ``event()``, ``next_render()``, ``upload()``, ``close()``."""

    def __init__(self, owner: LiveViewTestClient, live: LiveClient) -> None:
        self._owner = owner
        self.live = live
        self.closed = False

    @property
    def html(self) -> str:
        return self.live.html

    def event(self, name: str, **params: Any) -> str:
        """Fire an event; returns the HTML after it."""
        self._owner._run(self.live.event(name, **params))
        return self.html

    def next_render(self, timeout: float = 5.0) -> str:
        """Wait for the server to re-render the view on its own (a broadcast, an upload's
        progress); returns the new HTML. ``TimeoutError`` if nothing comes."""

        async def wait() -> None:
            await asyncio.wait_for(self.live.wait_for(lambda m: m["t"] == "render"), timeout)

        self._owner._run(wait())
        return self.html

    def upload(self, slot: str, name: str, content: bytes, content_type: str = "") -> UploadResult:
        """Upload ``content`` into ``slot`` through the real protocol; waits for the outcome."""
        return self._owner._run(self.live.upload(slot, name, content, content_type))

    def close(self) -> None:
        """Disconnect (idempotent)."""
        if not self.closed:
            self.closed = True
            self._owner._run(self.live.close())
