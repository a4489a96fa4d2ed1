"""What a view adds to its live session: message types, binary frames, and hooks.

A view names its extensions in ``djust_extensions`` (dotted paths of classes taking the session
and the view). The session routes to them the client messages they list in ``messages`` and, to
the one that sets ``frames``, every binary frame; it calls ``after_event`` once a handler or a
broadcast ran, adds ``extras()`` to what it sends with each render, and closes them with itself.
The transport knows nothing else of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from djust.transport.protocol import Chunk
    from djust.transport.session import LiveSession
    from djust.views import LiveView


class Extension:
    """The session's side of an extension; every hook does nothing unless overridden."""

    # Client message types it answers, each with the name of its coroutine method.
    messages: ClassVar[dict[str, str]] = {}
    # Whether binary frames are its own (one extension of a view at most).
    frames: ClassVar[bool] = False

    def __init__(self, session: LiveSession, view: LiveView) -> None:
        self.session = session
        self.view = view

    def expects(self, frame: bytes) -> bool:
        """Whether ``frame`` is one it wants (anything else costs the client as a text frame)."""
        return False

    def take_frame(self, chunk: Chunk) -> bool:
        """Take a frame without awaiting anything, or return False to have it received."""
        return False

    async def receive_frame(self, chunk: Chunk) -> None:
        """A frame, with the session's lock held."""

    async def after_event(self, failed: bool = False) -> None:
        """A handler (or a broadcast) ran; ``failed`` if it raised."""

    def extras(self) -> dict[str, Any]:
        """Fields added to ``mounted``, and to ``render`` and ``reply`` when the HTML changed."""
        return {}

    async def close(self) -> None:
        """The connection is gone."""
