"""Place a view's rendered HTML in a page: find the live region and wrap it in the root element.

Pure code: string work only.
"""

from __future__ import annotations

import re
from html import escape

_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)


def split(html: str) -> tuple[str, str, str] | None:
    """``(before, live, after)`` when ``html`` is a whole page with a ``<body>``; else None."""
    opening = _BODY_OPEN.search(html)
    if opening is None:
        return None
    closings = list(_BODY_CLOSE.finditer(html, opening.end()))
    end = closings[-1].start() if closings else len(html)
    return html[: opening.end()], html[opening.end() : end], html[end:]


def live_region(html: str) -> str:
    """The part of a rendered template that the session keeps in sync: the body, or everything."""
    parts = split(html)
    return html if parts is None else parts[1]


def root(live: str, token: str) -> str:
    """The root element that carries the view token."""
    return f'<div dj-root dj-view="{escape(token)}">{live}</div>'
