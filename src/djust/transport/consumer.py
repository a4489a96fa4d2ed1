"""The Channels consumer: decodes WebSocket frames and hands them to the live session."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from djust import conf
from djust.errors import FrameTooLarge, RateLimited
from djust.transport.protocol import CLOSE_RATE_LIMITED
from djust.transport.rate import TokenBucket, Turns
from djust.transport.session import LiveSession

_turns: Turns | None = None


def process_turns() -> Turns | None:
    """The process's budget of text frames, shared by all its connections (None: no limit)."""
    global _turns
    rate = conf.get("MAX_TEXT_FRAMES_PER_SECOND_PER_PROCESS")
    if not rate:
        return None
    if _turns is None or _turns.rate != rate:
        # Bursts of a tenth of a second's budget: the process's frames come from many
        # connections at once and need no more to pass unhindered.
        _turns = Turns(rate, burst=max(1, rate / 10))
    return _turns


class LiveConsumer(AsyncWebsocketConsumer):
    """One per connection; owns nothing but the session."""

    session: LiveSession

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels hops to a thread before every message to close stale database connections;
        # at upload rates that hop costs more than the work. The session does it around each call.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Channels' loop waits on the socket and the channel layer with a new task and an
        # asyncio.wait() per message; at upload rates that costs more than handling the chunk.
        # djust does not listen on the channel layer, so it reads the socket directly.
        self.scope = scope
        self.base_send = send
        self.channel_layer = None
        try:
            while True:
                message = await receive()
                data = message.get("bytes")
                if data is not None and message["type"] == "websocket.receive":
                    await self.receive(bytes_data=data)  # chunks: not through dispatch()
                else:
                    await self.dispatch(message)
        except StopConsumer:
            pass
        finally:
            # However the consumer ends (an exception in a handler, not only websocket.disconnect),
            # the session's uploads and their temp files go with it.
            session = getattr(self, "session", None)
            if session is not None and not session.closed:
                await session.close()

    async def connect(self) -> None:
        self.max_frame = conf.get("MAX_FRAME_SIZE")
        self.frames = TokenBucket(conf.get("MAX_FRAMES_PER_SECOND"))
        self.texts = TokenBucket(conf.get("MAX_TEXT_FRAMES_PER_SECOND"))
        self.turns = process_turns()
        self.hung_up = False
        self.session = LiveSession(self.scope, self._send_frame, self._hang_up)
        await self.accept()

    async def _send_frame(self, data: str | bytes) -> None:
        try:
            if isinstance(data, bytes):
                await self.send(bytes_data=data)
            else:
                await self.send(text_data=data)
        except OSError:
            # The client left while we were answering (uvicorn raises ClientDisconnected):
            # websocket.disconnect is queued behind this message and closes the session.
            pass

    async def _hang_up(self, code: int) -> None:
        if not self.hung_up:
            self.hung_up = True
            await self.close(code=code)

    def _over_rate(self, answered: bool) -> str | None:
        """Which per-connection budget this frame exceeds, if any."""
        if not self.frames.take():
            return f"more than {self.frames.rate:.0f} frames a second"
        if answered and not self.texts.take():
            return f"more than {self.texts.rate:.0f} text frames a second"
        return None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.hung_up:
            return  # frames that were in flight when we closed: sending now would raise
        # Text frames, and binary frames that are not chunks of an upload in progress, each get
        # an answer: they cost the server far more than the bytes of a chunk do.
        answered = bytes_data is None or not self.session.expects(bytes_data)
        over = self._over_rate(answered)
        if over is not None:
            # Dropping frames silently would corrupt uploads: say why, then hang up.
            self.hung_up = True
            await self.session.send_error(RateLimited(f"{over}; closing"))
            await self.close(code=CLOSE_RATE_LIMITED)
            return
        if answered and self.turns is not None:
            delay = self.turns.delay()
            if delay:
                await asyncio.sleep(delay)  # its turn among the process's connections
        size = len(bytes_data) if bytes_data is not None else len(text_data or "")
        if size > self.max_frame:
            await self.session.send_error(
                FrameTooLarge(f"frame of {size} bytes exceeds the limit of {self.max_frame}")
            )
            return
        if bytes_data is not None:
            await self.session.receive_bytes(bytes_data)
        else:
            await self.session.receive_text(text_data or "")

    async def disconnect(self, code: int) -> None:
        await self.session.close()
