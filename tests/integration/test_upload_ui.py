"""The upload UI's server half: the client's texts in the page's language, the speed the server
measures, refusals the browser reports, folder uploads' relative paths, the default styles."""

from __future__ import annotations

import asyncio
import html as html_lib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.core import checks

from djust import conf
from djust.testing import LiveClient, WebSocketTransport, token_from_html
from djust.transport.protocol import encode_chunk

from .conftest import Live, fetch

PAGE = "/t/upload-ui/"
CATALOG = Path(__file__).resolve().parents[2] / "src/djust/locale/fr/LC_MESSAGES/django.mo"
CONTRACT_KEYS = {
    "uploading",
    "speed",
    "paused",
    "complete",
    "error",
    "dismiss",
    "cancel",
    "drop_here",
    "refused",
    "uploaded",
}


async def connect(live: Live, path: str = PAGE, **headers: str) -> LiveClient:
    """Mount ``path`` over a socket whose handshake carries ``headers``."""
    html = fetch(live.server.url + path)
    transport = await WebSocketTransport.connect(
        live.server.ws_url, live.server.url, additional_headers=headers
    )
    client = LiveClient(transport, timeout=15)
    live.clients.append(client)
    await client.mount(token_from_html(html))
    return client


def mounted(client: LiveClient) -> dict[str, Any]:
    return next(m for m in client.received if m["t"] == "mounted")


def listed(html: str, list_id: str) -> list[str]:
    match = re.search(rf"<ul id='{list_id}'>(.*?)</ul>", html, re.DOTALL)
    assert match, f"no list {list_id}"
    return [html_lib.unescape(li) for li in re.findall(r"<li>(.*?)</li>", match.group(1))]


def refusal(slot: str, name: str, size: int, code: str, mime: str = "") -> dict[str, Any]:
    """What the browser sends for a file its own checks refused."""
    return {
        "t": "upload_refused",
        "name": slot,
        "client_name": name,
        "client_type": mime,
        "client_size": size,
        "code": code,
        "message": f"{name} refused in the browser",
    }


async def refuse(client: LiveClient, message: dict[str, Any]) -> dict[str, Any]:
    """Send a refusal; the server's next render or error."""
    await client.send(message)
    return await client.wait_for(lambda m: m["t"] in ("render", "error"))


async def register(client: LiveClient, slot: str, name: str, size: int, **fields: Any) -> dict:
    ref = client.new_ref()
    message = {
        "t": "upload_register",
        "id": 1,
        "name": slot,
        "ref": ref,
        "client_name": name,
        "client_type": "",
        "client_size": size,
        **fields,
    }
    await client.send(message)
    return await client.wait_for(
        lambda m: m.get("ref") == ref and m["t"] in ("upload_registered", "upload_error")
    )


# -- strings -------------------------------------------------------------------------------


def test_mounted_carries_the_clients_texts(live):
    async def body():
        client = await connect(live)
        return mounted(client)["strings"]

    strings = live.run(body())
    assert set(strings) >= CONTRACT_KEYS
    assert strings["paused"] == "Paused, reconnecting…"
    assert strings["uploading"] == "{percent}% · {done} of {total}"


def test_mounted_texts_are_in_the_pages_language(live):
    assert CATALOG.exists(), "the French catalog is not built: run scripts/test"

    async def body():
        client = await connect(live, **{"Accept-Language": "fr"})
        return mounted(client)["strings"]

    strings = live.run(body())
    assert strings["paused"] == "En pause, reconnexion…"
    assert strings["uploading"] == "{percent} % · {done} sur {total}"  # placeholders kept


# -- the rate ------------------------------------------------------------------------------


def test_acks_carry_the_rate_the_server_measured(live):
    size, chunk = 640 * 1024, 64 * 1024
    data = bytes(size)

    async def body():
        client = await connect(live)
        reply = await register(client, "folder", "paced.bin", size)
        assert reply["t"] == "upload_registered", reply
        ref, window = reply["ref"], reply["window"]
        acked = 0
        acks: list[dict[str, Any]] = []

        def ack(m: dict[str, Any]) -> bool:
            return m.get("ref") == ref and m["t"] in ("upload_ack", "upload_error")

        # A chunk a tenth of a second: the upload lasts about a second.
        for offset in range(0, size, chunk):
            while offset + chunk - acked > window:
                message = await client.wait_for(ack)
                assert message["t"] == "upload_ack", message
                acked = message["offset"]
                acks.append(message)
            await client.transport.send_bytes(encode_chunk(ref, offset, data[offset:][:chunk]))
            await asyncio.sleep(0.1)
        while acked < size:
            message = await client.wait_for(ack)
            assert message["t"] == "upload_ack", message
            acked = message["offset"]
            acks.append(message)
        return acks

    acks = live.run(body())
    rates = [m["rate"] for m in acks if "rate" in m]
    assert rates, acks
    assert all(isinstance(r, int) and 0 < r <= size / 0.2 for r in rates), rates


# -- refusals reported by the browser ------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "name", "size"),
    [
        ("too_large", "huge.pdf", 26_000_000),
        ("not_accepted", "setup.exe", 1000),
        ("too_many_files", "eleventh.txt", 1000),
    ],
)
def test_a_refusal_reported_by_the_browser_is_listed_in_the_slots_errors(live, code, name, size):
    async def body():
        client = await connect(live)
        answer = await refuse(client, refusal("files", name, size, code))
        assert answer["t"] == "render", answer
        return client.html

    assert listed(live.run(body()), "errors") == [f"files:{code}:{name}"]


def test_a_reported_refusal_reads_as_the_servers_own_refusal(live):
    """The record a template gets is the one a registration refused by the server gives."""

    async def body():
        client = await connect(live)
        await register(client, "files", "huge.pdf", 26_000_000)
        await client.wait_for(lambda m: m["t"] == "render")
        by_server = client.html
        await client.event("save")  # consuming clears the slot's errors
        await refuse(client, refusal("files", "huge.pdf", 26_000_000, "too_large"))
        return by_server, client.html

    by_server, by_browser = live.run(body())
    assert listed(by_server, "errors") == ["files:too_large:huge.pdf"]
    assert listed(by_browser, "errors") == listed(by_server, "errors")


def test_a_reported_refusal_is_answered_by_the_render_alone(live):
    async def body():
        client = await connect(live)
        before = len(client.received)
        await refuse(client, refusal("files", "huge.pdf", 26_000_000, "too_large"))
        await client.ping()
        return [m["t"] for m in client.received[before:]]

    assert live.run(body()) == ["render", "pong"]


def test_a_reported_refusal_lists_the_files_safe_name(live):
    async def body():
        client = await connect(live)
        await refuse(client, refusal("files", "../../etc/passwd.exe", 10, "not_accepted"))
        return client.html

    assert listed(live.run(body()), "errors") == ["files:not_accepted:passwd.exe"]


def test_a_too_large_claim_for_a_file_within_the_limit_is_refused(live):
    async def body():
        client = await connect(live)
        answer = await refuse(client, refusal("files", "small.pdf", 1000, "too_large"))
        await refuse(client, refusal("files", "huge.pdf", 26_000_000, "too_large"))
        return answer, client.html

    answer, html = live.run(body())
    assert (answer["t"], answer["code"]) == ("error", "bad_message")
    assert "within the slot's limit" in answer["message"]
    assert listed(html, "errors") == ["files:too_large:huge.pdf"]  # the true claim only


def test_a_refusal_with_a_code_of_no_slot_limit_is_refused(live):
    async def body():
        client = await connect(live)
        return await refuse(client, refusal("files", "a.pdf", 1000, "content_mismatch"))

    answer = live.run(body())
    assert (answer["t"], answer["code"]) == ("error", "bad_message")
    assert "too_many_files, too_large, not_accepted" in answer["message"]


def test_a_refusal_for_a_view_without_uploads_is_unknown_slot(live):
    async def body():
        client = await connect(live, "/t/events/")
        return await refuse(client, refusal("files", "a.pdf", 26_000_000, "too_large"))

    answer = live.run(body())
    assert (answer["t"], answer["code"]) == ("error", "unknown_slot")


# -- folder uploads ------------------------------------------------------------------------


def test_a_folder_uploads_relative_path_is_the_entrys_client_path(live):
    async def body():
        client = await connect(live)
        reply = await register(client, "folder", "a.txt", 3, client_path="photos/2024/a.txt")
        assert reply["t"] == "upload_registered", reply
        await client.transport.send_bytes(encode_chunk(reply["ref"], 0, b"abc"))
        await client.wait_for(lambda m: m["t"] == "render" and ":True<" in m["html"])
        return client.html

    assert listed(live.run(body()), "entries") == ["folder:photos/2024/a.txt:True"]


def test_each_part_of_a_client_path_is_made_safe(live):
    async def body():
        client = await connect(live)
        reply = await register(client, "folder", "a.txt", 3, client_path="my docs/CON/a.txt")
        assert reply["t"] == "upload_registered", reply
        await client.wait_for(lambda m: m["t"] == "render")
        return client.html

    assert listed(live.run(body()), "entries") == ["folder:my docs/_CON/a.txt:False"]


@pytest.mark.parametrize(
    "path",
    [
        "../a.txt",
        "/home/me/a.txt",
        "docs//a.txt",
        "docs/./a.txt",
        "docs\\a.txt",
        "docs/b.txt",  # another file's path
        "/".join(["d"] * 32 + ["a.txt"]),  # 33 parts
        "d" * 4097,
    ],
)
def test_a_client_path_that_is_not_a_plain_relative_path_is_refused(live, path):
    async def body():
        client = await connect(live)
        return await register(client, "folder", "a.txt", 3, client_path=path)

    reply = live.run(body())
    assert (reply["t"], reply["code"]) == ("upload_error", "bad_name")


# -- default styles ------------------------------------------------------------------------


def test_the_script_tag_turns_the_default_styles_off_when_the_setting_says_so(settings):
    from djust.templatetags.djust import scripts_html

    assert "data-djust-styles" not in scripts_html()
    settings.DJUST = {**settings.DJUST, "UPLOAD_DEFAULT_STYLES": False}
    assert 'data-djust-styles="off"' in scripts_html()


def test_default_styles_must_be_true_or_false(settings):
    from djust.checks import check_settings

    settings.DJUST = {**settings.DJUST, "UPLOAD_DEFAULT_STYLES": "off"}
    assert "djust.E011" in [m.id for m in check_settings()]
    settings.DJUST = {**settings.DJUST, "UPLOAD_DEFAULT_STYLES": True}
    assert conf.get("UPLOAD_DEFAULT_STYLES") is True
    assert "djust.E011" not in [m.id for m in check_settings() if m.level >= checks.ERROR]


def test_the_refusal_message_names_every_field_the_server_checks():
    """The schema (docs/protocol.md, section 3) refuses a refusal without its fields."""
    from djust.errors import BadMessage
    from djust.transport.protocol import decode_text

    message = refusal("files", "a.pdf", 1, "too_large")
    for field in ("name", "client_name", "client_type", "client_size", "code"):
        partial = {k: v for k, v in message.items() if k != field}
        with pytest.raises(BadMessage):
            decode_text(json.dumps(partial), max_size=1 << 16)
    assert decode_text(json.dumps(message), max_size=1 << 16)["code"] == "too_large"


def test_a_refusal_at_registration_is_written_in_the_pages_language(live):
    async def body():
        client = await connect(live, **{"Accept-Language": "fr"})
        await client.send(
            {
                "t": "upload_register",
                "id": 90,
                "name": "folder",
                "ref": "90",
                "client_name": "big.pdf",
                "client_type": "application/pdf",
                "client_size": 10**9,
            }
        )
        return await client.wait_for(lambda m: m["t"] == "upload_error")

    error = live.run(body())
    assert error["code"] == "too_large"
    assert error["message"].startswith("big.pdf dépasse ")
