"""The web page in a real Chromium against the real local runtime, the way a person uses it.

Real photos go through the whole pipeline (API → S3/DynamoDB/SQS → the classifier) and the page
must show what the API says: the labels and categories of a cat, the reason a broken file failed,
the retry, the 415 of a file that is not an image, the progress of a drop of several files and its
results as CSV, and Cancel on a job that has not finished.
"""

from __future__ import annotations

import base64
import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import FilePayload, Locator, Page, expect

from chalicelib.contract import JobStatus
from chalicelib.job_store import JobRecord, new_job_id, utc_now
from chalicelib.settings import Settings
from tests.browser.conftest import KEY, PHONE, Pages
from tests.photos import CAT, COFFEE, cat_jpeg
from tests.runtime import Runtime

pytestmark = pytest.mark.browser

CAT_LABEL = re.compile(r"^(tabby|tiger cat|Persian cat|Siamese cat|Egyptian cat)$")
DROP_ZONE_INPUT = "Choose images or drop them here"
CHART_WIDTH = 320  # the chart's viewBox width


def truncated_jpeg() -> bytes:
    """A JPEG whose header is intact and whose pixels are not: the door lets it in."""
    return cat_jpeg()[:4000]


def open_with_key(page: Page, runtime: Runtime) -> None:
    """Open the page and enter the API key as a person would."""
    page.goto(f"{runtime.url}/")
    key = page.get_by_label("API key")
    key.fill(KEY)
    key.press("Enter")


def job_card(page: Page, name: str) -> Locator:
    """The list item of the job with that name."""
    return page.get_by_role("listitem", name=name, exact=True)


def upload(page: Page, name: str, mime: str, data: bytes) -> None:
    """Choose one file through the drop zone's file input."""
    file: FilePayload = {"name": name, "mimeType": mime, "buffer": data}
    page.get_by_label(DROP_ZONE_INPUT).set_input_files(files=[file])


def drop(page: Page, files: list[tuple[str, str, bytes]]) -> None:
    """Drop files on the drop zone, with a real DataTransfer holding real File objects."""
    payload = [
        {"name": name, "type": mime, "data": base64.b64encode(data).decode()}
        for name, mime, data in files
    ]
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], f.name, { type: f.type }));
            }
            return transfer;
        }""",
        payload,
    )
    page.locator("#drop-zone").dispatch_event("drop", {"dataTransfer": transfer})


def server_job(runtime: Runtime, job_id: str) -> dict[str, Any]:
    """What the API says about a job."""
    resp = runtime.http.get(f"/jobs/{job_id}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def expect_thumbnail_loaded(card: Locator) -> None:
    """The card's thumbnail is a decoded image, not a broken one."""
    expect(card).to_have_attribute("data-thumb", "loaded")
    assert card.locator(".thumb img").evaluate("img => img.naturalWidth") > 0


def test_keyboard_alone_uploads_a_cat_photo_and_the_chart_shows_a_cat(
    page: Page, runtime: Runtime, screenshots: Path
) -> None:
    # GIVEN the page, used with the keyboard only. Playwright starts intercepting file choosers
    # when the first listener appears; one from the start means the Enter below can never open
    # an unseen native dialog before interception is on (it did on a loaded machine).
    page.on("filechooser", lambda _chooser: None)
    page.goto(f"{runtime.url}/")
    page.keyboard.press("Tab")
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(KEY)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Show")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label(DROP_ZONE_INPUT)).to_be_focused()
    zone = page.locator("#drop-zone")
    assert zone.evaluate("el => getComputedStyle(el).outlineStyle") == "solid", "focus not shown"
    assert page.evaluate("localStorage.getItem('imgcls.apiKey')") == KEY

    # WHEN Enter opens the file chooser on the drop zone and the cat photo is chosen
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    assert chooser.value.is_multiple()
    chooser.value.set_files(CAT)

    # THEN its card shows it at once, then a chart whose top label is a cat
    card = job_card(page, "chelsea.png")
    expect(card).to_be_visible()
    expect_thumbnail_loaded(card)
    expect(card).to_have_attribute("data-status", "SUCCEEDED")
    expect(card.locator(".badge")).to_have_text("Succeeded")
    chart = card.get_by_role("img", name=re.compile(r"^Top 5 labels for chelsea\.png: "))
    expect(chart.locator(".bar-row")).to_have_count(5)
    expect(chart.locator(".bar-row.top .bar-label")).to_have_text(CAT_LABEL)
    expect(chart.locator(".bar-value").first).to_have_text(re.compile(r"^\d{1,3}\.\d%$"))

    # AND the bars are as long as the API's probabilities, most probable first
    job = server_job(runtime, card.get_attribute("data-job-id") or "")
    widths = [
        float(w or 0)
        for w in chart.locator(".bar").evaluate_all(
            "bars => bars.map(b => b.getAttribute('width'))"
        )
    ]
    expected = [max(2.0, CHART_WIDTH * p["probability"]) for p in job["predictions"]]
    assert widths == pytest.approx(expected, abs=0.01)
    assert widths == sorted(widths, reverse=True)
    top = job["predictions"][0]
    assert f"{top['probability'] * 100:.1f}%" in (chart.get_attribute("aria-label") or "")

    # AND the categories are chips above the chart, the cat among them at over 80 %
    chips = card.get_by_role("list", name="Categories of chelsea.png")
    expect(chips.locator('[data-category="cat"]')).to_have_text(re.compile(r"^cat (8\d|9\d)\.\d%$"))
    assert chips.evaluate("list => list.nextElementSibling.getAttribute('role')") == "img"

    # AND the change was announced to screen readers
    expect(page.locator("#announcer")).to_contain_text("chelsea.png: Succeeded")
    page.screenshot(path=screenshots / "laptop-cat.png", full_page=True)


def test_broken_image_shows_its_reason_and_retry_runs_it_again(
    page: Page, runtime: Runtime, screenshots: Path
) -> None:
    # GIVEN a JPEG that passes the door but cannot be decoded
    open_with_key(page, runtime)
    upload(page, "broken.jpg", "image/jpeg", truncated_jpeg())

    # THEN it fails with the API's reason and offers Retry
    card = job_card(page, "broken.jpg")
    expect(card).to_have_attribute("data-status", "FAILED")
    job = server_job(runtime, card.get_attribute("data-job-id") or "")
    assert job["error"]["code"] == "undecodable_image"
    expect(card.locator(".error-message")).to_have_text(job["error"]["message"])
    expect(card.locator(".error-code")).to_have_text("undecodable_image")
    retry = card.get_by_role("button", name="Retry")
    expect(retry).to_be_visible()

    # WHEN Retry is pressed
    retry.click()

    # THEN the job goes back to PENDING, is watched again, and fails again for the same reason
    expect(card.locator(".history")).to_contain_text("Failed → Pending")
    expect(card).to_be_focused()
    expect(card.locator(".history")).to_have_text(
        re.compile(r"Failed → Pending( → Processing)? → Failed$")
    )
    expect(card).to_have_attribute("data-status", "FAILED")
    expect(card.locator(".attempts")).to_have_text("attempt 2")
    expect(card.get_by_role("button", name="Retry")).to_be_visible()
    again = server_job(runtime, job["job_id"])
    assert (again["status"], again["attempts"]) == ("FAILED", 2)
    expect(page.locator("#announcer")).to_contain_text("broken.jpg: Pending")
    page.screenshot(path=screenshots / "laptop-retry.png", full_page=True)


def test_a_file_that_is_not_an_image_shows_the_api_415_message(
    page: Page, runtime: Runtime
) -> None:
    notes = b"shopping list: milk, eggs, a better image classifier\n"
    refused = runtime.post_image(notes, "application/octet-stream")
    assert refused.status_code == 415
    open_with_key(page, runtime)

    upload(page, "notes.txt", "text/plain", notes)

    card = job_card(page, "notes.txt")
    expect(card).to_have_attribute("data-status", "REJECTED")
    expect(card.locator(".badge")).to_have_text("Rejected (415)")
    expect(card.locator(".error-message")).to_have_text(refused.json()["error"]["message"])
    expect(card.get_by_role("button", name="Retry")).to_have_count(0)
    expect(page.locator("#announcer")).to_contain_text("notes.txt: Rejected")


def test_a_drop_of_several_files_shows_batch_progress(
    page: Page, runtime: Runtime, screenshots: Path
) -> None:
    open_with_key(page, runtime)

    drop(
        page,
        [
            ("chelsea.png", "image/png", CAT.read_bytes()),
            ("coffee.png", "image/png", COFFEE.read_bytes()),
            ("broken.jpg", "image/jpeg", truncated_jpeg()),
        ],
    )

    batch = page.locator("#batches > li")
    expect(batch).to_have_count(1)
    expect(batch.locator(".batch-title")).to_have_text("Batch of 3 images")
    expect(batch.locator(".batch-text")).to_have_text("3 of 3 done, 1 failed")
    assert batch.locator("progress").evaluate("p => [p.value, p.max]") == [3, 3]
    names = page.locator("#jobs > li .job-name").all_inner_texts()
    # Newest first, so the drop comes before the jobs listed from earlier tests, in its order.
    assert names[:3] == ["chelsea.png", "coffee.png", "broken.jpg"]
    expect(job_card(page, "chelsea.png")).to_have_attribute("data-status", "SUCCEEDED")
    coffee = job_card(page, "coffee.png")
    expect(coffee).to_have_attribute("data-status", "SUCCEEDED")
    expect(coffee.locator(".bar-row.top .bar-label")).to_have_text("espresso")
    expect(job_card(page, "broken.jpg")).to_have_attribute("data-status", "FAILED")
    expect(page.locator("#announcer")).to_contain_text("Batch finished: 3 of 3 done, 1 failed")
    page.screenshot(path=screenshots / "laptop-batch.png", full_page=True)

    # AND the drop's results download as CSV: one row per file, with its categories
    with page.expect_download() as download:
        batch.get_by_role("link", name="Download results (CSV)").click()
    assert download.value.suggested_filename.endswith("-results.csv")
    saved = Path(download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(saved)))
    assert [(r["filename"], r["status"]) for r in rows] == [
        ("chelsea.png", "SUCCEEDED"),
        ("coffee.png", "SUCCEEDED"),
        ("broken.jpg", "FAILED"),
    ]
    assert rows[1]["label"] == "espresso"
    assert rows[1]["categories"].startswith("beverage 0.9")
    assert rows[2]["error"].startswith("undecodable_image: ")


def test_earlier_jobs_are_listed_on_load_and_the_page_fits_a_phone(
    pages: Pages, runtime: Runtime, screenshots: Path
) -> None:
    # GIVEN a job submitted through the API, not through this page
    job_id = runtime.submit(COFFEE.read_bytes(), "image/png")
    assert runtime.wait_for(job_id)["status"] == "SUCCEEDED"

    # WHEN the page is opened on a phone and the key entered
    page = pages.open(PHONE, is_mobile=True, has_touch=True)
    open_with_key(page, runtime)

    # THEN the job is listed, with its chart and its stored image
    card = page.locator(f'#jobs > li[data-job-id="{job_id}"]')
    expect(card).to_have_attribute("data-status", "SUCCEEDED")
    expect(
        card.get_by_role("img", name=re.compile(r"Top 5 labels for Job .*: espresso"))
    ).to_be_visible()
    expect_thumbnail_loaded(card)

    # AND after a reload the key comes back from localStorage and the list with it
    page.reload()
    expect(page.get_by_label("API key")).to_have_value(KEY)
    expect(card).to_have_attribute("data-status", "SUCCEEDED")
    expect_thumbnail_loaded(card)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # Every listed job has fetched its stored image (the truncated JPEGs may show as broken).
    expect(
        page.locator('#jobs > li:is([data-thumb="none"], [data-thumb="loading"])')
    ).to_have_count(0)
    cats = page.locator("#jobs > li").filter(
        has=page.locator(".bar-row.top .bar-label", has_text=CAT_LABEL)
    )
    expect(cats.first).to_have_attribute("data-thumb", "loaded")
    page.screenshot(path=screenshots / "phone-jobs.png", full_page=True)


def test_the_page_waits_with_long_polls_not_a_timer(page: Page, runtime: Runtime) -> None:
    # GIVEN the page, recording every request it makes for a job's state
    asked: list[str] = []
    page.on(
        "request",
        lambda request: (
            asked.append(request.url) if re.search(r"/jobs/[0-9a-f]{32}", request.url) else None
        ),
    )
    open_with_key(page, runtime)

    # WHEN a photo is uploaded and classified
    with page.expect_response(lambda r: r.request.method == "POST" and "/jobs" in r.url) as sent:
        upload(page, "long-poll-cat.jpg", "image/jpeg", cat_jpeg())
    job_id = sent.value.json()["job_id"]
    card = job_card(page, "long-poll-cat.jpg")
    expect(card).to_have_attribute("data-status", "SUCCEEDED", timeout=60_000)

    # THEN the page asked the server to answer when this job was done: one or two requests,
    # each a long poll, where a 1-second timer would have made one a second
    mine = [url for url in asked if job_id in url]
    assert mine, asked
    assert all("wait=20" in url for url in mine), mine
    assert len(mine) <= 3, mine


def test_a_job_that_has_not_finished_can_be_canceled_from_its_card(
    page: Page, runtime: Runtime
) -> None:
    # GIVEN a job recorded PENDING whose message is not on the queue yet, so it stays PENDING
    now = utc_now()
    job = JobRecord(
        job_id=new_job_id(),
        owner="tenant",
        status=JobStatus.PENDING,
        created_at=now,
        updated_at=now,
        attempts=0,
        s3_key="images/tenant/not-sent-yet",
        content_type="image/png",
        size_bytes=1,
    )
    runtime.aws("dynamodb").put_item(TableName=Settings().table, Item=job.to_item())
    open_with_key(page, runtime)
    card = page.locator(f'#jobs > li[data-job-id="{job.job_id}"]')
    expect(card).to_have_attribute("data-status", "PENDING")

    # WHEN its Cancel button is pressed
    card.get_by_role("button", name=re.compile(r"^Cancel ")).click()

    # THEN the card and the API say CANCELED, and the button is gone
    expect(card).to_have_attribute("data-status", "CANCELED")
    expect(card.locator(".badge")).to_have_text("Canceled")
    expect(card.get_by_role("button", name=re.compile(r"^Cancel "))).to_have_count(0)
    assert server_job(runtime, job.job_id)["status"] == "CANCELED"
    finished = page.locator('#jobs > li[data-status="SUCCEEDED"]')
    expect(finished.get_by_role("button", name=re.compile(r"^Cancel "))).to_have_count(0)
