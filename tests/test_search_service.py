"""The accountable search service on real faces: every way to misuse it, tried and refused.

One world per module (people, three collections with different policies, real LFW faces
ingested), because ingesting is the slow part; each test makes its own requests in it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from faceledger.auth import passwords
from faceledger.auth.users import add_user, init_admin
from faceledger.config import Settings, load_settings
from faceledger.errors import EXIT_AUTH
from faceledger.faces.decode import DecodeLimits
from faceledger.faces.pipeline import FacePipeline
from faceledger.ingest.files import iter_items
from faceledger.ingest.job import IngestJob
from faceledger.ledger import keys
from faceledger.ledger.verify import verify
from faceledger.policy.collections import create_collection
from faceledger.search import probes
from faceledger.search.engine import FaceChoiceRequired
from faceledger.search.outcome import ServiceRefusal
from faceledger.search.service import SearchService
from faceledger.store.models import (
    Exposure,
    LedgerEntry,
    LedgerPayload,
    SearchRequest,
    SearchResult,
    User,
)
from faceledger.workspace import Workspace
from tests.conftest import SHARED_DATA
from tests.faces import photos

PEOPLE = ("Angelina_Jolie", "Colin_Powell", "George_W_Bush", "Serena_Williams")
WHY = {"purpose": "investigation", "justification": "identify a suspect in a fraud case"}


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    settings: Settings
    workspace: Workspace
    service: SearchService
    clock: Clock
    faces_dev: Path

    def user(self, name: str) -> User:
        with self.workspace.sessions() as session:
            user = session.scalar(select(User).where(User.name == name))
            assert user is not None
            session.expunge(user)
            return user

    def probe(self, person: str, number: int = 0) -> bytes:
        return photos(self.faces_dev, person)[number].read_bytes()

    def ask(self, who: str, person: str, collection: str = "open", **fields: Any):
        values = {**WHY, "case_ref": "CASE-1"} | fields
        return self.service.request(
            self.user(who), self.probe(person), collections=[collection], **values
        )

    def entries(self, subject: str) -> list[tuple[str, dict[str, Any]]]:
        with self.workspace.sessions() as session:
            rows = session.execute(
                select(LedgerEntry.action, LedgerPayload.body)
                .join(LedgerPayload, LedgerPayload.seq == LedgerEntry.seq)
                .where(LedgerEntry.subject == subject)
                .order_by(LedgerEntry.seq)
            )
            return [(action, json.loads(body)) for action, body in rows]

    def actions(self, subject: str) -> list[str]:
        return [action for action, _ in self.entries(subject)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[World]:
    faces_dev = SHARED_DATA / "faces-dev"
    if not faces_dev.is_dir():
        pytest.skip(f"needs the shared face photos at {faces_dev}")
    saved = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    settings = load_settings(tmp_path_factory.mktemp("world"), workers=1, model_dir=model_dir)
    workspace = Workspace(settings)
    with workspace.sessions() as session:
        admin = init_admin(session, "admin", "admin-password-1")
        for name, roles in (
            ("ivy", ["investigator"]),
            ("ian", ["investigator"]),
            ("ann", ["approver"]),
            ("abe", ["approver", "investigator"]),
            ("aud", ["auditor"]),
        ):
            add_user(session, admin, name, roles, f"{name}-password-1")
        for name, policy in (
            ("open", {}),
            ("guarded", {"approval_required": True}),
            ("warrant", {"authorisation_required": True}),
        ):
            create_collection(session, admin, name, legal_basis="test fixture", **policy)
        session.commit()
    gallery = [p for person in PEOPLE for p in photos(faces_dev, person)[1:4]]
    for name in ("open", "guarded", "warrant"):
        IngestJob(workspace, name, workers=1).run(iter_items(gallery, [], DecodeLimits().max_bytes))
    clock = Clock()
    service = SearchService(workspace, FacePipeline(settings), clock=clock)
    yield World(settings, workspace, service, clock, faces_dev)
    passwords._hasher = saved


def test_a_search_runs_records_what_it_showed_and_ledgers_art_12_fields(world: World) -> None:
    outcome = world.ask("ivy", "Angelina_Jolie")
    assert outcome.status == "done", outcome
    results = outcome.results or []
    assert len(results) >= 3
    assert all("Angelina_Jolie" in r["image_url"] for r in results[:3])
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    with world.workspace.sessions() as session:
        row = session.get(SearchRequest, outcome.request_id)
        assert row is not None and row.probe_file is not None
        stored = probes.load(world.settings, row.probe_file)
        assert stored == world.probe("Angelina_Jolie")
        exposed = session.scalars(
            select(Exposure.face_id).where(Exposure.request_id == row.id)
        ).all()
        assert sorted(exposed) == sorted(r["face_id"] for r in results)
    actions = world.entries(f"search:{outcome.request_id}")
    assert [a for a, _ in actions] == ["search.requested", "search.run"]
    requested, run = actions[0][1], actions[1][1]
    assert requested["purpose"] == "investigation" and requested["case"] == "CASE-1"
    assert requested["probe_hash"] == probes.probe_hash(world.probe("Angelina_Jolie"))
    assert run["period_of_use"]["start"] and run["period_of_use"]["end"]
    assert run["reference_databases"][0]["collection"] == "open"
    assert run["reference_databases"][0]["faces"] >= 12
    assert [r["face_id"] for r in run["results"]] == [r["face_id"] for r in results]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"purpose": None}, "missing_purpose"),
        ({"purpose": "  "}, "missing_purpose"),
        ({"purpose": "curiosity"}, "unknown_purpose"),
        ({"case_ref": None}, "missing_case"),
        ({"case_ref": ""}, "missing_case"),
    ],
)
def test_a_search_without_purpose_or_case_is_refused_and_ledgered(
    world: World, fields: dict[str, Any], code: str
) -> None:
    outcome = world.ask("ivy", "Colin_Powell", **fields)
    assert (outcome.status, outcome.refusal_code) == ("refused", code)
    assert outcome.results is None
    with world.workspace.sessions() as session:
        row = session.get(SearchRequest, outcome.request_id)
        assert row is not None and row.probe_file is None and row.probe_embedding is None
        assert not row.results
    assert world.actions(f"search:{outcome.request_id}") == ["search.requested", "search.refused"]


@pytest.mark.parametrize("who", ["aud", "ann", "admin"])
def test_roles_the_policy_does_not_name_are_refused(world: World, who: str) -> None:
    outcome = world.ask(who, "Colin_Powell")
    refusal = outcome.refusal()
    assert refusal is not None and refusal.code == "role_not_allowed"
    assert (refusal.http_status, refusal.exit_status) == (403, EXIT_AUTH)  # who, not what
    assert world.actions(f"search:{outcome.request_id}")[-1] == "search.refused"


def test_unknown_collection_is_refused(world: World) -> None:
    outcome = world.ask("ivy", "Colin_Powell", collection="nowhere")
    assert outcome.refusal_code == "unknown_collection"


def test_a_child_probe_is_refused_and_not_kept(world: World) -> None:
    ages = SHARED_DATA / "ages"
    children = sorted(p for p in ages.glob("*.jpg") if int(p.name.split("_")[0]) <= 8)[:3]
    assert children, "the ages set has no photo of a child"
    for child in children:
        outcome = world.service.request(
            world.user("ivy"), child.read_bytes(), collections=["open"], case_ref="C-9", **WHY
        )
        assert (outcome.status, outcome.refusal_code) == ("refused", "minor"), child.name
        with world.workspace.sessions() as session:
            row = session.get(SearchRequest, outcome.request_id)
            assert row is not None
            assert row.probe_file is None and row.probe_embedding is None
            assert row.probe_age is not None and row.probe_age < 18


def test_a_group_photo_needs_a_face_choice_and_records_nothing(world: World) -> None:
    group = (SHARED_DATA / "groups" / "deepface_couple.jpg").read_bytes()
    with world.workspace.sessions() as session:
        before = session.scalar(select(func.count()).select_from(SearchRequest))
    with pytest.raises(FaceChoiceRequired):
        world.service.request(world.user("ivy"), group, collections=["open"], case_ref="C-2", **WHY)
    with world.workspace.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SearchRequest)) == before


def test_approval_flow_and_every_way_to_cheat_it(world: World) -> None:
    pending = world.ask("abe", "Serena_Williams", collection="guarded")
    assert pending.status == "pending" and pending.results is None
    rid = pending.request_id

    def refused(code: str, call: Any) -> None:
        with pytest.raises(ServiceRefusal) as caught:
            call()
        assert caught.value.code == code

    refused("awaiting_approval", lambda: world.service.run(world.user("abe"), rid))
    # abe holds the approver role too, but never for his own search
    refused("own_search", lambda: world.service.approve(world.user("abe"), rid, "fine"))
    refused("not_allowed", lambda: world.service.approve(world.user("ivy"), rid, "fine"))
    refused("missing_reason", lambda: world.service.approve(world.user("ann"), rid, " "))
    world.service.approve(world.user("ann"), rid, "proportionate: fraud case 7")
    refused("not_pending", lambda: world.service.deny(world.user("ann"), rid, "changed mind"))
    # the approval is bound to the probe, the collections and the requester
    other = world.probe("Colin_Powell")
    refused("approval_mismatch", lambda: world.service.run(world.user("abe"), rid, probe=other))
    refused(
        "approval_mismatch",
        lambda: world.service.run(world.user("abe"), rid, collections=["open"]),
    )
    refused("not_requester", lambda: world.service.run(world.user("ivy"), rid))
    done = world.service.run(
        world.user("abe"), rid, probe=world.probe("Serena_Williams"), collections=["guarded"]
    )
    assert done.status == "done"
    assert done.results and "Serena_Williams" in done.results[0]["image_url"]
    refused("approval_used", lambda: world.service.run(world.user("abe"), rid))
    actions = world.actions(f"search:{rid}")
    assert actions[:3] == ["search.requested", "search.pending", "search.run_refused"]
    assert actions.count("search.decision_refused") == 4
    assert actions.count("search.approved") == 1 and actions.count("search.run") == 1
    assert actions.count("search.run_refused") == 5


def test_an_approval_expires_and_a_swapped_probe_file_is_caught(world: World) -> None:
    late = world.ask("ivy", "Colin_Powell", collection="guarded")
    world.service.approve(world.user("ann"), late.request_id, "ok")
    world.clock.now += timedelta(hours=world.settings.approval_hours + 1)
    try:
        with pytest.raises(ServiceRefusal) as caught:
            world.service.run(world.user("ivy"), late.request_id)
        assert caught.value.code == "approval_expired"
    finally:
        world.clock.now -= timedelta(hours=world.settings.approval_hours + 1)
    swapped = world.ask("ivy", "Colin_Powell", collection="guarded")
    world.service.approve(world.user("ann"), swapped.request_id, "ok")
    with world.workspace.sessions() as session:
        row = session.get(SearchRequest, swapped.request_id)
        assert row is not None and row.probe_file
        probes.path_of(world.settings, row.probe_file).write_bytes(world.probe("George_W_Bush"))
    with pytest.raises(ServiceRefusal) as caught:
        world.service.run(world.user("ivy"), swapped.request_id)
    assert caught.value.code == "approval_mismatch"


def test_a_denied_request_never_runs_and_its_probe_is_dropped(world: World) -> None:
    asked = world.ask("ivy", "George_W_Bush", collection="guarded")
    denied = world.service.deny(world.user("ann"), asked.request_id, "not proportionate")
    assert denied.status == "denied"
    with pytest.raises(ServiceRefusal) as caught:
        world.service.run(world.user("ivy"), asked.request_id)
    assert caught.value.code == "denied" and "not proportionate" in str(caught.value)
    with world.workspace.sessions() as session:
        row = session.get(SearchRequest, asked.request_id)
        assert row is not None and row.probe_file is None


def test_two_person_confirmation_is_blind_and_cannot_be_done_alone(
    world: World, tmp_path: Path
) -> None:
    outcome = world.ask("ivy", "George_W_Bush")
    rid = outcome.request_id
    first = (outcome.results or [])[0]["result_id"]
    service = world.service
    with pytest.raises(ServiceRefusal) as caught:
        service.export(world.user("ivy"), rid, tmp_path / "none")
    assert caught.value.code == "nothing_confirmed"

    assert not service.review(world.user("ivy"), first, "confirm").confirmed
    with pytest.raises(ServiceRefusal) as caught:
        service.review(world.user("ivy"), first, "confirm")
    assert caught.value.code == "already_reviewed"
    with pytest.raises(ServiceRefusal) as caught:
        service.review(world.user("aud"), first, "confirm")
    assert caught.value.code == "not_allowed"

    # the second reviewer does not see the first decision before making their own
    blind = next(
        r for r in service.results(world.user("ian"), rid).results if r["result_id"] == first
    )
    assert blind["my_decision"] is None and "decisions" not in blind and "confirmed" not in blind
    second = service.review(world.user("ian"), first, "confirm")
    assert second.confirmed
    assert {d["user"] for d in second.decisions} == {"ivy", "ian"}
    seen = next(
        r for r in service.results(world.user("ian"), rid).results if r["result_id"] == first
    )
    assert seen["confirmed"] and len(seen["decisions"]) == 2

    json_path, html_path = service.export(world.user("ivy"), rid, tmp_path / "sheet")
    sheet = json.loads(json_path.read_text())
    assert [m["result_id"] for m in sheet["matches"]] == [first]
    assert sheet["candidates_included"] is False
    assert {e["action"] for e in sheet["ledger_entries"]} >= {
        "search.requested",
        "search.run",
        "result.reviewed",
        "evidence.exported",
    }
    assert "George_W_Bush" in html_path.read_text() and "<img" in html_path.read_text()
    _, _ = service.export(world.user("ivy"), rid, tmp_path / "all", candidates=True)
    exports = [p for a, p in world.entries(f"search:{rid}") if a == "evidence.exported"]
    assert [e["candidates"] for e in exports] == [False, True]
    assert len(exports[1]["result_ids"]) == len(outcome.results or [])
    with world.workspace.sessions() as session:
        shown_to = set(session.scalars(select(Exposure.shown_to).where(Exposure.request_id == rid)))
        ids = set(session.scalars(select(User.id).where(User.name.in_(["ivy", "ian"]))))
        assert shown_to == ids


def test_an_auditor_cannot_see_results(world: World) -> None:
    outcome = world.ask("ivy", "Serena_Williams")
    with pytest.raises(ServiceRefusal) as caught:
        world.service.results(world.user("aud"), outcome.request_id)
    assert caught.value.code == "not_allowed"
    assert world.actions(f"search:{outcome.request_id}")[-1] == "results.view_refused"


def test_results_are_purged_without_an_external_authorisation(world: World) -> None:
    lapsing = world.ask("ivy", "Colin_Powell", collection="warrant")
    refused = world.ask("ivy", "Angelina_Jolie", collection="warrant")
    granted = world.ask("ivy", "Serena_Williams", collection="warrant")
    assert all(o.status == "done" and o.results for o in (lapsing, refused, granted))
    service = world.service
    with pytest.raises(ServiceRefusal) as caught:
        service.record_authorisation(world.user("ivy"), granted.request_id, "W-1", True)
    assert caught.value.code == "not_allowed"
    assert service.record_authorisation(world.user("ann"), granted.request_id, "W-1", True)
    service.record_authorisation(world.user("ann"), refused.request_id, "W-2", False)
    world.clock.now += timedelta(hours=world.settings.authorisation_hours + 1)
    try:
        lapsed = service.lapse_overdue(None)
    finally:
        world.clock.now -= timedelta(hours=world.settings.authorisation_hours + 1)
    assert lapsing.request_id in lapsed and granted.request_id not in lapsed
    with world.workspace.sessions() as session:
        for gone in (lapsing, refused):
            row = session.get(SearchRequest, gone.request_id)
            assert row is not None and row.status == "purged" and row.probe_file is None
            results = session.scalars(
                select(SearchResult).where(SearchResult.request_id == gone.request_id)
            ).all()
            assert results and all(r.purged_at and r.image_url is None for r in results)
        kept = session.get(SearchRequest, granted.request_id)
        assert kept is not None and kept.status == "done"
    for gone in (lapsing, refused):
        assert "search.purged" in world.actions(f"search:{gone.request_id}")
        with pytest.raises(ServiceRefusal):
            service.results(world.user("ivy"), gone.request_id)


def test_the_ledger_of_all_this_verifies(world: World) -> None:
    world.ask("ivy", "Angelina_Jolie")
    with world.workspace.sessions() as session:
        public = keys.existing_public_key(world.settings)
        report = verify(session, public)
    assert report.ok, report.problem
