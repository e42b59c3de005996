"""The web app's defences, attacked: CSRF, session fixation and replay, cookie flags, headers,
lock-out and rate limits, hostile uploads, ids that are not secrets, ledgered views."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import update

from faceledger.auth import users
from faceledger.faces.decode import DecodeLimits
from faceledger.store.models import SearchResult
from faceledger.web.config import Bucket, WebConfig
from faceledger.workspace import Workspace
from tests.accounts import ADMIN, entries
from tests.hostile import write_hostile_files
from tests.web_helpers import (
    OTHER,
    WHY,
    World,
    cheap_passwords,
    client,
    cookie_session,
    csrf_in,
    login,
    make_world,
    password_of,
    sign_in,
)

COOKIE = WebConfig().cookie_name
JAR = {"domain": "testserver.local"}  # where the test client keeps the app's cookies


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[World]:
    with cheap_passwords():
        yield make_world(tmp_path_factory, model_dir)


@pytest.fixture(scope="module")
def done(world: World) -> dict[str, int]:
    """A search ivan ran in `open`, its results viewed by him once."""
    ivan = sign_in(world.app(), "ivan")
    outcome = world.search(ivan, "Colin_Powell").json()
    ivan.get(f"/api/v1/searches/{outcome['request_id']}/results")
    return {"request": outcome["request_id"], "result": outcome["results"][0]["result_id"]}


def test_forms_and_cookie_requests_without_the_csrf_token_are_refused(world: World) -> None:
    app = world.app()
    browser = client(app)
    token = csrf_in(browser.get("/login").text)
    form = {"username": "ivan", "password": password_of("ivan")}
    for sent in ({}, {"csrf_token": "forged"}, {"csrf_token": token[:-1]}):
        refused = browser.post("/login", data=form | sent)
        assert refused.status_code == 403 and "csrf failed" in refused.text
    assert browser.post("/login", data=form | {"csrf_token": token}).status_code == 303

    signed_in = sign_in(app, "ivan")
    forged = client(app)
    forged.cookies.set(COOKIE, signed_in.cookies[COOKIE], **JAR)  # a cookie alone is not enough
    answer = forged.patch("/api/v1/collections/open", json={})
    assert (answer.status_code, answer.json()["error"]) == (403, "csrf_failed")
    logout = forged.post("/logout", data={"csrf_token": "forged"})
    assert logout.status_code == 403
    assert forged.get("/api/v1/users/me").status_code == 200  # still signed in
    with_token = forged.post("/logout", data={"csrf_token": signed_in.headers["X-CSRF-Token"]})
    assert with_token.status_code == 303


def test_signing_in_replaces_the_session_so_a_planted_one_is_worthless(world: World) -> None:
    app = world.app()
    attacker = client(app)
    attacker.get("/login")
    planted = attacker.cookies[COOKIE]
    victim = client(app)
    victim.cookies.set(COOKIE, planted, **JAR)
    assert login(victim, "ivan", password_of("ivan")).status_code == 303
    after = victim.cookies[COOKIE]
    assert cookie_session(after)["sid"] != cookie_session(planted)["sid"]
    assert cookie_session(after)["csrf"] != cookie_session(planted)["csrf"]
    assert attacker.get("/api/v1/users/me").status_code == 401
    assert victim.get("/api/v1/users/me").json()["name"] == "ivan"


def test_session_cookie_flags(world: World) -> None:
    answer = client(world.app()).get("/login")
    cookie = answer.headers["set-cookie"].lower()
    for flag in ("httponly", "secure", "samesite=strict", "path=/"):
        assert flag in cookie, cookie
    assert "max-age=3600" in cookie  # the idle timeout


def test_a_signed_out_or_reset_session_cannot_be_replayed(world: World) -> None:
    app = world.app()
    ivan = sign_in(app, "ivan")
    copy = client(app)
    copy.cookies.set(COOKIE, ivan.cookies[COOKIE], **JAR)
    assert (
        ivan.post("/logout", data={"csrf_token": ivan.headers["X-CSRF-Token"]}).status_code == 303
    )
    assert copy.get("/api/v1/users/me").status_code == 401

    april = sign_in(app, "april")
    with Workspace(world.settings).sessions() as session:
        admin = users.get_user(session, ADMIN)
        users.reset_password(session, admin, "april", password_of("april"))  # a new hash
        session.commit()
    assert april.get("/api/v1/users/me").status_code == 401


def test_security_headers_on_every_kind_of_response(world: World) -> None:
    app = world.app(WebConfig(upload=DecodeLimits(max_bytes=1000)))
    ivan = sign_in(app, "ivan")
    answers = [
        client(app).get("/login"),
        client(app).get("/"),
        client(app).get("/api/v1/users/me"),
        ivan.get("/api/v1/ledger"),
        ivan.get("/api/v1/searches/99999"),
        ivan.get("/nowhere"),
        ivan.get("/static/app.css"),
        ivan.get("/api/v1/openapi.json"),
        ivan.post("/api/v1/searches", content=b"x" * 2_000_000, headers={"content-type": "x/y"}),
    ]
    assert {a.status_code for a in answers} >= {200, 303, 401, 403, 404, 413}
    for answer in answers:
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy and "default-src 'self'" in policy
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"


def test_the_html_report_is_served_with_no_script_allowed(world: World) -> None:
    audrey = sign_in(world.app(), "audrey")
    period = {"start": "2020-01-01", "end": "2030-01-01", "format": "html"}
    report = audrey.get("/api/v1/reports/oversight", params=period)
    assert report.status_code == 200 and "<html" in report.text
    policy = report.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script" not in policy
    assert "frame-ancestors 'none'" in policy


def test_login_lock_out_then_the_address_rate_limit(world: World) -> None:
    browser = client(world.app())
    for _ in range(5):
        assert login(browser, "iris", "a-wrong-password").status_code == 401
    locked = login(browser, OTHER, password_of(OTHER))
    assert locked.status_code == 401 and "locked" in locked.text
    statuses = [login(browser, f"nobody{n}", "wrong-password-1").status_code for n in range(6)]
    assert statuses[:4] == [401] * 4 and statuses[-1] == 429
    outcomes = [e["payload"]["outcome"] for e in entries(_sessions(world), "auth.login")]
    assert outcomes[-10:] == ["failed"] * 5 + ["locked"] + ["failed"] * 4  # 429s never ask
    with Workspace(world.settings).sessions() as session:  # let iris in again
        users.reset_password(session, users.get_user(session, ADMIN), OTHER, password_of(OTHER))
        session.commit()


def _sessions(world: World):  # type: ignore[no-untyped-def]
    return Workspace(world.settings).sessions


def test_searches_and_bad_tokens_are_rate_limited(world: World) -> None:
    app = world.app(WebConfig(search_rate=Bucket(burst=2, per_minute=1)))
    ivan = sign_in(app, "ivan")
    files = {"photo": ("x.jpg", b"not an image", "image/jpeg")}
    data = {**WHY, "collection": "open"}
    statuses = [ivan.post("/api/v1/searches", files=files, data=data).status_code for _ in range(3)]
    assert statuses == [415, 415, 429]
    limited = ivan.post("/api/v1/searches", files=files, data=data)
    assert limited.json()["error"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1

    guesser = client(app)
    guesser.headers["Authorization"] = "Bearer flt_guess"
    statuses = [guesser.get("/api/v1/users/me").status_code for _ in range(11)]
    assert statuses == [401] * 10 + [429]


def test_each_hostile_upload_gets_a_clean_4xx_and_is_ledgered(world: World, tmp_path: Path) -> None:
    app = world.app(WebConfig(upload=DecodeLimits(max_bytes=200_000)))
    ivan = sign_in(app, "ivan")
    expected = write_hostile_files(tmp_path)
    for name, reason in expected.items():
        files = {"photo": (name, (tmp_path / name).read_bytes(), "image/jpeg")}
        answer = ivan.post("/api/v1/searches", files=files, data={**WHY, "collection": "open"})
        assert answer.status_code in (415, 422), (name, answer.status_code, answer.text)
        body = answer.json()
        assert body["error"] == body["refusal_code"] == "bad_image", name
        assert body["status"] == "refused" and body["request_id"], name
        if reason in ("empty", "not_an_image"):
            assert answer.status_code == 415, name
    too_big = {"photo": ("big.jpg", b"\xff\xd8\xff" + b"0" * 200_000, "image/jpeg")}
    answer = ivan.post("/api/v1/searches", files=too_big, data={**WHY, "collection": "open"})
    assert (answer.status_code, answer.json()["error"]) == (413, "too_many_bytes")
    refused = [e for e in entries(_sessions(world), "search.refused") if e["actor"] == "ivan"]
    assert sum(e["payload"]["code"] == "bad_image" for e in refused) >= len(expected)


def test_an_endless_body_is_cut_off_with_413(world: World) -> None:
    app = world.app(WebConfig(upload=DecodeLimits(max_bytes=1000)))
    ivan = sign_in(app, "ivan")

    def chunks() -> Iterator[bytes]:
        for _ in range(5_000):
            yield b"-" * 1024

    answer = ivan.post(
        "/api/v1/searches",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert (answer.status_code, answer.json()["error"]) == (413, "too_many_bytes")


def test_ids_are_not_keys_to_another_persons_search(world: World, done: dict[str, int]) -> None:
    request, result = done["request"], done["result"]
    paths = (
        f"/api/v1/searches/{request}",
        f"/api/v1/searches/{request}/results",
        f"/api/v1/searches/{request}/probe",
        f"/api/v1/results/{result}/face",
    )
    for name in ("audrey", ADMIN):  # neither may search `open`, nor approves searches
        outsider = sign_in(world.app(), name)
        for path in paths:
            answer = outsider.get(path)
            assert (answer.status_code, answer.json()["error"]) == (403, "not_allowed"), path
        answer = outsider.post(f"/api/v1/results/{result}/review", json={"decision": "reject"})
        assert answer.status_code == 403
    refusals = entries(_sessions(world), "results.view_refused")
    assert {e["actor"] for e in refusals} >= {"audrey", ADMIN}

    # Another investigator may review (a second pair of eyes) but only what she was shown,
    # and never sees the probe nor acts for the requester.
    iris = sign_in(world.app(), OTHER)
    face = iris.get(f"/api/v1/results/{result}/face")
    assert (face.status_code, face.json()["error"]) == (409, "results_not_viewed")
    assert iris.get(f"/api/v1/searches/{request}/probe").status_code == 403
    assert iris.post(f"/api/v1/searches/{request}/run").status_code == 403
    assert iris.post(f"/api/v1/searches/{request}/evidence").status_code == 403


def test_views_of_results_and_probes_are_ledgered(world: World, done: dict[str, int]) -> None:
    april = sign_in(world.app(), "april")
    before = len(entries(_sessions(world), "results.viewed"))
    april.get(f"/api/v1/searches/{done['request']}/results")
    viewed = entries(_sessions(world), "results.viewed")
    assert len(viewed) == before + 1 and viewed[-1]["actor"] == "april"
    assert viewed[-1]["subject"] == f"search:{done['request']}"
    assert april.get(f"/api/v1/searches/{done['request']}/probe").status_code == 200
    assert entries(_sessions(world), "probe.viewed")[-1]["actor"] == "april"


@pytest.fixture
def image_server(world: World) -> Iterator[str]:
    """The gallery's folder over HTTP on 127.0.0.1 (a stand-in for a web source)."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(world.faces_dev))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_crops_come_through_the_ssrf_guard(
    world: World, done: dict[str, int], image_server: str
) -> None:
    from dataclasses import replace

    with Workspace(world.settings).sessions() as session:
        row = session.get_one(SearchResult, done["result"])
        local = Path(row.image_url.removeprefix("file://"))
        url = f"{image_server}/{local.parent.name}/{local.name}"
        session.execute(update(SearchResult).where(SearchResult.id == row.id).values(image_url=url))
        session.commit()
    ivan = sign_in(world.app(), "ivan")
    refused = ivan.get(f"/api/v1/results/{done['result']}/face")
    assert (refused.status_code, refused.json()["error"]) == (502, "source_refused")

    allowed = World(
        replace(world.settings, crawl_allowed_addresses=("127.0.0.0/8",)), world.faces_dev
    )
    fetched = sign_in(allowed.app(), "ivan").get(f"/api/v1/results/{done['result']}/face")
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/jpeg"
    assert json.dumps(dict(fetched.headers)).count("no-store") == 1
