"""The web page's webhook panel in a real Chromium against the real local runtime: a
subscription whose endpoint answered 410 shows as disabled with its delivery log; enabling it
and asking for a redelivery sends the same ``webhook-id`` again."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_web_page import open_with_key
from tests.photos import cat_jpeg
from tests.runtime import Runtime

pytestmark = pytest.mark.browser


class Receiver:
    """A webhook receiver on loopback answering ``status``; it keeps the headers it got."""

    def __init__(self) -> None:
        self.status = 410
        self.received: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/gone"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} deliveries of {count}"
            time.sleep(0.1)


@pytest.fixture
def receiver(runtime: Runtime) -> Iterator[tuple[Receiver, dict[str, Any]]]:
    """A receiver subscribed to the browser tenant's events; unsubscribed afterwards."""
    found = Receiver()
    made = runtime.http.post("/webhooks", json={"url": found.url})
    assert made.status_code == 201, made.text
    yield found, made.json()
    runtime.http.delete(f"/webhooks/{made.json()['id']}")
    found.server.shutdown()


def test_a_gone_endpoint_shows_disabled_with_its_log_and_a_redelivery_goes_out_again(
    page: Page, runtime: Runtime, receiver: tuple[Receiver, dict[str, Any]]
) -> None:
    # GIVEN a subscription whose endpoint answered a job's event with 410 Gone
    hook, sub = receiver
    runtime.wait_for(runtime.submit(cat_jpeg(), "image/jpeg"))
    hook.wait_for(1)

    # WHEN its owner opens the page and looks at its deliveries
    open_with_key(page, runtime)
    item = page.get_by_role("listitem", name=hook.url, exact=True)
    expect(item.locator(".webhook-status")).to_contain_text("410 Gone")
    item.get_by_role("button", name="Show deliveries").click()

    # THEN the log shows the delivery, failed, and its attempt's 410
    delivery = item.locator(".webhook-delivery").first
    expect(delivery).to_contain_text("job.succeeded · failed")
    expect(delivery.locator(".webhook-attempts li")).to_contain_text("HTTP 410")

    # AND once enabled again, a redelivery reaches the receiver under the same webhook-id
    hook.status = 200
    item.get_by_role("button", name="Enable").click()
    expect(item.locator(".webhook-status")).to_contain_text("Enabled")
    item.get_by_role("button", name="Show deliveries").click()
    item.get_by_role("button", name="Redeliver").first.click()
    hook.wait_for(2)
    first, again = hook.received[0], hook.received[-1]
    assert again["webhook-id"] == first["webhook-id"]
    deadline = time.monotonic() + 30
    while runtime.get(f"/webhooks/{sub['id']}/deliveries")["deliveries"][0]["state"] != "delivered":
        assert time.monotonic() < deadline, "the redelivery was not recorded"
        time.sleep(0.1)
    item.get_by_role("button", name="Show deliveries").click()
    expect(item.locator(".webhook-delivery").first).to_contain_text("job.succeeded · delivered")
    expect(item.locator(".webhook-delivery").first.locator(".webhook-attempts li")).to_have_count(2)
