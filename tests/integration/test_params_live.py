"""Form-shaped event parameters through a real server and a real WebSocket client."""

from __future__ import annotations

import html
import re

PATH = "/t/form-params/"


def got(reply: dict) -> str:
    match = re.search(r"<p id='got'>(.*?)</p>", reply["html"], re.S)
    assert match, reply
    return html.unescape(match.group(1))


def test_hyphenated_form_names_reach_kwargs(live):
    async def body():
        client = await live.connect(PATH)
        reply = await client.event("pick", **{"form-0-title": "Intro", "billing-street": "1 Main"})
        assert got(reply) == "[] [('billing-street', '1 Main'), ('form-0-title', 'Intro')]"

    live.run(body())


def test_a_multi_value_field_validates_in_a_django_form(live):
    async def body():
        client = await live.connect(PATH)
        params = {"billing-street": "1 Main", "billing-extras": ["gift", "fast"]}
        reply = await client.event("save", **params)
        assert got(reply) == "{'street': '1 Main', 'extras': ['gift', 'fast']}"

    live.run(body())
