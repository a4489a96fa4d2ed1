"""What djust says about the server it runs under (the servers themselves: integration)."""

from __future__ import annotations

import json

import pytest

from djust.errors import BadMessage
from djust.transport import protocol, servers


def test_mount_may_report_deflate():
    message = protocol.decode_text(
        json.dumps({"t": "mount", "token": "t", "deflate": True}), max_size=1000
    )
    assert message["deflate"] is True


def test_mount_deflate_must_be_a_bool():
    with pytest.raises(BadMessage):
        protocol.decode_text(json.dumps({"t": "mount", "token": "t", "deflate": 1}), max_size=1000)


@pytest.mark.parametrize(
    ("server", "fix"),
    [
        ("uvicorn", "--ws-per-message-deflate false"),
        ("gunicorn", "-k djust.workers.UvicornWorker"),
        ("hypercorn", "Sec-WebSocket-Extensions"),
        ("", "turn permessage-deflate off in the ASGI server"),
    ],
)
def test_the_deflate_warning_names_each_servers_fix(server, fix):
    assert fix in servers.deflate_warning(server)
