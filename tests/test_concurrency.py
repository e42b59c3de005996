"""Several processes at once on one data directory: what must happen once happens once.

Each test starts real worker processes that prepare everything (imports, the database, the
acting users), wait at one barrier, and then act at the same moment; each reports when its
attempt started and ended, and the test checks that the attempts really overlapped before
it checks the outcome. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from faceledger.auth.tokens import create_token
from faceledger.auth.users import get_user
from faceledger.config import Settings, load_settings
from faceledger.ingest.files import iter_items
from faceledger.ingest.job import IngestJob
from faceledger.ledger.verify import verify
from faceledger.search.outcome import ServiceRefusal
from faceledger.search.service import SearchService
from faceledger.store.models import LedgerEntry, Review, SearchRequest
from faceledger.workspace import Workspace
from tests.accounts import ADMIN, add_collection, entries, initialise, person
from tests.conftest import SHARED_DATA
from tests.faces import photos

SPAWN = multiprocessing.get_context("spawn")
DEADLINE = 240.0  # seconds for all workers of one test, start-up included


@pytest.fixture(params=["sqlite", "postgresql"])
def settings_for(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "sqlite":
        return settings
    pg: Settings = request.getfixturevalue("pg_settings")
    return pg


@dataclass(frozen=True)
class Attempt:
    worker: int
    started: float
    ended: float
    outcome: Any


def _settings(where: dict[str, Any]) -> Settings:
    return load_settings(**where)


def _where(settings: Settings) -> dict[str, Any]:
    return {
        "data_dir": settings.data_dir,
        "database_url": settings.database_url or None,
        "model_dir": settings.model_dir,
        "workers": 1,
    }


def _worker(
    task: Callable[..., Any], args: tuple[Any, ...], number: int, barrier: Any, results: Any
) -> None:
    try:
        act = task(*args)  # prepares, then returns the attempt to make after the barrier
        barrier.wait(timeout=DEADLINE)
        started = time.time()
        try:
            outcome = act()
        except ServiceRefusal as refusal:
            outcome = ("refused", refusal.code)
        results.put(Attempt(number, started, time.time(), outcome))
    except BaseException as error:  # reported, not lost in the child's stderr
        results.put(Attempt(number, 0.0, 0.0, ("error", repr(error))))


def all_at_once(task: Callable[..., Any], argsets: list[tuple[Any, ...]]) -> list[Attempt]:
    """Run `task(*args)` for each args in its own process, released together; bounded."""
    barrier, results = SPAWN.Barrier(len(argsets)), SPAWN.Queue()
    workers = [
        SPAWN.Process(target=_worker, args=(task, args, n, barrier, results))
        for n, args in enumerate(argsets)
    ]
    for worker in workers:
        worker.start()
    try:
        attempts = [results.get(timeout=DEADLINE) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    errors = [
        a.outcome for a in attempts if isinstance(a.outcome, tuple) and a.outcome[0] == "error"
    ]
    assert not errors, errors
    return sorted(attempts, key=lambda a: a.worker)


def overlapping(attempts: list[Attempt]) -> int:
    """How many attempts had started before the first one to finish had ended."""
    first_end = min(a.ended for a in attempts)
    return sum(a.started <= first_end for a in attempts)


# -- the ledger ---------------------------------------------------------------------------


def _mint_tokens(where: dict[str, Any], count: int) -> Callable[[], tuple[str, int]]:
    """An admin minting `count` API tokens, each its own ledgered, committed action."""
    workspace = Workspace(_settings(where))
    admin = person(workspace.settings, ADMIN)

    def act() -> tuple[str, int]:
        for _ in range(count):
            with workspace.sessions() as session:
                create_token(session, get_user(session, admin.name), ADMIN, days=1)
                session.commit()
        return ("minted", count)

    return act


def test_ledgered_actions_from_four_processes_never_fail_or_fork(settings_for: Settings) -> None:
    initialise(settings_for)
    attempts = all_at_once(_mint_tokens, [(_where(settings_for), 50)] * 4)
    assert overlapping(attempts) == 4
    with Workspace(settings_for).sessions() as session:
        report = verify(session, None)
        count = session.scalar(select(func.count()).select_from(LedgerEntry))
    assert report.ok, report
    assert count == 1 + 200  # the admin's creation, then every token, none lost
    minted = entries(Workspace(settings_for).sessions, "token.create")
    assert len(minted) == 200


# -- approvals, reviews -------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """ivan's searches of real faces in `guarded` (approval) and `warrant` (authorisation)."""

    settings: Settings
    service: SearchService

    def ask(self, collection: str) -> int:
        outcome = self.service.request(
            person(self.settings, "ivan"),
            photos(SHARED_DATA / "faces-dev", "Colin_Powell")[0].read_bytes(),
            collections=[collection],
            purpose="investigation",
            case_ref="RACE-1",
            justification="several processes acting on one request at once",
        )
        assert outcome.status == ("pending" if collection == "guarded" else "done"), outcome
        return outcome.request_id

    def approved(self) -> int:
        request_id = self.ask("guarded")
        self.service.approve(person(self.settings, "april"), request_id, "proportionate")
        return request_id

    def ledgered(self, request_id: int) -> list[str]:
        subject = f"search:{request_id}"
        return [
            e["action"] for e in entries(self.service.workspace.sessions) if e["subject"] == subject
        ]


@pytest.fixture
def world(settings_for: Settings) -> World:
    faces_dev = SHARED_DATA / "faces-dev"
    if not faces_dev.is_dir():
        pytest.skip(f"needs the shared face photos at {faces_dev}")
    initialise(settings_for, "ivan", "april", "amos")
    gallery = [p for name in ("Colin_Powell", "Tony_Blair") for p in photos(faces_dev, name)[1:3]]
    workspace = Workspace(settings_for)
    for name, policy in (("guarded", "approval_required"), ("warrant", "authorisation_required")):
        add_collection(settings_for, name, **{policy: True})
        IngestJob(workspace, name).run(iter_items(gallery, [], 2**25))
    return World(settings_for, SearchService(workspace))


def _run_request(where: dict[str, Any], name: str, request_id: int) -> Callable[[], Any]:
    service = SearchService(Workspace(_settings(where)))
    service.engine  # noqa: B018 - loaded before the barrier: the race is the run, not start-up
    actor = person(service.settings, name)

    def act() -> Any:
        outcome = service.run(actor, request_id)
        return (outcome.status, [r["result_id"] for r in outcome.results or []])

    return act


def test_eight_processes_running_one_approval_run_it_exactly_once(world: World) -> None:
    request_id = world.approved()
    where = _where(world.settings)
    attempts = all_at_once(_run_request, [(where, "ivan", request_id)] * 8)
    assert overlapping(attempts) >= 2, "the runs did not race: nothing was tested"
    ran = [a for a in attempts if a.outcome[0] == "done"]
    refused = [a for a in attempts if a.outcome[0] != "done"]
    assert len(ran) == 1 and ran[0].outcome[1], attempts
    assert [a.outcome for a in refused] == [("refused", "approval_used")] * 7
    ledgered = world.ledgered(request_id)
    assert ledgered.count("search.run") == 1
    assert ledgered.count("search.run_refused") == 7
    with world.service.workspace.sessions() as session:
        row = session.get(SearchRequest, request_id)
        assert row is not None and row.status == "done"
        assert len(row.results) == len(ran[0].outcome[1])
        assert verify(session, None).ok


def _review(where: dict[str, Any], name: str, result_id: int) -> Callable[[], Any]:
    service = SearchService(Workspace(_settings(where)))
    actor = person(service.settings, name)

    def act() -> Any:
        outcome = service.review(actor, result_id, "confirm")
        return ("reviewed", name, outcome.confirmed)

    return act


def test_two_people_confirming_at_once_each_count_once(world: World) -> None:
    """Two people, each from two processes at once: one decision each, and the later one
    sees the earlier (the match is reported confirmed exactly once)."""
    done = world.service.run(person(world.settings, "ivan"), world.approved())
    first = (done.results or [])[0]["result_id"]
    where = _where(world.settings)
    attempts = all_at_once(_review, [(where, name, first) for name in ("ivan", "april") * 2])
    assert overlapping(attempts) >= 2, "the reviews did not race: nothing was tested"
    reviewed = sorted(a.outcome for a in attempts if a.outcome[0] == "reviewed")
    refused = [a.outcome for a in attempts if a.outcome[0] == "refused"]
    assert [name for _, name, _ in reviewed] == ["april", "ivan"]
    assert [confirmed for *_, confirmed in reviewed].count(True) == 1
    assert refused == [("refused", "already_reviewed")] * 2
    sessions = world.service.workspace.sessions
    with sessions() as session:
        decisions = session.scalar(
            select(func.count()).select_from(Review).where(Review.result_id == first)
        )
        assert decisions == 2
        assert verify(session, None).ok
    logged = entries(sessions, "result.reviewed")
    assert [e["payload"]["confirmed_by"] for e in logged if e["payload"]["confirmed"]] == [
        ["april", "ivan"]
    ]
    assert len(entries(sessions, "result.review_refused")) == 2


def _decide(where: dict[str, Any], name: str, request_id: int, grant: bool) -> Callable[[], Any]:
    service = SearchService(Workspace(_settings(where)))
    actor = person(service.settings, name)

    def act() -> Any:
        if grant:
            return ("decided", service.approve(actor, request_id, f"{name}: yes").status)
        return ("decided", service.deny(actor, request_id, f"{name}: no").status)

    return act


def test_two_approvers_deciding_at_once_make_one_decision(world: World) -> None:
    request_id = world.ask("guarded")
    where = _where(world.settings)
    attempts = all_at_once(
        _decide, [(where, "april", request_id, True), (where, "amos", request_id, False)]
    )
    assert overlapping(attempts) == 2, "the decisions did not race: nothing was tested"
    decided = [a.outcome for a in attempts if a.outcome[0] == "decided"]
    refused = [a.outcome for a in attempts if a.outcome[0] == "refused"]
    assert len(decided) == 1 and refused == [("refused", "not_pending")]
    ledgered = world.ledgered(request_id)
    assert ledgered.count("search.approved") + ledgered.count("search.denied") == 1
    assert ledgered.count("search.decision_refused") == 1
    with world.service.workspace.sessions() as session:
        row = session.get(SearchRequest, request_id)
        assert row is not None and row.status == decided[0][1]


def _authorise(where: dict[str, Any], name: str, request_id: int) -> Callable[[], Any]:
    service = SearchService(Workspace(_settings(where)))
    actor = person(service.settings, name)

    def act() -> Any:
        outcome = service.record_authorisation(actor, request_id, f"WARRANT-{name}", True)
        return ("recorded", outcome.details["authorisation"])

    return act


def test_an_authorisation_is_recorded_once(world: World) -> None:
    request_id = world.ask("warrant")
    where = _where(world.settings)
    attempts = all_at_once(_authorise, [(where, name, request_id) for name in ("april", "amos")])
    assert overlapping(attempts) == 2, "the two did not race: nothing was tested"
    outcomes = sorted(a.outcome for a in attempts)
    assert outcomes == [("recorded", "granted"), ("refused", "not_pending")]
    assert world.ledgered(request_id).count("authorisation.refused_record") == 1


def test_a_thread_cannot_wait_on_its_own_write_lock(settings: Settings) -> None:
    """A nested write transaction in one thread is a programming error found at once, not a
    30-second wait for a lock the thread itself holds (SQLite)."""
    from faceledger.store.db import NestedWriteTransaction

    initialise(settings)
    workspace = Workspace(settings)
    with workspace.sessions() as outer:
        get_user(outer, ADMIN)
        with workspace.reading() as inner:  # reading is fine
            assert get_user(inner, ADMIN).name == ADMIN
        with workspace.sessions() as inner, pytest.raises(NestedWriteTransaction):
            get_user(inner, ADMIN)
