"""The pages, as people in browsers use them: every form is sent as the browser would send
it (its hidden fields, the CSRF token among them, and nothing else), by clients that have
no CSRF header; the HTML is checked for what keyboards and the CSP need.

One world (tests.web_helpers): collections `open` and `guarded` (approval required) with
real faces, an admin, an investigator (ivan), an approver (april) and an auditor (audrey).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from faceledger.config import load_settings
from faceledger.web.pages.held import HeldPhotos
from faceledger.workspace import Workspace
from tests.accounts import add_collection, entries, initialise
from tests.site import TestSite
from tests.web_helpers import (
    AS_ROLE,
    World,
    cheap_passwords,
    client,
    login,
    make_world,
    password_of,
)

ROLES = ("admin", "investigator", "approver", "auditor")
EVERYONE = frozenset(ROLES)
OVERSEERS = frozenset({"admin", "auditor"})
# Who may open each page (everyone else gets the 403 page).
PAGES = {
    "/": EVERYONE,
    "/search": frozenset({"investigator"}),
    "/requests": EVERYONE,
    "/approvals": frozenset({"approver"}),
    "/collections": EVERYONE,
    "/collections/open": frozenset({"admin"}),
    "/crawls": OVERSEERS,
    "/ledger": OVERSEERS,
    "/ledger/verify": EVERYONE,
    "/reports": OVERSEERS,
    "/reports/subject": OVERSEERS,
    "/optouts": OVERSEERS,
}
LABELLED_BY_TYPE = {"hidden", "submit", "button"}


@dataclass
class Form:
    method: str
    action: str
    enctype: str
    fields: dict[str, str] = field(default_factory=dict)


class Page(HTMLParser):
    """A page's forms and what the markup checks need."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.html = html
        self.forms: list[Form] = []
        self.controls: list[dict[str, str]] = []  # inputs, selects, textareas
        self.label_for: set[str] = set()
        self.problems: list[str] = []
        self._form: Form | None = None
        self._labels = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if "style" in found or any(name.startswith("on") for name in found):
            self.problems.append(f"inline style or handler on <{tag}>")
        if tag == "style" or (tag == "script" and "src" not in found):
            self.problems.append(f"inline <{tag}>")
        if found.get("role") == "button":
            self.problems.append(f"<{tag} role=button> instead of a button")
        if tag == "form":
            self._form = Form(
                found.get("method", "get"), found.get("action", ""), found.get("enctype", "")
            )
            self.forms.append(self._form)
        elif tag == "label":
            self._labels += 1
            if "for" in found:
                self.label_for.add(found["for"])
        elif tag in ("input", "select", "textarea"):
            self.controls.append(found | {"_tag": tag, "_in_label": str(self._labels > 0)})
            if self._form is not None and found.get("type") == "hidden":
                self._form.fields[found["name"]] = found.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "label":
            self._labels -= 1

    def form(self, action: str) -> Form:
        matching = [f for f in self.forms if f.action == action]
        assert matching, f"no form posts to {action}"
        return matching[0]

    def audit(self) -> None:
        """Every POST form carries the CSRF token, every control has a label, no inline code."""
        assert not self.problems, self.problems
        for form in self.forms:
            if form.method.lower() == "post":
                assert form.fields.get("csrf_token"), f"no CSRF field in the form to {form.action}"
        for control in self.controls:
            if control.get("type") in LABELLED_BY_TYPE:
                continue
            labelled = (
                control.get("id") in self.label_for
                or control["_in_label"] == "True"
                or "aria-label" in control
            )
            assert labelled, f"unlabelled {control['_tag']} {control.get('name')}"


_SIGNED_IN: dict[tuple[int, str], TestClient] = {}


def browser(app: FastAPI, role_or_name: str) -> TestClient:
    """Signed in through the login form (once per app and person: logins are rate-limited);
    it sends no CSRF header, so forms must carry their token."""
    name = AS_ROLE.get(role_or_name, role_or_name)
    if (id(app), name) not in _SIGNED_IN:
        person = client(app)
        assert login(person, name, password_of(name)).status_code == 303
        _SIGNED_IN[id(app), name] = person
    return _SIGNED_IN[id(app), name]


def submit(
    person: TestClient,
    path: str,
    action: str,
    files: dict[str, Any] | None = None,
    **fields: Any,
) -> Any:
    """Open `path`, fill in the form that posts to `action` and send it as a browser would."""
    shown = person.get(path)
    assert shown.status_code == 200, shown.text
    form = Page(shown.text).form(action)
    return person.post(action, data=form.fields | fields, files=files)


def flashes(person: TestClient, path: str) -> str:
    shown = person.get(path)
    return " ".join(re.findall(r'<p class="flash [a-z]+" role="status">([^<]*)</p>', shown.text))


def photo_file(world: World, person: str, number: int = 0) -> dict[str, Any]:
    return {"photo": ("photo.jpg", world.photo(person, number), "image/jpeg")}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[World]:
    with cheap_passwords():
        yield make_world(tmp_path_factory, model_dir)


@pytest.fixture(scope="module")
def app(world: World) -> FastAPI:
    return world.app()


@pytest.mark.parametrize("path", sorted(PAGES))
def test_each_page_opens_for_the_roles_that_may_see_it_and_is_keyboard_and_csp_clean(
    app: FastAPI, path: str
) -> None:
    assert client(app).get(path).headers["location"].startswith("/login?next=")
    for role in ROLES:
        shown = browser(app, role).get(path)
        expected = 200 if role in PAGES[path] else 403
        assert shown.status_code == expected, (role, path, shown.text[:300])
        assert shown.headers["content-type"].startswith("text/html")
        Page(shown.text).audit()


def test_the_navigation_offers_only_what_the_role_may_open(app: FastAPI) -> None:
    for role in ROLES:
        html = browser(app, role).get("/").text
        offered = set(re.findall(r'<li><a href="(/[a-z]*)"', html)) - {"/"}
        assert offered <= {path for path, who in PAGES.items() if role in who}, role


def test_search_needing_approval_from_photo_to_evidence_through_the_forms(
    world: World, app: FastAPI
) -> None:
    ivan, april = browser(app, "ivan"), browser(app, "april")
    uploaded = submit(ivan, "/search", "/search/photo", files=photo_file(world, "Colin_Powell"))
    assert (uploaded.status_code, uploaded.headers["location"]) == (303, "/search")
    form_page = ivan.get("/search")
    page = Page(form_page.text)
    page.audit()
    assert '<svg class="faces"' in form_page.text and 'name="face" value="1"' in form_page.text
    assert ivan.get("/search/photo").headers["content-type"] == "image/jpeg"
    assert ivan.get("/search/photo/faces/1").headers["content-type"] == "image/jpeg"
    assert not entries(Workspace(world.settings).sessions, "search.requested")  # nothing yet

    asked = submit(
        ivan,
        "/search",
        "/search",
        face="1",
        collection="guarded",
        purpose="investigation",
        case="CASE-9",
        justification="identify the person on camera 3",
    )
    assert asked.status_code == 303
    request_path = asked.headers["location"]
    request_id = int(request_path.rsplit("/", 1)[1])
    waiting = ivan.get(request_path).text
    assert "Waiting for approval" in waiting and 'data-live="3"' in waiting
    assert ivan.get("/search/photo").status_code == 404  # the held photo is gone

    inbox = april.get("/approvals").text
    Page(inbox).audit()
    assert f"Request #{request_id} by ivan" in inbox and "identify the person on camera 3" in inbox
    assert 'href="data:image/jpeg;base64,' in inbox  # the probe, with its face drawn on it
    decided = submit(
        april, "/approvals", f"/approvals/{request_id}", decision="approve", reason="proportionate"
    )
    assert decided.status_code == 303 and "approved" in flashes(april, "/approvals")

    approved = ivan.get(request_path).text
    assert "data-live" not in approved and "Run the search now" in approved
    ran = submit(ivan, request_path, f"{request_path}/run")
    assert ran.status_code == 303
    results = ivan.get(request_path).text
    Page(results).audit()
    ids = re.findall(r'<li id="result-(\d+)" class="match">', results)
    assert ids, results
    best = ids[0]
    assert f'src="/api/v1/results/{best}/face"' in results and "Colin_Powell" in results
    assert ivan.get(f"/api/v1/results/{best}/face").headers["content-type"] == "image/jpeg"

    review = f"{request_path}/results/{best}/review"
    assert submit(ivan, request_path, review, decision="confirm").status_code == 303
    blind = april.get(request_path).text
    assert "ivan: confirm" not in blind  # April decides without seeing Ivan's decision
    assert submit(april, request_path, review, decision="confirm").status_code == 303
    after = april.get(request_path).text
    assert "confirmed by two people" in after and "ivan: confirm" in after

    sheet = submit(ivan, request_path, f"{request_path}/evidence")
    assert sheet.status_code == 200
    assert sheet.headers["content-disposition"].startswith("attachment")
    assert "evidence" in sheet.text.lower()

    audrey = browser(app, "audrey")
    ledger = audrey.get("/ledger", params={"subject": f"search:{request_id}"}).text
    steps = re.findall(r"<td>([a-z]+)</td>\s*<td><code>([a-z._]+)</code></td>", ledger)
    # Every step, each page view of the probe or the results included (shown once here).
    assert [step for n, step in enumerate(steps) if step not in steps[:n]] == [
        ("ivan", "search.requested"),
        ("ivan", "search.pending"),
        ("april", "probe.viewed"),
        ("april", "search.approved"),
        ("ivan", "search.run"),
        ("ivan", "results.viewed"),
        ("april", "results.viewed"),
        ("ivan", "evidence.exported"),
    ], steps
    assert "The ledger verifies" in audrey.get("/ledger/verify").text


def test_refusals_come_back_to_the_page_and_the_refused_request_says_why(
    world: World, app: FastAPI
) -> None:
    ivan = browser(app, "ivan")
    bad = submit(ivan, "/search", "/search/photo", files={"photo": ("x.jpg", b"not a photo")})
    assert bad.headers["location"] == "/search"
    assert "cannot be used" in flashes(ivan, "/search")
    submit(ivan, "/search", "/search/photo", files=photo_file(world, "Serena_Williams"))
    asked = submit(
        ivan, "/search", "/search", face="1", collection="open", purpose="fishing", case="C-1",
        justification="curious",
    )  # fmt: skip
    refused = ivan.get(asked.headers["location"]).text
    assert "Refused" in refused and "unknown_purpose" in refused

    april = browser(app, "april")
    forged = april.post("/approvals/1", data={"decision": "approve", "reason": "no token"})
    assert forged.status_code == 403 and "csrf" in forged.text.lower()


def test_a_held_photo_belongs_to_its_session_and_expires(world: World, app: FastAPI) -> None:
    ivan, iris = browser(app, "ivan"), browser(app, "iris")
    submit(ivan, "/search", "/search/photo", files=photo_file(world, "George_W_Bush"))
    assert ivan.get("/search/photo").status_code == 200
    assert iris.get("/search/photo").status_code == 404
    folder = world.settings.data_dir / "web-held"
    assert {p.suffix for p in folder.iterdir()} == {".photo", ".json"}
    store = HeldPhotos(folder, minutes=0)
    time.sleep(0.01)
    store.sweep()
    assert not list(folder.iterdir())
    assert ivan.get("/search").status_code == 200 and ivan.get("/search/photo").status_code == 404


def test_admins_create_collections_and_change_policies_through_the_ledger(
    world: World, app: FastAPI
) -> None:
    admin = browser(app, "admin")
    made = submit(
        admin, "/collections", "/collections", name="press", legal_basis="archive",
        search_roles=["investigator", "approver"], honour_optouts="on", result_limit="5",
    )  # fmt: skip
    assert made.status_code == 303 and "created" in flashes(admin, "/collections")
    changed = submit(
        admin, "/collections/press", "/collections/press", legal_basis="archive",
        search_roles="investigator", approval_required="on", honour_optouts="on",
        result_limit="5",
    )  # fmt: skip
    assert changed.status_code == 303
    policy = entries(Workspace(world.settings).sessions, "collection.policy")[-1]["payload"]
    assert policy == {
        "approval_required": {"old": False, "new": True},
        "search_roles": {"old": ["approver", "investigator"], "new": ["investigator"]},
    }
    invalid = submit(admin, "/collections/press", "/collections/press", legal_basis=" ")
    assert invalid.headers["location"] == "/collections/press"
    assert "legal_basis is required" in flashes(admin, "/collections/press")
    assert browser(app, "ivan").post("/collections/press", data={}).status_code == 403


def test_an_admin_records_an_opt_out_from_a_photo_and_may_lift_it(
    world: World, app: FastAPI
) -> None:
    admin = browser(app, "admin")
    files = photo_file(world, "Serena_Williams", 3)
    assert submit(admin, "/optouts", "/optouts/photo", files=files).status_code == 303
    Page(admin.get("/optouts").text).audit()
    recorded = submit(admin, "/optouts", "/optouts", face="1", label="TICKET-5")
    assert recorded.status_code == 303
    assert "faces purged" in flashes(admin, "/optouts")
    added = entries(Workspace(world.settings).sessions, "optout.added")[-1]
    assert added["actor"] == "admin" and added["payload"]["counts"]["open"] >= 1
    registry = browser(app, "audrey").get("/optouts").text
    assert "TICKET-5" in registry and "Record an opt-out" not in registry
    optout_id = int(re.findall(r'action="/optouts/(\d+)/remove"', admin.get("/optouts").text)[0])
    lifted = submit(admin, "/optouts", f"/optouts/{optout_id}/remove", reason="asked in error")
    assert lifted.status_code == 303 and "lifted" in flashes(admin, "/optouts")


def test_auditors_read_the_oversight_report_and_a_data_subject_report(
    world: World, app: FastAPI
) -> None:
    audrey = browser(app, "audrey")
    shown = audrey.get("/reports", params={"start": "2000-01-01", "until": "2100-01-01"})
    assert shown.status_code == 200
    Page(shown.text).audit()
    assert "oversight report" in shown.text and '<img src="data:image/png;base64,' in shown.text
    bad_zone = audrey.get("/reports", params={"start": "2000-01-01", "until": "2000-01-02",
                                              "timezone": "Mars/Olympus"})  # fmt: skip
    assert bad_zone.status_code == 303

    files = photo_file(world, "George_W_Bush", 4)
    submit(audrey, "/reports/subject", "/reports/subject/photo", files=files)
    report = submit(audrey, "/reports/subject", "/reports/subject", face="1")
    assert report.status_code == 200 and "data-subject report" in report.text
    assert "Where this person" in report.text
    Page(report.text).audit()


def test_an_admin_declares_a_crawl_and_watches_it_finish(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, world: World
) -> None:
    settings = load_settings(
        tmp_path_factory.mktemp("crawl-web"),
        workers=1,
        model_dir=model_dir,
        crawl_per_host_delay=0.0,
    )
    initialise(settings, "audrey")
    add_collection(settings, "web")
    app = World(settings, world.faces_dev).app()
    admin = browser(app, "admin")
    images = {"/img/a.jpg": world.photo("George_W_Bush", 1)}
    with TestSite(images=images) as site:
        started = submit(
            admin, "/crawls", "/crawls", collection="web", legal_basis="archive", case="C-42",
            seeds=site.url("/"), max_depth="0", max_pages="5", allow_addresses="127.0.0.0/8",
        )  # fmt: skip
        assert started.status_code == 303 and "started" in flashes(admin, "/crawls")
        deadline = time.monotonic() + 60
        while "status-finished" not in (shown := admin.get("/crawls").text):
            assert time.monotonic() < deadline, "the crawl did not finish in 60 s"
            assert 'data-live="2"' in shown
            time.sleep(0.3)
    auditor_view = browser(app, "audrey").get("/crawls").text
    assert "C-42" in auditor_view and "Declare a new crawl" not in auditor_view
    finished = entries(Workspace(settings).sessions, "crawl.finished")
    assert finished and finished[0]["payload"]["faces_indexed"] >= 1
