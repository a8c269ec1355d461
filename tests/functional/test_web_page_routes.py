"""The web page's routes: served without a key, only the allowed files, nothing from elsewhere."""

from __future__ import annotations

import re

import pytest

from chalicelib.webpage import ASSETS, WEB_DIR, index_page
from tests.functional.conftest import Api


def test_page_is_served_without_a_key_as_html_with_a_strict_policy(api: Api) -> None:
    resp = api.get("/", key=None)

    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    page = resp.body.decode()
    assert '<base href="/">' in page
    assert '<label for="api-key" class="field-label">API key</label>' in page


def test_every_file_the_page_links_is_served_with_its_content_type(api: Api) -> None:
    page = api.get("/", key=None).body.decode()
    linked = re.findall(r'(?:href|src)="static/([^"]+)"', page)

    assert sorted(linked) == sorted(ASSETS)
    for name in linked:
        resp = api.get(f"/static/{name}", key=None)
        assert resp.status == 200, name
        assert resp.headers["Content-Type"] == ASSETS[name]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.body.decode() == (WEB_DIR / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["index.html", "app.py", "..%2Fwebpage.py", "%2E%2E", "nope.js"])
def test_names_outside_the_allow_list_are_404(api: Api, name: str) -> None:
    resp = api.get(f"/static/{name}", key=None)

    assert resp.status == 404
    assert resp.error_code == "static_not_found"


def test_base_href_follows_the_api_gateway_stage() -> None:
    assert '<base href="/api/">' in index_page(base_path="/api").body
    assert '<base href="/">' in index_page(base_path="").body
    assert '<base href="/a&quot;b/">' in index_page(base_path='/a"b').body


def test_nothing_is_fetched_from_another_origin() -> None:
    # Offline by design: no CDN, no web fonts. The only absolute URL is SVG's XML namespace.
    for path in WEB_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        urls = set(re.findall(r"https?://[^\s'\"%)]+", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (path.name, urls)
        assert "@import" not in text
        assert "//cdn" not in text
