"""The WebSocket transport: the wire protocol, the live session and the Channels consumer."""
