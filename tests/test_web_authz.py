"""Every route, as every role and as nobody, against a table of who may do what.

The routes come from the app itself (its OpenAPI schema, and its route list for what the
schema leaves out: the schema itself, /static), so a route added without a row here fails
`test_every_route_has_a_row`. Each call uses real objects: a search ivan (investigator)
ran in `open`, its best result confirmed by ivan and april (approver), ids in the URLs
being those of these objects. Bodies are chosen so that a call changes nothing: a decision
on a request that is no longer pending, a collection change of nothing, a non-image photo.
API routes are called twice, with the session cookie (and its CSRF token) and with a
bearer token; anonymous API calls must get 401 JSON, wrong roles 403 JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from tests.web_helpers import (
    AS_ROLE,
    World,
    bearer,
    cheap_passwords,
    client,
    make_world,
    sign_in,
)

ADM, INV, APR, AUD = "admin", "investigator", "approver", "auditor"
ROLES = (ADM, INV, APR, AUD)
NOT_AN_IMAGE = {"photo": ("notes.jpg", b"not a photo at all", "image/jpeg")}


def everyone(status: int, anonymous: int = 401) -> dict[str | None, int]:
    return {None: anonymous, **dict.fromkeys(ROLES, status)}


def only(allowed: dict[str, int], anonymous: int = 401) -> dict[str | None, int]:
    """The statuses of the roles named; every other role is refused with 403."""
    return {None: anonymous, **{role: allowed.get(role, 403) for role in ROLES}}


SEARCH = "/api/v1/searches/{request_id}"
RESULT = "/api/v1/results/{result_id}"
# (method, path) -> expected status by role (None: anonymous).
TABLE: dict[tuple[str, str], dict[str | None, int]] = {
    ("GET", "/api/v1/openapi.json"): everyone(200, anonymous=200),
    ("GET", "/static/app.css"): everyone(200, anonymous=200),
    ("GET", "/login"): everyone(200, anonymous=200),
    ("POST", "/login"): everyone(401, anonymous=401),  # a wrong password, as anyone
    ("GET", "/"): everyone(200, anonymous=303),
    ("POST", "/logout"): everyone(303, anonymous=303),
    ("GET", "/api/v1/users/me"): everyone(200),
    ("GET", "/api/v1/users"): only({ADM: 200, AUD: 200}),
    ("POST", "/api/v1/searches"): only({INV: 415}),  # the policy names investigators only
    ("GET", "/api/v1/searches"): everyone(200),
    ("GET", SEARCH): only({INV: 200, APR: 200}),
    ("GET", SEARCH + "/results"): only({INV: 200, APR: 200}),
    ("GET", SEARCH + "/probe"): only({INV: 200, APR: 200}),
    ("POST", SEARCH + "/approve"): only({APR: 409}),  # not pending any more
    ("POST", SEARCH + "/deny"): only({APR: 409}),
    ("POST", SEARCH + "/run"): only({INV: 409}),  # the requester; the approval is used
    ("POST", SEARCH + "/authorise"): only({ADM: 409, APR: 409}),  # none outstanding
    ("POST", SEARCH + "/evidence"): only({INV: 200, APR: 200}),
    ("POST", RESULT + "/review"): only({INV: 409, APR: 409}),  # both decided already
    ("GET", RESULT + "/face"): only({INV: 200, APR: 200}),
    ("GET", "/api/v1/collections"): everyone(200),
    ("POST", "/api/v1/collections"): only({ADM: 422}),  # an invalid policy
    ("GET", "/api/v1/collections/{name}"): everyone(200),
    ("PATCH", "/api/v1/collections/{name}"): only({ADM: 200}),  # no change
    ("GET", "/api/v1/ledger"): only({ADM: 200, AUD: 200}),
    ("GET", "/api/v1/ledger/verify"): everyone(200),
    ("POST", "/api/v1/ledger/export"): only({ADM: 200, AUD: 200}),
    ("GET", "/api/v1/reports/oversight"): only({ADM: 200, AUD: 200}),
    ("POST", "/api/v1/reports/subject"): only({ADM: 415, AUD: 415}),
    ("GET", "/api/v1/optouts"): only({ADM: 200, AUD: 200}),
    ("POST", "/api/v1/optouts"): only({ADM: 415}),
    ("POST", "/api/v1/optouts/{optout_id}/remove"): only({ADM: 404}),  # there is none
    # Pages (anonymous: the login form). A refusal of what was sent goes back to the page
    # (303); the held-photo routes answer 404 when no photo is held.
    ("GET", "/search"): only({INV: 200}, anonymous=303),  # as collection policies allow
    ("POST", "/search"): only({INV: 303}, anonymous=303),  # no photo held: back to the form
    ("POST", "/search/photo"): only({INV: 303}, anonymous=303),  # not an image: back
    ("GET", "/search/photo"): only({INV: 404}, anonymous=303),
    ("GET", "/search/photo/faces/{number}"): only({INV: 404}, anonymous=303),
    ("POST", "/search/photo/discard"): only({INV: 303}, anonymous=303),
    ("GET", "/requests"): everyone(200, anonymous=303),
    ("GET", "/requests/{request_id}"): only({INV: 200, APR: 200}, anonymous=303),
    ("POST", "/requests/{request_id}/run"): only({INV: 303}, anonymous=303),  # used: back
    ("POST", "/requests/{request_id}/results/{result_id}/review"): only(
        {INV: 303, APR: 303}, anonymous=303
    ),  # decided already: back
    ("POST", "/requests/{request_id}/evidence"): only({INV: 200, APR: 200}, anonymous=303),
    ("POST", "/requests/{request_id}/authorisation"): only(
        {ADM: 303, APR: 303}, anonymous=303
    ),  # none outstanding: back
    ("GET", "/approvals"): only({APR: 200}, anonymous=303),
    ("POST", "/approvals/{request_id}"): only({APR: 303}, anonymous=303),  # not pending
    ("GET", "/collections"): everyone(200, anonymous=303),
    ("POST", "/collections"): only({ADM: 303}, anonymous=303),  # an invalid policy: back
    ("GET", "/collections/{name}"): only({ADM: 200}, anonymous=303),
    ("POST", "/collections/{name}"): only({ADM: 303}, anonymous=303),  # no change
    ("GET", "/crawls"): only({ADM: 200, AUD: 200}, anonymous=303),
    ("POST", "/crawls"): only({ADM: 303}, anonymous=303),  # no case reference: back
    ("POST", "/crawls/{job_id}/resume"): only({ADM: 404}, anonymous=303),  # there is none
    ("GET", "/ledger"): only({ADM: 200, AUD: 200}, anonymous=303),
    ("GET", "/ledger/verify"): everyone(200, anonymous=303),
    ("GET", "/reports"): only({ADM: 200, AUD: 200}, anonymous=303),
    ("GET", "/reports/subject"): only({ADM: 200, AUD: 200}, anonymous=303),
    ("POST", "/reports/subject"): only({ADM: 303, AUD: 303}, anonymous=303),
    ("POST", "/reports/subject/photo"): only({ADM: 303, AUD: 303}, anonymous=303),
    ("GET", "/reports/subject/photo"): only({ADM: 404, AUD: 404}, anonymous=303),
    ("GET", "/reports/subject/photo/faces/{number}"): only({ADM: 404, AUD: 404}, anonymous=303),
    ("POST", "/reports/subject/photo/discard"): only({ADM: 303, AUD: 303}, anonymous=303),
    ("GET", "/optouts"): only({ADM: 200, AUD: 200}, anonymous=303),
    ("POST", "/optouts"): only({ADM: 303}, anonymous=303),
    ("POST", "/optouts/photo"): only({ADM: 303}, anonymous=303),
    ("GET", "/optouts/photo"): only({ADM: 404}, anonymous=303),
    ("GET", "/optouts/photo/faces/{number}"): only({ADM: 404}, anonymous=303),
    ("POST", "/optouts/photo/discard"): only({ADM: 303}, anonymous=303),
    ("POST", "/optouts/{optout_id}/remove"): only({ADM: 404}, anonymous=303),
}

# What each call sends (besides credentials).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/login"): {"data": {"username": "nobody", "password": "wrong-password-1"}},
    ("POST", "/api/v1/searches"): {
        "files": NOT_AN_IMAGE,
        "data": {"collection": "open", "purpose": "investigation", "case": "C-1"},
    },
    ("POST", SEARCH + "/approve"): {"json": {"reason": "fine"}},
    ("POST", SEARCH + "/deny"): {"json": {"reason": "no"}},
    ("POST", SEARCH + "/authorise"): {"json": {"granted": True, "reference": "W-1"}},
    ("POST", RESULT + "/review"): {"json": {"decision": "confirm"}},
    ("POST", "/api/v1/collections"): {
        "json": {"name": "new", "legal_basis": "test", "policy": {"result_limit": 0}}
    },
    ("PATCH", "/api/v1/collections/{name}"): {"json": {}},
    ("GET", "/api/v1/reports/oversight"): {"params": {"start": "2020-01-01", "end": "2030-01-01"}},
    ("POST", "/api/v1/reports/subject"): {"files": NOT_AN_IMAGE},
    ("POST", "/api/v1/optouts"): {"files": NOT_AN_IMAGE},
    ("POST", "/api/v1/optouts/{optout_id}/remove"): {"json": {"reason": "lifted"}},
    ("POST", "/search"): {
        "data": {
            "collection": "open",
            "purpose": "investigation",
            "case": "C-1",
            "face": "1",
            "justification": "test",
        }
    },
    ("POST", "/search/photo"): {"files": NOT_AN_IMAGE},
    ("POST", "/requests/{request_id}/results/{result_id}/review"): {
        "data": {"decision": "confirm"}
    },
    ("POST", "/requests/{request_id}/authorisation"): {
        "data": {"granted": "true", "reference": "W"}
    },
    ("POST", "/approvals/{request_id}"): {"data": {"decision": "approve", "reason": "fine"}},
    ("POST", "/collections"): {
        "data": {
            "name": "new",
            "legal_basis": "test",
            "search_roles": "investigator",
            "result_limit": "0",
        }
    },
    ("POST", "/collections/{name}"): {
        "data": {
            "legal_basis": "test fixture",
            "search_roles": "investigator",
            "honour_optouts": "on",
            "result_limit": "20",
        }
    },
    ("POST", "/crawls"): {
        "data": {
            "collection": "open",
            "legal_basis": "test",
            "case": " ",
            "seeds": "https://example.org/",
        }
    },
    ("POST", "/reports/subject/photo"): {"files": NOT_AN_IMAGE},
    ("POST", "/optouts/photo"): {"files": NOT_AN_IMAGE},
    ("POST", "/optouts/{optout_id}/remove"): {"data": {"reason": "lifted"}},
}
# Page forms carry the CSRF token as a field; they are posted from a page of the site.
FORMS = {("POST", "/login"), ("POST", "/logout")}


@dataclass
class Setting:
    world: World
    app: FastAPI
    ids: dict[str, str]


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Setting]:
    with cheap_passwords():
        world = make_world(tmp_path_factory, model_dir)
        app = world.app()
        ivan, april = sign_in(app, "ivan"), sign_in(app, "april")
        done = world.search(ivan, "Colin_Powell").json()
        request_id, result_id = done["request_id"], done["results"][0]["result_id"]
        april.get(f"/api/v1/searches/{request_id}/results")
        for person in (ivan, april):
            person.post(f"/api/v1/results/{result_id}/review", json={"decision": "confirm"})
        ids = {
            "request_id": str(request_id),
            "result_id": str(result_id),
            "name": "open",
            "optout_id": "999",
            "job_id": "999",
            "number": "1",
        }
        yield Setting(world, app, ids)


def routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves: the schema's, and the routes it leaves out."""
    found = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    for route in app.routes:
        if isinstance(route, Route) and not route.include_in_schema:
            found |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
        elif isinstance(route, Mount):
            found.add(("GET", f"{route.path}/app.css"))
    return found


def test_every_route_has_a_row(setting: Setting) -> None:
    served = routes(setting.app)
    assert served - set(TABLE) == set(), "routes without a row in TABLE: add their permissions"
    assert set(TABLE) - served == set(), "rows for routes that do not exist"


def _call(browser: TestClient, method: str, path: str, ids: dict[str, str]) -> Any:
    kwargs = dict(BODIES.get((method, path), {}))
    if (method, path) in FORMS:
        token = browser.headers.get("X-CSRF-Token") or _visitor_token(browser)
        kwargs["data"] = {**kwargs.get("data", {}), "csrf_token": token}
    return browser.request(method, path.format(**ids), **kwargs)


def _visitor_token(browser: TestClient) -> str:
    from tests.web_helpers import csrf_in

    return csrf_in(browser.get("/login").text)


def _check(answer: Any, method: str, path: str, who: str | None, expected: int) -> None:
    label = f"{method} {path} as {who or 'anonymous'}"
    assert answer.status_code == expected, f"{label}: {answer.status_code} {answer.text[:300]}"
    if path.startswith("/api/v1/") and expected in (401, 403):
        body = answer.json()
        code = {401: "authentication_required", 403: "permission_denied"}[expected]
        assert body["error"] in (code, "not_allowed", "role_not_allowed", "not_requester"), label
    if expected == 303 and who is None:
        assert answer.headers["location"].startswith("/login"), label


@pytest.mark.parametrize("who", [None, *ROLES])
def test_each_route_answers_each_role_as_the_table_says(setting: Setting, who: str | None) -> None:
    app = setting.world.app()  # its own rate limits: a login per role, not per route
    browser = client(app) if who is None else sign_in(app, AS_ROLE[who])
    for method, path in sorted(TABLE, key=lambda route: route == ("POST", "/logout")):
        answer = _call(browser, method, path, setting.ids)
        _check(answer, method, path, who, TABLE[(method, path)][who])


@pytest.mark.parametrize("who", ROLES)
def test_api_routes_answer_tokens_as_they_answer_sessions(setting: Setting, who: str) -> None:
    browser = client(setting.app)
    browser.headers.update(bearer(setting.world.settings, AS_ROLE[who]))
    for method, path in sorted(TABLE):
        if path.startswith("/api/v1/") and path != "/api/v1/openapi.json":
            _check(
                _call(browser, method, path, setting.ids),
                method,
                path,
                who,
                TABLE[(method, path)][who],
            )
