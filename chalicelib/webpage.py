"""The web page: static files kept in ``chalicelib/web/``, served by the API itself.

No build step and nothing fetched from elsewhere: the page, its script and its style sheet are
plain files read once per container. Only the names in ``ASSETS`` are ever served.
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass
from pathlib import Path

from chalicelib.errors import NotFound

WEB_DIR = Path(__file__).resolve().parent / "web"

# name → Content-Type. A fixed list: a request can never name any other file.
ASSETS: dict[str, str] = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "webhooks.js": "text/javascript; charset=utf-8",
}

# The page talks only to its own origin; images may come from the presigned S3 URLs of the
# jobs (another origin) and from the browser's own blob: URLs for files being uploaded.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' blob: data: http: https:; base-uri 'self'; form-action 'none'; "
    "frame-ancestors 'none'"
)

# The marker in index.html that the deployment's base path replaces (``/api/`` behind API
# Gateway's default endpoint, ``/`` locally), so relative URLs in the page resolve correctly.
_BASE_MARKER = '<base href="/">'


@dataclass(frozen=True)
class StaticFile:
    """A response body and the headers that go with it."""

    body: str
    headers: dict[str, str]


@functools.cache
def _read(name: str) -> str:
    return (WEB_DIR / name).read_text(encoding="utf-8")


def _headers(content_type: str) -> dict[str, str]:
    # no-cache: revalidate on every load, so a new deployment is seen at once.
    return {
        "Content-Type": content_type,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }


def index_page(*, base_path: str = "") -> StaticFile:
    """The page, with ``<base href>`` set to where the API is mounted."""
    base = html.escape(base_path.rstrip("/") + "/", quote=True)
    body = _read("index.html").replace(_BASE_MARKER, f'<base href="{base}">', 1)
    headers = {
        **_headers("text/html; charset=utf-8"),
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Referrer-Policy": "no-referrer",
    }
    return StaticFile(body=body, headers=headers)


def static_file(name: str) -> StaticFile:
    """One of the page's assets by name; 404 for any name not in ``ASSETS``."""
    content_type = ASSETS.get(name)
    if content_type is None:
        raise NotFound(f"no static file {name!r}", code="static_not_found")
    return StaticFile(body=_read(name), headers=_headers(content_type))
