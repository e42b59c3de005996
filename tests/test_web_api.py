"""The accountable flow over the REST API, as two people in two browsers would do it.

A search that needs approval waits; the approver sees it with its probe and approves; the
requester runs it once and gets results with their sources; both confirm a match (the
second blind to the first); the requester exports the evidence; the auditor finds every
step in a ledger that verifies. The JSON is the CLI's own (`search --json`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from tests.accounts import cli, credentials
from tests.web_helpers import World, bearer, cheap_passwords, client, make_world, sign_in


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[World]:
    with cheap_passwords():
        yield make_world(tmp_path_factory, model_dir)


def test_search_approve_run_confirm_export_and_the_ledger_shows_it(world: World) -> None:
    app = world.app()
    ivan, april, audrey = (sign_in(app, name) for name in ("ivan", "april", "audrey"))

    asked = world.search(ivan, "Colin_Powell", collection="guarded")
    assert asked.status_code == 201, asked.text
    pending = asked.json()
    assert pending["status"] == "pending" and pending["probe"]["faces"] == 1
    request_id = pending["request_id"]
    assert ivan.post(f"/api/v1/searches/{request_id}/run").json()["error"] == "awaiting_approval"

    inbox = april.get("/api/v1/searches", params={"status": "pending"}).json()["requests"]
    assert [r["request_id"] for r in inbox] == [request_id]
    assert inbox[0]["justification"] == "identify a suspect" and inbox[0]["requester"] == "ivan"
    probe = april.get(f"/api/v1/searches/{request_id}/probe")
    assert probe.status_code == 200 and probe.headers["content-type"] == "image/jpeg"
    assert probe.content == world.photo("Colin_Powell")

    decided = april.post(f"/api/v1/searches/{request_id}/approve", json={"reason": "proportionate"})
    assert decided.status_code == 200 and decided.json()["status"] == "approved"

    ran = ivan.post(f"/api/v1/searches/{request_id}/run")
    assert ran.status_code == 200, ran.text
    results = ran.json()["results"]
    assert results and all("Colin_Powell" in r["image_url"] for r in results[:2])
    assert {"result_id", "score", "page_url", "box", "captured_at"} <= set(results[0])
    again = ivan.post(f"/api/v1/searches/{request_id}/run")
    assert (again.status_code, again.json()["error"]) == (409, "approval_used")

    best = results[0]["result_id"]
    shown = ivan.get(f"/api/v1/searches/{request_id}/results").json()
    assert shown["request"]["status"] == "done" and shown["results"][0]["my_decision"] is None
    crop = ivan.get(f"/api/v1/results/{best}/face")
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    assert max(Image.open(BytesIO(crop.content)).size) <= 256
    mine = ivan.post(f"/api/v1/results/{best}/review", json={"decision": "confirm"}).json()
    assert mine["confirmed"] is False

    blind = april.get(f"/api/v1/searches/{request_id}/results").json()["results"][0]
    assert blind["my_decision"] is None and "decisions" not in blind  # blind to ivan's
    second = april.post(f"/api/v1/results/{best}/review", json={"decision": "confirm"}).json()
    assert second["confirmed"] is True
    assert {d["user"] for d in second["decisions"]} == {"ivan", "april"}

    sheet = ivan.post(f"/api/v1/searches/{request_id}/evidence").json()
    assert [m["result_id"] for m in sheet["matches"]] == [best]
    assert sheet["candidates_included"] is False and sheet["exported_by"] == "ivan"
    printable = ivan.post(f"/api/v1/searches/{request_id}/evidence", json={"format": "html"})
    assert printable.headers["content-disposition"].startswith("attachment")

    steps = audrey.get("/api/v1/ledger", params={"subject": f"search:{request_id}"}).json()
    assert [(e["action"], e["actor"]) for e in steps["entries"]] == [
        ("search.requested", "ivan"),
        ("search.pending", "ivan"),
        ("search.run_refused", "ivan"),
        ("probe.viewed", "april"),
        ("search.approved", "april"),
        ("search.run", "ivan"),
        ("search.run_refused", "ivan"),
        ("results.viewed", "ivan"),
        ("results.viewed", "april"),
        ("evidence.exported", "ivan"),
        ("evidence.exported", "ivan"),
    ]
    reviews = audrey.get("/api/v1/ledger", params={"action": "result.reviewed"}).json()
    assert [e["actor"] for e in reviews["entries"]] == ["ivan", "april"]
    assert audrey.get("/api/v1/ledger/verify").json()["ok"] is True


def test_a_search_answers_as_the_cli_does(world: World, tmp_path: Path) -> None:
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(world.photo("Serena_Williams"))
    code, stdout, _ = cli(
        world.settings,
        "search",
        str(probe),
        "-c",
        "open",
        "--purpose",
        "investigation",
        "--case",
        "CASE-7",
        "--justification",
        "identify a suspect",
        "--json",
        **credentials("ivan"),
    )
    assert code == 0, stdout
    by_cli = json.loads(stdout)
    ivan = sign_in(world.app(), "ivan")
    api = world.search(ivan, "Serena_Williams").json()
    assert set(api) == set(by_cli) == {"request_id", "status", "results", "probe"}
    assert api["request_id"] == by_cli["request_id"] + 1
    assert set(api["results"][0]) == set(by_cli["results"][0])
    assert [r["face_id"] for r in api["results"]] == [r["face_id"] for r in by_cli["results"]]
    assert api["probe"] == by_cli["probe"]

    code, stdout, _ = cli(
        world.settings, "search", str(probe), "-c", "open", "--json", **credentials("ivan")
    )
    refused = world.search(ivan, "Serena_Williams", purpose="")
    assert (code, refused.status_code) == (3, 422)
    body, by_cli = refused.json(), json.loads(stdout)
    assert set(body) == set(by_cli) | {"error", "message"}
    assert body["refusal_code"] == by_cli["refusal_code"] == body["error"] == "missing_purpose"


def test_api_tokens_act_as_their_owner_without_a_session(world: World) -> None:
    api = client(world.app())
    api.headers.update(bearer(world.settings, "ivan"))
    assert api.get("/api/v1/users/me").json()["name"] == "ivan"
    asked = world.search(api, "George_W_Bush")
    assert asked.status_code == 201 and asked.json()["status"] == "done"
    assert "set-cookie" not in asked.headers
