"""The web page's operations view: the local runtime's ``/metrics`` drawn live as small charts,
the numbers the deployed stack's CloudWatch dashboard shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, Request, Route, expect

from tests.browser.conftest import LAPTOP, PHONE, Pages
from tests.photos import CAT, COFFEE, ROCKET
from tests.runtime import Runtime

pytestmark = pytest.mark.browser

IN_ALL = re.compile(r"^(\d+) in all, (\d+) in the last minute$")
DURATION = re.compile(r"^\d+ ms$|^\d+\.\d\d s$")


def open_operations(page: Page, runtime: Runtime) -> Locator:
    """Open the page (no key: the metrics are the runtime's, not a tenant's); the live panel."""
    page.goto(f"{runtime.url}/")
    panel = page.get_by_role("region", name="Operations")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("data-state", "live")
    return panel


def succeeded(panel: Locator) -> tuple[int, int]:
    """The view's succeeded jobs: in all, and in the last minute."""
    text = panel.locator('#ops-jobs dd[data-key="succeeded"]').inner_text()
    match = IN_ALL.match(text)
    assert match, text
    return int(match[1]), int(match[2])


def series(panel: Locator, figure: str, name: str) -> list[float]:
    """The values a line chart draws for one series (blank where unknown)."""
    path = panel.locator(f'#{figure} path[data-series="{name}"]')
    raw = path.get_attribute("data-values") or ""
    return [float(v) for v in raw.split(",") if v]


def test_operations_view_counts_new_jobs_and_draws_them(
    pages: Pages, runtime: Runtime, screenshots: Path
) -> None:
    # GIVEN the operations view, live
    page = pages.open(LAPTOP)
    panel = open_operations(page, runtime)
    before, _ = succeeded(panel)

    # WHEN three photos are classified through the API
    jobs = [
        runtime.submit(CAT.read_bytes(), "image/png"),
        runtime.submit(COFFEE.read_bytes(), "image/png"),
        runtime.submit(ROCKET.read_bytes(), "image/jpeg"),
    ]
    for job_id in jobs:
        assert runtime.wait_for(job_id)["status"] == "SUCCEEDED"

    # THEN within a reading or two the succeeded count has gone up by them, in the last minute too
    page.wait_for_function(
        """(n) => {
            const dd = document.querySelector('#ops-jobs dd[data-key="succeeded"]');
            return dd && parseInt(dd.textContent, 10) >= n;
        }""",
        arg=before + len(jobs),
    )
    total, last_minute = succeeded(panel)
    assert total >= before + len(jobs)
    assert last_minute >= len(jobs)
    # (the same counter /metrics serves, read a moment earlier)
    served = re.search(
        r"^imgcls_jobs_succeeded_total (\d+)$", runtime.http.get("/metrics").text, re.M
    )
    assert served
    assert total <= int(served[1])

    # AND the jobs chart draws that rise: a line over several readings, ending at or above three
    drawn = series(panel, "ops-jobs", "succeeded")
    assert len(drawn) >= 2
    assert drawn[-1] >= len(jobs)
    line = panel.locator('#ops-jobs path[data-series="succeeded"]').get_attribute("d") or ""
    assert line.startswith("M")
    assert "L" in line  # a line, not a lone point
    expect(panel.locator("#ops-jobs svg")).to_have_attribute(
        "aria-label", re.compile(r"Succeeded: \d+ in all, \d+ in the last minute")
    )

    # AND the latency chart its p50 and p95, shown as numbers too
    p50 = series(panel, "ops-latency", "p50")
    assert p50
    assert all(v > 0 for v in p50)
    assert series(panel, "ops-latency", "p95")
    expect(panel.locator('#ops-latency dd[data-key="p50"]')).to_have_text(DURATION)
    expect(panel.locator('#ops-latency dd[data-key="p95"]')).to_have_text(DURATION)

    # AND every queue has its bar, and every dead-letter queue too
    expect(panel.locator("#ops-backlog .ops-bar-row")).to_have_count(4)
    expect(panel.locator("#ops-dead .ops-bar-row")).to_have_count(5)
    queues = panel.locator("#ops-backlog dd").evaluate_all("dds => dds.map(d => d.dataset.key)")
    assert queues == ["imgcls-jobs", "imgcls-ingest", "imgcls-notify", "imgcls-webhooks"]
    expect(panel.locator("#ops-webhooks path.ops-line")).to_have_count(2)
    panel.screenshot(path=screenshots / "laptop-operations.png")


def test_operations_view_fits_a_phone(pages: Pages, runtime: Runtime, screenshots: Path) -> None:
    page = pages.open(PHONE, is_mobile=True, has_touch=True)
    panel = open_operations(page, runtime)
    expect(panel.locator("figure")).to_have_count(5)

    for figure in panel.locator("figure").all():
        box = figure.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    panel.screenshot(path=screenshots / "phone-operations.png")


def test_operations_view_stays_hidden_where_there_is_no_metrics_route(
    pages: Pages, runtime: Runtime
) -> None:
    # GIVEN a deployment: API Gateway answers a path without a route with a 403
    page = pages.open(LAPTOP)
    asked: list[str] = []

    def api_gateway(route: Route, request: Request) -> None:
        asked.append(request.url)
        route.fulfill(
            status=403,
            content_type="application/json",
            body='{"message":"Missing Authentication Token"}',
        )

    page.route(re.compile(r"/metrics$"), api_gateway)

    # WHEN the page opens and waits longer than two readings
    page.goto(f"{runtime.url}/")
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    page.wait_for_timeout(4500)

    # THEN the panel stayed hidden and the page asked once, not every 2 s
    expect(page.locator("#ops")).to_be_hidden()
    assert asked == [f"{runtime.url}/metrics"]
