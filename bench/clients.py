"""The four upload paths, as clients that stream a file from disk (never the whole file in RAM).

1. djust: register, 64 KiB chunks in the server's window, acks, completion, then the ``save``
   event that consumes the entry into ``default_storage``. ``djust.testing.LiveClient`` does
   the messages; the chunk loop is ``LiveClient.upload``'s, reading the file as it goes.
2. The raw ASGI sink: the same frames (13-byte header + 64 KiB) with no protocol at all.
3. A plain Django multipart POST, streamed over ``http.client``.
4. djust 1.2.6: its own protocol (read from its source): 21-byte chunk headers, a "complete"
   frame, ``upload_progress`` messages, then its ``save`` event.

Every function returns monotonic timestamps of its phases (``time.monotonic()``, the clock the
pinger process uses too) and the stored file's path, for checking it byte for byte.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import re
import struct
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from djust.testing import LiveClient, WebSocketTransport, token_from_html

CHUNK = 64 * 1024
_HEADER = struct.Struct(">BIQ")  # djust's chunk frame: type, ref, offset
_PEER_CHUNK = struct.Struct(">B16sI")  # djust 1.2.6: type, ref (UUID bytes), chunk index
_SAVED = re.compile(r"<pre id=['\"]saved['\"]>(.*?)</pre>", re.S)
PEER_VIEW = "bench.peer_site.views.PeerUploadView"


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass
class Outcome:
    """How one upload went: phase timestamps, the stored file, the bytes sent."""

    start: float
    phases: dict[str, tuple[float, float]] = field(default_factory=dict)
    stored: Path | None = None
    server_sha256: str | None = None
    sent: int = 0
    error: dict[str, Any] | None = None
    probes: list[float] = field(default_factory=list)  # round trips of a probe's pings (s)

    @property
    def end(self) -> float:
        return max(end for _, end in self.phases.values())

    @property
    def total(self) -> float:
        return self.end - self.start

    def phase(self, name: str) -> float:
        start, end = self.phases[name]
        return end - start


def saved_line(html: str) -> tuple[str, str, int]:
    """The last line the bench views list under ``<pre id="saved">``: path, SHA-256, size."""
    match = _SAVED.search(html)
    assert match and match.group(1).strip(), f"nothing saved: {html[-500:]}"
    path, digest, size = match.group(1).strip().splitlines()[-1].split()
    return path, digest, int(size)


# -- 1. djust ------------------------------------------------------------------------------


async def djust_client(base: str, path: str = "/bench/upload/") -> LiveClient:
    def fetch() -> str:
        with urllib.request.urlopen(base + path) as response:
            return response.read().decode()

    token = token_from_html(await asyncio.to_thread(fetch))
    ws_url = base.replace("http", "ws", 1) + "/djust/ws/"
    client = LiveClient(await WebSocketTransport.connect(ws_url, base), timeout=300)
    await client.mount(token)
    return client


async def djust_upload(
    client: LiveClient,
    source: Path,
    name: str,
    *,
    media: Path,
    slot: str = "big",
    content_type: str = "application/octet-stream",
    consume: bool = True,
    probe: LiveClient | None = None,
) -> Outcome:
    """Upload ``source`` through djust's protocol; ``error`` is set if the server refused it."""
    size = source.stat().st_size
    outcome = Outcome(start=time.monotonic())
    reply = await client.register(slot, name, size, content_type)
    ref = reply["ref"]
    if reply["t"] == "upload_error":
        outcome.error = reply
        outcome.phases["upload"] = (outcome.start, time.monotonic())
        return outcome
    window, chunk = reply["window"], client.uploads[slot]["chunk_size"]
    ws = client.transport.ws  # type: ignore[attr-defined]
    numeric_ref = int(ref)

    def ended(m: dict[str, Any]) -> bool:
        return m.get("ref") == ref and m["t"] in ("upload_ack", "upload_complete", "upload_error")

    sent = acked = 0
    with open(source, "rb", buffering=0) as f:
        while True:
            while sent < size:
                n = min(chunk, size - sent)
                if sent + n - acked > window:
                    break  # the server enforces the window
                frame = bytearray(_HEADER.size + n)
                _HEADER.pack_into(frame, 0, 1, numeric_ref, sent)
                got = f.readinto(memoryview(frame)[_HEADER.size :])
                assert got == n, "short read"
                await ws.send(frame)
                sent += n
            message = await client.wait_for(ended)
            if message["t"] == "upload_ack":
                acked = message["offset"]
                window = message.get("window", window)  # opened once the first bytes passed
            elif message["t"] == "upload_complete":
                break
            else:
                outcome.error = message
                outcome.sent = sent
                outcome.phases["upload"] = (outcome.start, time.monotonic())
                return outcome
    outcome.sent = sent
    done = time.monotonic()
    outcome.phases["upload"] = (outcome.start, done)
    if consume:

        async def timed_ping(other: LiveClient) -> float:
            sent_at = time.monotonic()
            await other.ping()
            return time.monotonic() - sent_at

        # ``probe``, another connection to the server, pings as the consume starts: the consume
        # of a large file can be shorter than the pinger's interval.
        if probe is None:
            await client.event("save", slot=slot)
        else:
            _, rtt = await asyncio.gather(client.event("save", slot=slot), timed_ping(probe))
            outcome.probes.append(rtt)
        outcome.phases["consume"] = (done, time.monotonic())
        path, digest, stored_size = saved_line(client.html)
        assert stored_size == size, (stored_size, size)
        outcome.stored, outcome.server_sha256 = media / path, digest
    return outcome


# -- 2. the raw ASGI sink ------------------------------------------------------------------


async def raw_upload(base: str, source: Path) -> Outcome:
    """The same frames to ``/bench/sink/``; the sink answers ``end`` with its byte count."""
    size = source.stat().st_size
    ws = await connect(
        base.replace("http", "ws", 1) + "/bench/sink/",
        origin=base,
        compression=None,
        max_size=None,
    )
    outcome = Outcome(start=time.monotonic())
    sent = 0
    with open(source, "rb", buffering=0) as f:
        while sent < size:
            n = min(CHUNK, size - sent)
            frame = bytearray(_HEADER.size + n)
            _HEADER.pack_into(frame, 0, 1, 1, sent)
            f.readinto(memoryview(frame)[_HEADER.size :])
            await ws.send(frame)
            sent += n
    await ws.send("end")
    counted = int(await ws.recv())
    outcome.phases["upload"] = (outcome.start, time.monotonic())
    await ws.close()
    frames = -(-size // CHUNK)
    assert counted == size + frames * _HEADER.size, (counted, size)
    outcome.sent = counted
    return outcome


# -- 3. plain Django POST ------------------------------------------------------------------


def post_upload(base: str, source: Path, name: str, *, media: Path) -> Outcome:
    """A multipart POST to ``/bench/post/``, the body streamed from disk in 1 MiB blocks."""
    size = source.stat().st_size
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    outcome = Outcome(start=time.monotonic())
    conn.putrequest("POST", "/bench/post/")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + size + len(tail)))
    conn.endheaders()
    conn.send(head)
    with open(source, "rb", buffering=0) as f:
        while block := f.read(1024 * 1024):
            conn.send(block)
    conn.send(tail)
    response = conn.getresponse()
    body = response.read()
    outcome.phases["upload"] = (outcome.start, time.monotonic())
    conn.close()
    assert response.status == 200, (response.status, body[:500])
    result = json.loads(body)
    assert result["size"] == size, result
    outcome.sent = size
    outcome.stored, outcome.server_sha256 = media / result["path"], result["sha256"]
    return outcome


# -- 4. djust 1.2.6 ------------------------------------------------------------------------


class PeerClient:
    """djust 1.2.6's WebSocket protocol: JSON ``type`` messages and binary upload frames."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.get_running_loop().create_task(self._read())
        self.next_ref = 1

    @classmethod
    async def connect(cls, base: str) -> PeerClient:
        ws = await connect(
            base.replace("http", "ws", 1) + "/ws/live/",
            origin=base,
            compression=None,
            max_size=None,
        )
        client = cls(ws)
        await client.wait(lambda m: m.get("type") == "connect")
        await ws.send(json.dumps({"type": "mount", "view": PEER_VIEW, "params": {}, "url": "/up/"}))
        reply = await client.wait(lambda m: m.get("type") in ("mount", "error"))
        assert reply["type"] == "mount", reply
        return client

    async def _read(self) -> None:
        # Drain every message as it comes (1.2.6 sends hundreds of progress messages per upload).
        async for raw in self.ws:
            self.messages.put_nowait(json.loads(raw))

    async def wait(self, predicate: Any, timeout: float = 300) -> dict[str, Any]:
        while True:
            message = await asyncio.wait_for(self.messages.get(), timeout)
            if predicate(message):
                return message
            if message.get("type") == "error":
                raise AssertionError(f"peer error: {message}")

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()


async def peer_upload(client: PeerClient, source: Path, name: str, *, media: Path) -> Outcome:
    size = source.stat().st_size
    ref = uuid.uuid4()
    outcome = Outcome(start=time.monotonic())
    await client.ws.send(
        json.dumps(
            {
                "type": "upload_register",
                "upload_name": "big",
                "ref": str(ref),
                "client_name": name,
                "client_type": "application/octet-stream",
                "client_size": size,
            }
        )
    )
    await client.wait(lambda m: m.get("type") == "upload_registered" and m["ref"] == str(ref))
    sent = index = 0
    with open(source, "rb", buffering=0) as f:
        while sent < size:
            n = min(CHUNK, size - sent)
            frame = bytearray(_PEER_CHUNK.size + n)
            _PEER_CHUNK.pack_into(frame, 0, 1, ref.bytes, index)
            f.readinto(memoryview(frame)[_PEER_CHUNK.size :])
            await client.ws.send(frame)
            sent, index = sent + n, index + 1
    await client.ws.send(b"\x02" + ref.bytes)
    final = await client.wait(
        lambda m: m.get("type") == "upload_progress" and m.get("status") in ("complete", "error")
    )
    assert final["status"] == "complete", final
    done = time.monotonic()
    outcome.phases["upload"] = (outcome.start, done)
    event_ref = client.next_ref = client.next_ref + 1
    await client.ws.send(
        json.dumps({"type": "event", "event": "save", "params": {}, "ref": event_ref})
    )
    reply = await client.wait(lambda m: m.get("ref") == event_ref)
    outcome.phases["consume"] = (done, time.monotonic())
    text = json.dumps(reply)
    match = re.search(r"(bench/\S+) ([0-9a-f]{64}) (\d+)", text)
    assert match, f"the peer's save reply names no file: {text[:500]}"
    assert int(match.group(3)) == size
    outcome.sent = size
    outcome.stored, outcome.server_sha256 = media / match.group(1), match.group(2)
    return outcome
