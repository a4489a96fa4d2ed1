from __future__ import annotations

import pytest

from djust.page import live_region, root, split


def test_split_a_page_around_its_body() -> None:
    html = "<html><head><title>t</title></head><body><p>live</p></body></html>"
    assert split(html) == (
        "<html><head><title>t</title></head><body>",
        "<p>live</p>",
        "</body></html>",
    )


def test_split_keeps_body_attributes_in_the_part_before() -> None:
    before, live, after = split("<body class=\"x\" data-a='1'>\n<main>m</main>\n</body>")
    assert before == "<body class=\"x\" data-a='1'>" and live == "\n<main>m</main>\n"
    assert after == "</body>"


def test_split_ignores_case() -> None:
    assert split("<BODY>x</Body >") == ("<BODY>", "x", "</Body >")


def test_split_ends_at_the_last_closing_tag() -> None:
    # A "</body>" inside the live region (in a script string, say) does not end it.
    html = "<body><script>s='</body>'</script></body>"
    assert split(html) == ("<body>", "<script>s='</body>'</script>", "</body>")


def test_split_without_a_closing_tag_runs_to_the_end() -> None:
    assert split("<body><p>x</p>") == ("<body>", "<p>x</p>", "")


@pytest.mark.parametrize(
    "fragment", ["<p>x</p>", "", "<table><tbody><tr></tr></tbody></table>", "<bodyguard>"]
)
def test_split_of_a_fragment_is_none(fragment: str) -> None:
    assert split(fragment) is None


def test_live_region_of_a_page_is_its_body() -> None:
    assert live_region("<html><body><p>x</p></body></html>") == "<p>x</p>"


def test_live_region_of_a_fragment_is_the_whole_fragment() -> None:
    assert live_region("<p>x</p><p>y</p>") == "<p>x</p><p>y</p>"


def test_root_wraps_the_live_region_with_the_token() -> None:
    assert root("<p>x</p>", "abc:def") == '<div dj-root dj-view="abc:def"><p>x</p></div>'


def test_root_escapes_the_token() -> None:
    html = root("", '"><script>x</script>&')
    assert html == '<div dj-root dj-view="&quot;&gt;&lt;script&gt;x&lt;/script&gt;&amp;"></div>'
