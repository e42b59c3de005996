"""End to end in a real browser: Debian's Chromium driven by Playwright, against the real app
served by uvicorn on 127.0.0.1 (over plain HTTP, where Chromium still keeps the Secure
session cookie: loopback is a secure context).

Ivan searches a collection that needs approval; his page waits and updates by itself when
April approves; he runs it, both confirm the best match, Ivan downloads the evidence; Audrey
finds every step in the ledger, verifies it, reads the oversight report, and may not search.
Each page is saved as a screenshot under test-artifacts/screenshots/. Any CSP violation or
script error fails the test.
"""

from __future__ import annotations

import itertools
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.conftest import REPO
from tests.site import TestSite
from tests.web_helpers import World, cheap_passwords, make_world, password_of

sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing that reaches for the (closed) network in the background.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
SHOTS = itertools.count(1)
WAIT_MS = 20_000
sync_api.expect.set_options(timeout=WAIT_MS)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason=f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)",
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[World]:
    with cheap_passwords():
        yield make_world(tmp_path_factory, model_dir)


@pytest.fixture(scope="module")
def base_url(world: World) -> Iterator[str]:
    """The app served by uvicorn in a thread on a free loopback port."""
    server = uvicorn.Server(
        uvicorn.Config(world.app(), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def chromium() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Person:
    """One person in their own browser context (cookies), with a tab and its problems."""

    def __init__(self, chromium: sync_api.Browser, base_url: str, name: str) -> None:
        self.name, self.base_url = name, base_url
        self.context = chromium.new_context(
            base_url=base_url, viewport={"width": 1366, "height": 800}, accept_downloads=True
        )
        self.context.set_default_timeout(WAIT_MS)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda error: self.problems.append(str(error)))
        self.page.on("console", self._console)

    def _console(self, message: sync_api.ConsoleMessage) -> None:
        if message.type == "error":  # CSP violations, failed loads, script errors
            self.problems.append(f"{message.text} ({message.location['url']})")

    def sign_in(self) -> None:
        self.page.goto("/login")
        self.page.get_by_label("User name").fill(self.name)
        self.page.get_by_label("Password").fill(password_of(self.name))
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(f"{self.base_url}/")

    def go(self, link: str) -> None:
        """Follow a link of the main navigation."""
        nav = self.page.get_by_role("navigation", name="Main")
        nav.get_by_role("link", name=link, exact=True).click()

    def shot(self, name: str) -> None:
        """Save the page as NN-name.png, numbered in the order the tests take them."""
        self.page.wait_for_load_state("networkidle")
        path = SCREENSHOTS / f"{next(SHOTS):02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)

    def check(self) -> None:
        assert not self.problems, f"{self.name}'s browser reported: {self.problems}"


@pytest.fixture(scope="module", autouse=True)
def screenshots() -> None:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)


def test_search_approval_review_export_ledger_and_report_in_chromium(
    world: World, base_url: str, chromium: sync_api.Browser, tmp_path: Path
) -> None:
    expect = sync_api.expect
    ivan, april, audrey = (Person(chromium, base_url, n) for n in ("ivan", "april", "audrey"))

    ivan.page.goto("/login")
    ivan.shot("login")
    ivan.sign_in()
    cookie = next(c for c in ivan.context.cookies() if c["name"] == "faceledger_session")
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    ivan.shot("home")

    page = ivan.page
    ivan.go("Search")
    ivan.shot("search-upload")
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(world.photo("Colin_Powell"))
    page.get_by_label("Photo of the person").set_input_files(probe)
    page.get_by_role("button", name="Find the faces").click()
    expect(page.locator("svg.faces g.face")).to_have_count(1)
    expect(page.locator("svg.faces g.face.chosen")).to_have_count(1)  # drawn and chosen
    page.get_by_label("guarded").check()
    page.get_by_label("Purpose").select_option("investigation")
    page.get_by_label("Case reference").fill("CASE-31")
    page.get_by_label("Justification").fill("identify the person seen on camera 3")
    ivan.shot("search-faces")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_text("Waiting for approval")).to_be_visible()
    request_url = page.url
    request_id = int(request_url.rsplit("/", 1)[1])
    ivan.shot("waiting")

    april.sign_in()
    april.go("Approvals")
    expect(april.page.get_by_text(f"Request #{request_id} by ivan")).to_be_visible()
    april.shot("approvals")
    april.page.get_by_label("Reason for your decision").fill("serious offence, proportionate")
    april.page.get_by_role("button", name="Approve").click()
    expect(april.page.get_by_text(f"Request {request_id} approved.")).to_be_visible()

    # Ivan's page was left alone: it updates by itself.
    run = page.get_by_role("button", name="Run the search now")
    expect(run).to_be_visible()
    assert page.url == request_url
    ivan.shot("approved")
    run.click()
    matches = page.locator("li.match")
    expect(matches.first).to_be_visible()
    for crop in page.locator("img.crop").all():  # each face crop arrived and decoded
        expect(crop).to_have_js_property("complete", True)
        assert crop.evaluate("image => image.naturalWidth") > 0
    assert "Colin_Powell" in matches.first.inner_text()
    ivan.shot("results")
    matches.first.get_by_role("button", name="Confirm match").click()
    expect(page.locator("li.match").first.get_by_text("You chose confirm")).to_be_visible()

    april.page.goto(request_url)
    best = april.page.locator("li.match").first
    expect(best.get_by_role("button", name="Confirm match")).to_be_visible()
    assert "ivan: confirm" not in best.inner_text()  # blind until April decides
    best.get_by_role("button", name="Confirm match").click()
    expect(april.page.get_by_text("confirmed by two people").first).to_be_visible()
    expect(april.page.get_by_text("ivan: confirm")).to_be_visible()
    april.shot("confirmed-by-two")

    page.reload()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the evidence sheet").click()
    sheet = tmp_path / "evidence.html"
    download.value.save_as(sheet)
    assert download.value.suggested_filename == f"evidence-request-{request_id}.html"
    assert "Colin_Powell" in sheet.read_text(encoding="utf-8")
    ivan.go("Searches")
    expect(page.get_by_role("link", name=f"#{request_id}")).to_be_visible()
    ivan.shot("searches")

    audrey.sign_in()
    nav = audrey.page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Search", exact=True).count() == 0
    audrey.go("Ledger")
    audrey.page.get_by_label("Subject").fill(f"search:{request_id}")
    audrey.page.get_by_role("button", name="Filter").click()
    actions = audrey.page.locator("table.ledger td:nth-child(4)").all_inner_texts()
    for step in (
        "search.requested",
        "search.pending",
        "probe.viewed",
        "search.approved",
        "search.run",
        "results.viewed",
        "evidence.exported",
    ):
        assert step in actions, (step, actions)
    audrey.shot("ledger")
    audrey.page.get_by_label("Subject").fill("")
    audrey.page.get_by_label("Action").select_option("result.reviewed")
    audrey.page.get_by_role("button", name="Filter").click()
    reviewers = audrey.page.locator("table.ledger td:nth-child(3)").all_inner_texts()
    assert reviewers == ["ivan", "april"]
    audrey.page.get_by_role("link", name="Verify the whole chain").click()
    expect(audrey.page.get_by_text("The ledger verifies.")).to_be_visible()
    audrey.shot("verified")

    audrey.go("Reports")
    audrey.page.get_by_role("button", name="Make the oversight report").click()
    report = audrey.page.locator("article.report")
    expect(report.get_by_text("Ledger verified")).to_be_visible()
    assert report.locator("img[src^='data:image/png']").count() >= 1
    assert "searches" in report.inner_text()
    audrey.shot("oversight-report")

    audrey.page.get_by_role("link", name="Data-subject report from a photo").click()
    subject = tmp_path / "subject.jpg"
    subject.write_bytes(world.photo("Colin_Powell", 3))
    audrey.page.get_by_label("Photo of the person asking").set_input_files(subject)
    audrey.page.get_by_role("button", name="Find the faces").click()
    audrey.shot("subject-report-face")
    audrey.page.get_by_role("button", name="Make the report").click()
    expect(audrey.page.get_by_text("Searches that returned this person")).to_be_visible()
    assert f"{request_id}" in audrey.page.locator("article.report").inner_text()
    audrey.shot("subject-report")

    for person in (ivan, april, audrey):
        person.check()
    refused = audrey.page.goto("/search")  # the console reports this 403: expected
    assert refused is not None and refused.status == 403
    expect(audrey.page.get_by_text("may not search")).to_be_visible()
    audrey.shot("auditor-may-not-search")


def test_an_admin_creates_a_collection_crawls_into_it_and_records_an_opt_out(
    world: World, base_url: str, chromium: sync_api.Browser, tmp_path: Path
) -> None:
    expect = sync_api.expect
    admin = Person(chromium, base_url, "admin")
    admin.sign_in()
    page = admin.page
    admin.go("Collections")
    page.get_by_text("New collection").click()
    page.get_by_label("Name", exact=True).fill("news")
    page.get_by_label("Legal basis").fill("public-interest archive, case 2026/17")
    page.get_by_role("button", name="Create the collection").click()
    expect(page.get_by_text("Collection news created.")).to_be_visible()
    admin.shot("collections")
    page.goto("/collections/guarded")
    expect(page.get_by_label("An approver must approve each search")).to_be_checked()
    admin.shot("collection-policy")

    with TestSite(images={"/img/a.jpg": world.photo("George_W_Bush", 1)}) as site:
        admin.go("Crawls")
        page.get_by_label("Into collection").select_option("news")
        page.get_by_label("Case reference").fill("CASE-42")
        page.get_by_label("Legal basis").fill("public-interest archive")
        page.get_by_label("Seed URLs").fill(site.url("/"))
        page.get_by_label("Link depth").fill("0")
        page.get_by_label("Private address ranges allowed").fill("127.0.0.0/8")
        page.get_by_role("button", name="Start the crawl").click()
        expect(page.get_by_text("Crawl job 1 started.")).to_be_visible()
        admin.shot("crawl-running")
        # The figures update by themselves until the job has finished.
        expect(page.locator("#jobs .status-finished")).to_be_visible()
    assert int(page.locator("#jobs tbody td:nth-child(7)").inner_text()) >= 1  # faces indexed
    admin.shot("crawl-finished")

    admin.go("Opt-outs")
    photo = tmp_path / "optout.jpg"
    photo.write_bytes(world.photo("Serena_Williams", 3))
    page.get_by_label("Photo of the person opting out").set_input_files(photo)
    page.get_by_role("button", name="Find the faces").click()
    page.get_by_label("Reference").fill("TICKET-5")
    admin.shot("optout-face")
    page.get_by_role("button", name="Record the opt-out and purge").click()
    expect(page.get_by_text("faces purged")).to_be_visible()
    expect(page.get_by_role("cell", name="TICKET-5")).to_be_visible()
    admin.shot("optouts")
    admin.check()
