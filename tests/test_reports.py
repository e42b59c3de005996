"""Oversight and data-subject reports over a scripted scenario driven through the real
search service: real faces, real SQLite, the real ledger. Every figure the report shows is
checked against the ledger or against what the script itself did, never against constants.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from faceledger.auth.users import add_user, init_admin
from faceledger.cli import app
from faceledger.config import Settings, load_settings
from faceledger.errors import EXIT_AUTH
from faceledger.faces.pipeline import FacePipeline
from faceledger.ingest.job import IngestJob
from faceledger.ingest.ledgered import run_ingest
from faceledger.ledger import keys
from faceledger.policy.collections import create_collection
from faceledger.policy.optouts import add_optout
from faceledger.reports.oversight import OversightReport, Table, oversight_report
from faceledger.reports.records import Period
from faceledger.reports.render import render_oversight, write_oversight
from faceledger.reports.signals import SignalRules
from faceledger.reports.subject import SubjectReport, subject_report
from faceledger.search.outcome import SearchOutcome
from faceledger.search.service import SearchService
from faceledger.store.models import (
    Exposure,
    Face,
    LedgerEntry,
    LedgerPayload,
    SearchResult,
    SourceImage,
    User,
)
from faceledger.workspace import Workspace
from tests.faces import photos

PASSWORD = "scenario-password-1"
PEOPLE = ("Colin_Powell", "Tony_Blair", "Gerhard_Schroeder", "Hugo_Chavez", "Serena_Williams")
HOSTILE_CASE = '=HYPERLINK("http://x")<script>alert(1)</script>'
runner = CliRunner()
# A ledger entry as the tests read it: seq, action, actor, subject, payload.
Entry = tuple[int, str, str | None, str | None, dict[str, Any]]


class ScriptClock:
    """The service's clock, moved by the script: approvals can take minutes in no time."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Asked:
    request_id: int
    user: str
    person: str | None
    case: str | None
    status: str


@dataclass
class Scenario:
    settings: Settings
    period: Period
    first_day: date
    end_day: date
    asked: list[Asked] = field(default_factory=list)
    faces_indexed: int = 0
    late_request: int = 0
    quick_request: int = 0

    def ids(self, **match: Any) -> set[int]:
        return {
            a.request_id
            for a in self.asked
            if all(getattr(a, key) == value for key, value in match.items())
        }

    def track(self, outcome: SearchOutcome) -> SearchOutcome:
        """Remember each request's latest status, as the service answered it."""
        for asked in self.asked:
            if asked.request_id == outcome.request_id:
                asked.status = outcome.status
        return outcome


def _user(settings: Settings, name: str) -> User:
    with Workspace(settings).sessions() as session:
        user = session.scalar(select(User).where(User.name == name))
        assert user is not None
        return user


def _build(settings: Settings, pipeline: FacePipeline, faces_dev: Path, child: Path) -> Scenario:
    workspace = Workspace(settings)
    roles = {
        "ivan": ["investigator"],
        "ines": ["investigator"],
        "olga": ["investigator"],
        "vera": ["approver"],
        "val": ["approver"],
        "audrey": ["auditor"],
    }
    with workspace.sessions() as session:
        admin = init_admin(session, "admin", PASSWORD)
        for name, held in roles.items():
            add_user(session, admin, name, held, PASSWORD)
        create_collection(session, admin, "news", legal_basis="public interest (test)")
        create_collection(
            session, admin, "police", legal_basis="law enforcement (test)", approval_required=True
        )
        session.commit()
    gallery = {"news": PEOPLE[:4], "police": (PEOPLE[0], PEOPLE[4])}
    indexed = 0
    for collection, people in gallery.items():
        folder = settings.data_dir.parent / f"gallery-{collection}"
        folder.mkdir()
        for person in people:
            for photo in photos(faces_dev, person)[1:3]:
                (folder / photo.name).symlink_to(photo)
        with workspace.sessions() as session:
            job = IngestJob(workspace, collection, workers=1)
            indexed += run_ingest(session, _user(settings, "admin"), job, [folder]).faces_indexed

    # A weekday morning in this week (UTC); the ledger's own clock is the real one.
    today = datetime.now(UTC).date()
    monday = today - timedelta(days=today.weekday())
    clock = ScriptClock(datetime(monday.year, monday.month, monday.day, 9, tzinfo=UTC))
    service = SearchService(workspace, pipeline, clock=clock)
    first_day, end_day = monday, today + timedelta(days=2)
    scenario = Scenario(
        settings, Period.days(first_day, end_day), first_day, end_day, faces_indexed=indexed
    )
    who = {name: _user(settings, name) for name in roles}

    def ask(user: str, person: str | None, collection: str, case: str | None, photo: Path) -> int:
        clock.advance(60)
        outcome = service.request(
            who[user],
            photo.read_bytes(),
            collections=[collection],
            purpose="investigation",
            case_ref=case,
            justification="scripted oversight scenario",
        )
        scenario.asked.append(Asked(outcome.request_id, user, person, case, outcome.status))
        return outcome.request_id

    def probe(person: str, number: int = 0) -> Path:
        return photos(faces_dev, person)[number]

    p0, p1, p2, p3, p4 = PEOPLE
    # One case reference used for three different people.
    first = ask("ivan", p0, "news", "CASE-1", probe(p0))
    second = ask("ivan", p1, "news", "CASE-1", probe(p1))
    ask("ivan", p2, "news", "CASE-1", probe(p2))
    # Two-person confirmation of the first search's best match; the second search's best
    # match is confirmed by its requester alone, which does not make it confirmed.
    best = service.results(who["ivan"], first).results[0]["result_id"]
    service.review(who["ivan"], best, "confirm")
    service.results(who["ines"], first)
    service.review(who["ines"], best, "confirm")
    alone = service.results(who["ivan"], second).results[0]["result_id"]
    service.review(who["ivan"], alone, "confirm")
    # Approved within seconds (rubber-stamping), then run.
    scenario.quick_request = ask("ivan", p4, "police", "CASE-2", probe(p4))
    clock.advance(5)
    scenario.track(service.approve(who["vera"], scenario.quick_request, "looks fine"))
    scenario.track(service.run(who["ivan"], scenario.quick_request))
    # Approved after 45 minutes; another photo of the first person, under another case.
    slow = ask("ines", p0, "police", "CASE-3", probe(p0, 3))
    clock.advance(45 * 60)
    scenario.track(service.approve(who["vera"], slow, "case file checked"))
    scenario.track(service.run(who["ines"], slow))
    # Denied within seconds: fast, but a denial is no rubber stamp.
    denied = ask("ines", p3, "police", "CASE-4", probe(p3))
    clock.advance(10)
    scenario.track(service.deny(who["val"], denied, "no link to the case"))
    # Refusals: no case reference, a role not allowed, a child's photo.
    ask("olga", p1, "news", None, probe(p1, 1))
    ask("audrey", p2, "news", HOSTILE_CASE, probe(p2, 1))
    ask("olga", None, "news", "CASE-8", child)
    # Left waiting.
    ask("olga", p4, "police", "CASE-2", probe(p4, 1))
    # Late at night: the denied person again, same photo, under yet another case.
    clock.now = clock.now.replace(hour=23, minute=30)
    scenario.late_request = ask("ivan", p3, "news", "CASE-5", probe(p3))
    return scenario


@pytest.fixture(scope="module")
def scenario(
    tmp_path_factory: pytest.TempPathFactory,
    model_dir: Path,
    pipeline: FacePipeline,
    faces_dev: Path,
    shared_data: Path,
) -> Scenario:
    settings = load_settings(tmp_path_factory.mktemp("oversight") / "data", model_dir=model_dir)
    child = min(
        (p for p in (shared_data / "ages").glob("*.jpg") if int(p.name.split("_")[0]) in (5, 6)),
        key=lambda p: p.name,
    )
    return _build(settings, pipeline, faces_dev, child)


# A rule set under which the scripted heavy user (ivan: 5 searches, peers at most 3) shows.
RULES = SignalRules(peer_factor=1.5, peer_min_searches=5)


def _report(scenario: Scenario, rules: SignalRules = RULES) -> OversightReport:
    settings = scenario.settings
    with Workspace(settings).sessions() as session:
        auditor = session.scalar(select(User).where(User.name == "audrey"))
        assert auditor is not None
        made = oversight_report(
            session,
            auditor,
            scenario.period,
            public_key=keys.existing_public_key(settings),
            rules=rules,
        )
        session.commit()
    return made


def _ledger(settings: Settings) -> list[Entry]:
    """Every entry as (seq, action, actor, subject, payload), read straight from the tables."""
    with Workspace(settings).sessions() as session:
        rows = session.execute(
            select(
                LedgerEntry.seq,
                LedgerEntry.action,
                LedgerEntry.actor,
                LedgerEntry.subject,
                LedgerPayload.body,
            )
            .join(LedgerPayload, LedgerPayload.seq == LedgerEntry.seq)
            .order_by(LedgerEntry.seq)
        )
        return [(s, a, who, subj, json.loads(body or "{}")) for s, a, who, subj, body in rows]


def _payloads(entries: list[Entry], action: str) -> list[dict[str, Any]]:
    return [payload for _, name, _, _, payload in entries if name == action]


def _table(report: OversightReport, name: str) -> Table:
    return next(table for table in report.tables() if table.name == name)


def test_report_counts_agree_with_the_ledger_and_the_script(scenario: Scenario) -> None:
    before = _ledger(scenario.settings)
    report = _report(scenario)
    summary = report.summary()

    # How often, by whom, with what result: as the script did it.
    assert summary["searches"] == len(scenario.asked)
    assert report.outcomes() == Counter(a.status for a in scenario.asked)
    by_user = {row[0]: row[1] for row in _table(report, "by_user").rows}
    assert by_user == Counter(a.user for a in scenario.asked)
    assert {row[0] for row in _table(report, "by_purpose").rows} == {"investigation"}

    # ...and as the ledger recorded it.
    assert summary["searches"] == len(_payloads(before, "search.requested"))
    assert report.refusals() == Counter(p["code"] for p in _payloads(before, "search.refused"))
    assert summary["approvals"] == len(_payloads(before, "search.approved"))
    assert summary["denials"] == len(_payloads(before, "search.denied"))
    assert summary.get("done", 0) == len(_payloads(before, "search.run"))
    waited = sorted(
        p["waited_seconds"]
        for p in _payloads(before, "search.approved") + _payloads(before, "search.denied")
    )
    assert sorted(d.waited_seconds for d in report.decisions) == pytest.approx(waited, abs=0.01)
    delays = report.delays()["approved"]
    approved = [p["waited_seconds"] for p in _payloads(before, "search.approved")]
    assert (delays["min"], delays["max"]) == pytest.approx((min(approved), max(approved)), abs=0.1)

    # Who was affected: every face a run showed its requester or a later view showed anyone.
    shown = {r["face_id"] for p in _payloads(before, "search.run") for r in p["results"]}
    shown |= {f for p in _payloads(before, "results.viewed") for f in p["face_ids"]}
    assert summary["people_affected"] == len(shown) > 0
    confirmed = {p["result_id"] for p in _payloads(before, "result.reviewed") if p["confirmed"]}
    assert {m.result_id for m in report.confirmed} == confirmed and len(confirmed) == 1
    assert summary["results_shown"] == sum(
        len(p["results"]) for p in _payloads(before, "search.run")
    )

    # Ingestion volumes, the activity register and the ledger's state.
    finished = _payloads(before, "ingest.finished")
    assert summary["faces_indexed"] == sum(p["faces_indexed"] for p in finished)
    assert summary["faces_indexed"] == scenario.faces_indexed
    assert report.activity == Counter(action for _, action, _, _, _ in before)
    assert report.ledger.ok and report.ledger.entries == len(before)

    # Making the report is itself ledgered, by the auditor, with its counts only.
    after = _ledger(scenario.settings)
    assert [(a, who) for _, a, who, _, _ in after[len(before) :]] == [
        ("report.generated", "audrey")
    ]
    assert after[-1][4]["searches"] == summary["searches"]


def test_a_period_without_activity_reports_none(scenario: Scenario) -> None:
    earlier = Period.days(scenario.first_day - timedelta(days=7), scenario.first_day)
    report = _report(replace(scenario, period=earlier))
    assert report.searches == report.decisions == report.shown == report.signals == []
    assert report.activity == {} and report.ingestion == [] and report.confirmed == []
    assert report.ledger.ok  # the ledger is verified whole, whatever the period
    html = render_oversight(report)
    assert "No misuse signals" in html and "data:image/png" not in html


def test_misuse_signals_name_the_scripted_requests_and_their_entries(scenario: Scenario) -> None:
    report = _report(scenario)
    found = {(s.kind, s.request_ids) for s in report.signals}
    p0, _, _, p3, _ = PEOPLE
    expected = {
        ("case_many_subjects", tuple(sorted(scenario.ids(case="CASE-1")))),
        ("face_across_cases", tuple(sorted(scenario.ids(person=p0)))),
        ("face_across_cases", tuple(sorted(scenario.ids(person=p3)))),
        ("heavy_user", tuple(sorted(scenario.ids(user="ivan")))),
        ("unusual_hours", (scenario.late_request,)),
        ("quick_approval", (scenario.quick_request,)),
    }
    assert found == expected

    # Each signal cites exactly the ledger entries of its requests.
    entries = _ledger(scenario.settings)
    for signal in report.signals:
        subjects = {f"search:{i}" for i in signal.request_ids}
        assert list(signal.seqs) == [seq for seq, _, _, subj, _ in entries if subj in subjects]

    # The quick approval is the one the ledger says came within the limit.
    quick = [
        int(subj.split(":")[1])
        for _, action, _, subj, payload in entries
        if action == "search.approved" and payload["waited_seconds"] < RULES.quick_approval_seconds
    ]
    assert quick == [scenario.quick_request]

    # With the default peer rule (at least 10 searches) nobody here searches "far more".
    assert "heavy_user" not in {s.kind for s in _report(scenario, SignalRules()).signals}

    # Working hours are local: at UTC+14 the morning searches were made near midnight and
    # only the one made at 23:30 UTC falls inside working hours.
    kiribati = _report(scenario, replace(RULES, zone=ZoneInfo("Pacific/Kiritimati")))
    late = {i for s in kiribati.signals if s.kind == "unusual_hours" for i in s.request_ids}
    assert late == scenario.ids() - {scenario.late_request}


def test_html_answers_at_a_glance_and_escapes_what_people_typed(
    scenario: Scenario, tmp_path: Path
) -> None:
    report = _report(scenario)
    written = write_oversight(report, tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') >= 5  # self-contained charts
    assert "Ledger verified" in html
    for signal in report.signals:
        assert signal.title in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html

    names = {path.name for path in written}
    assert names == {"report.html", *(f"{table.name}.csv" for table in report.tables())}
    with (tmp_path / "out" / "searches.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(scenario.asked)
    hostile = next(row for row in rows if "HYPERLINK" in row["case_ref"])
    assert hostile["case_ref"] == "'" + HOSTILE_CASE  # not run as a spreadsheet formula


def _cli(settings: Settings, user: str, *args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(
        app,
        ["--data-dir", str(settings.data_dir), *args],
        env={
            "FACELEDGER_MODEL_DIR": str(settings.model_cache_dir),
            "FACELEDGER_USER": user,
            "FACELEDGER_PASSWORD": PASSWORD,
            "FACELEDGER_TOKEN": "",
        },
    )
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def _generated(settings: Settings, action: str) -> list[tuple[str | None, dict[str, Any]]]:
    return [(who, payload) for _, a, who, _, payload in _ledger(settings) if a == action]


def test_cli_report_writes_html_and_csvs_for_auditors_only(
    scenario: Scenario, tmp_path: Path
) -> None:
    settings = scenario.settings
    dates = ["--from", scenario.first_day.isoformat(), "--to", scenario.end_day.isoformat()]
    before = len(_generated(settings, "report.generated"))

    code, _ = _cli(settings, "ivan", "report", *dates, "--out", str(tmp_path / "no"), "--json")
    assert code == EXIT_AUTH and not (tmp_path / "no").exists()
    backwards = ["--from", dates[3], "--to", dates[1]]
    code, _ = _cli(settings, "audrey", "report", *backwards, "--out", str(tmp_path / "no"))
    assert code == 2 and not (tmp_path / "no").exists()
    code, _ = _cli(
        settings,
        "audrey",
        "report",
        *dates,
        "--timezone",
        "Nowhere/Else",
        "--out",
        str(tmp_path / "no"),
    )
    assert code == 2
    assert len(_generated(settings, "report.generated")) == before

    code, answer = _cli(
        settings, "audrey", "report", *dates, "--out", str(tmp_path / "r"), "--json"
    )
    assert code == 0
    assert answer["summary"]["searches"] == len(scenario.asked)
    assert answer["ledger"]["ok"] is True
    tables = answer["tables"]
    assert sorted(Path(f).name for f in answer["files"]) == sorted(
        ["report.html", *(f"{name}.csv" for name in tables)]
    )
    for name, records in tables.items():
        with (tmp_path / "r" / f"{name}.csv").open(newline="") as handle:
            assert len(list(csv.DictReader(handle))) == len(records), name
    made = _generated(settings, "report.generated")
    assert len(made) == before + 1 and made[-1][0] == "audrey"


def test_subject_report_says_where_a_person_is_held_and_who_saw_them(
    scenario: Scenario, faces_dev: Path, tmp_path: Path
) -> None:
    settings = scenario.settings
    person = PEOPLE[0]
    photo = photos(faces_dev, person)[0]
    out = tmp_path / "subject.html"
    code, _ = _cli(settings, "ivan", "subject", "report", str(photo), "--out", str(out))
    assert code == EXIT_AUTH and not out.exists()

    code, answer = _cli(
        settings, "audrey", "subject", "report", str(photo), "--out", str(out), "--json"
    )
    assert code == 0
    with Workspace(settings).sessions() as session:
        held = set(
            session.scalars(
                select(Face.id)
                .join(SourceImage, SourceImage.id == Face.image_id)
                .where(SourceImage.image_url.like(f"%/{person}/%"))
            )
        )
        returned = set(
            session.execute(
                select(SearchResult.id, SearchResult.request_id).where(
                    SearchResult.face_id.in_(held)
                )
            ).all()
        )
        viewings = sorted(
            session.execute(
                select(Exposure.result_id, User.name)
                .join(User, User.id == Exposure.shown_to)
                .where(Exposure.face_id.in_(held))
            ).all()
        )
    assert {face["face_id"] for face in answer["faces"]} == held
    assert {face["collection"] for face in answer["faces"]} == {"news", "police"}
    assert {(r["result_id"], r["request_id"]) for r in answer["returned"]} == returned
    assert {r["request_id"] for r in answer["returned"]} == scenario.ids(person=person)
    shown = sorted((r["result_id"], v["viewer"]) for r in answer["returned"] for v in r["shown"])
    assert shown == [tuple(row) for row in viewings]
    assert answer["opted_out"] is False

    # The ledger holds the photo's hash and the counts, nothing else.
    who, payload = _generated(settings, "subject.report")[-1]
    assert who == "audrey"
    assert payload == {
        "photo_hash": hashlib.sha256(photo.read_bytes()).hexdigest(),
        **answer["counts"],
    }
    html = out.read_text()
    assert all(face["image_url"] in html for face in answer["faces"])
    assert all(f"CASE-{n}" in html for n in (1, 3))


def _copy(scenario: Scenario, tmp_path: Path) -> Scenario:
    """A scenario on a copy of its data, for tests that change what they report on."""
    shutil.copytree(scenario.settings.data_dir, tmp_path / "data")
    settings = load_settings(tmp_path / "data", model_dir=scenario.settings.model_dir)
    return replace(scenario, settings=settings)


def test_a_tampered_ledger_shows_in_the_report(scenario: Scenario, tmp_path: Path) -> None:
    copy = _copy(scenario, tmp_path)
    approval = next(
        seq for seq, action, *_ in _ledger(copy.settings) if action == "search.approved"
    )
    with Workspace(copy.settings).sessions() as session:
        session.execute(
            text("UPDATE ledger_entries SET actor = 'nobody' WHERE seq = :seq"), {"seq": approval}
        )
        session.commit()
    report = _report(copy)
    assert not report.ledger.ok and report.ledger.problem_seq == approval
    assert "Ledger does NOT verify" in render_oversight(report)


def test_an_opted_out_person_is_reported_as_such_and_no_longer_held(
    scenario: Scenario, pipeline: FacePipeline, faces_dev: Path, tmp_path: Path
) -> None:
    copy = _copy(scenario, tmp_path)
    workspace = Workspace(copy.settings)
    photo = photos(faces_dev, PEOPLE[4])[0].read_bytes()

    def report_as(name: str) -> SubjectReport:
        with workspace.sessions() as session:
            made = subject_report(workspace, pipeline, session, _user(copy.settings, name), photo)
            session.commit()
            return made

    before = report_as("audrey")
    assert before.faces and before.opted_out_since is None
    embedding = pipeline.analyse(photo, probe=True).faces[0].embedding
    with workspace.sessions() as session:
        admin = _user(copy.settings, "admin")
        _, purge = add_optout(workspace, session, admin, embedding, "subject", "hash")
        session.commit()
    purge.apply_to_indexes()
    after = report_as("admin")
    assert after.opted_out_since is not None and after.faces == []
