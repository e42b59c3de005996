"""Watch end to end on real faces, a real test site, a real SMTP server and a real webhook.

One enrolled person (Colin Powell, enrolled from one photo) appears in two other photos on
the test site; three other adults and a child appear on the others. A watch run through the
CLI must alert on exactly the two, deliver by e-mail and webhook (one webhook failing, then
retried), keep nothing of anyone else (no face or image rows, no embeddings, no crawl
folder, no image bytes), and produce takedown letters that carry the evidence.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import LargeBinary, func, select
from warcio.archiveiterator import ArchiveIterator

from faceledger.config import Settings
from faceledger.errors import EXIT_AUTH, EXIT_CHOOSE_FACE, EXIT_NOT_FOUND, EXIT_REFUSED
from faceledger.store.models import Base, Face, SourceImage, WatchSubject
from faceledger.watch.delivery import Target
from faceledger.watch.scan import best_matches
from faceledger.workspace import Workspace
from tests.accounts import AUD_PW, INV_PW, as_admin, cli, entries, initialise
from tests.faces import photos
from tests.site import HOST_B, TestSite

PERSON = "Colin_Powell"  # enrolled, with consent
OTHERS = {  # site path -> someone else (none scores near Colin Powell's template)
    "/img/b-large.jpg": "George_W_Bush",
    "/img/pic.jpg": "Gerhard_Schroeder",
    "/img/cdn.jpg": "Donald_Rumsfeld",  # on the second host
}
CHILD = "6_0_0_20170110224301470.jpg"  # ages/: a 6-year-old, served as page one's og:image
BASIS = "written consent of 2026-11-20, held by the support service"
RUN_SECONDS = 120.0
INVESTIGATOR = {"FACELEDGER_USER": "ivan", "FACELEDGER_PASSWORD": INV_PW}
AUDITOR = {"FACELEDGER_USER": "audrey", "FACELEDGER_PASSWORD": AUD_PW}


class _Mailbox:
    """aiosmtpd handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"


class _Hooks(BaseHTTPRequestHandler):
    """A webhook receiver: /hook always accepts, /flaky fails while `failing` is set."""

    received: ClassVar[dict[str, list[dict[str, Any]]]]
    failing: ClassVar[threading.Event]

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.setdefault(self.path, []).append(body)
        status = 500 if self.path == "/flaky" and self.failing.is_set() else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def mailbox() -> Iterator[tuple[_Mailbox, int]]:
    with socket.socket() as probe:  # aiosmtpd 1.4 needs a known port, not 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = _Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def hooks() -> Iterator[tuple[type[_Hooks], str]]:
    handler = type("Hooks", (_Hooks,), {"received": {}, "failing": threading.Event()})
    handler.failing.set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def bounded_cli(settings: Settings, *args: str, **env: str) -> tuple[int, str, str]:
    """`cli` in a daemon thread, failing the test (not hanging it) past RUN_SECONDS."""
    answer: list[tuple[int, str, str]] = []
    thread = threading.Thread(target=lambda: answer.append(cli(settings, *args, **env)))
    thread.daemon = True
    thread.start()
    thread.join(RUN_SECONDS)
    assert answer, f"faceledger {' '.join(args)} did not finish in {RUN_SECONDS} s"
    return answer[0]


def blobs(settings: Settings) -> list[bytes]:
    """Every binary value in every table: where an embedding would have to be."""
    found: list[bytes] = []
    with Workspace(settings).sessions() as session:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if isinstance(column.type, LargeBinary):
                    found += [v for v in session.scalars(select(column)) if v is not None]
    return found


def stored_bytes(folder: Path) -> Iterator[bytes]:
    """Every file under `folder`, gzip members decompressed (WARC files are gzipped)."""
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            yield gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def evidence_records(path: Path) -> dict[str, tuple[str, str | None, bytes]]:
    """Response records of an evidence WARC: target URI -> (record id, digest, payload)."""
    records = {}
    with path.open("rb") as raw:
        for record in ArchiveIterator(raw):
            if record.rec_type == "response":
                headers = record.rec_headers
                records[headers.get_header("WARC-Target-URI")] = (
                    headers.get_header("WARC-Record-ID"),
                    headers.get_header("WARC-Payload-Digest"),
                    record.content_stream().read(),
                )
    return records


def test_best_matches_keeps_only_faces_at_the_threshold() -> None:
    templates = np.eye(3, 128, dtype=np.float32)
    faces = np.zeros((3, 128), dtype=np.float32)
    faces[0, 1] = 1.0  # exactly template 1
    faces[1, :2] = [0.6, 0.8]  # closer to template 1 (0.8) than 0 (0.6): below 0.9
    faces[2, 2] = 0.95
    assert best_matches(templates, faces, 0.9) == [(0, 1, 1.0), (2, 2, pytest.approx(0.95))]
    assert best_matches(templates[:0], faces, 0.9) == []


def test_watch_finds_the_enrolled_person_and_keeps_nothing_of_anyone_else(
    settings: Settings,
    faces_dev: Path,
    shared_data: Path,
    mailbox: tuple[_Mailbox, int],
    hooks: tuple[type[_Hooks], str],
    tmp_path: Path,
) -> None:
    initialise(settings, "ivan", "audrey")
    enrolment, *seen = photos(faces_dev, PERSON)[:3]
    models = {"FACELEDGER_MODEL_DIR": str(settings.model_cache_dir), "FACELEDGER_WORKERS": "1"}
    code, stdout, stderr = cli(
        settings,
        "watch",
        "add",
        str(enrolment),
        "--name",
        "client 7",
        "--basis",
        BASIS,
        "--json",
        **as_admin(),
        **models,
    )
    assert code == 0, stderr
    subject_id = json.loads(stdout)["id"]

    box, smtp_port = mailbox
    receiver, hook_base = hooks
    others = {path: photos(faces_dev, person)[0].read_bytes() for path, person in OTHERS.items()}
    others["/img/og.png"] = (shared_data / "ages" / CHILD).read_bytes()
    mine = {"/img/a.jpg": seen[0].read_bytes(), "/img/final.jpg": seen[1].read_bytes()}
    env = {
        **models,
        "FACELEDGER_CRAWL_PER_HOST_DELAY": "0",
        "FACELEDGER_ALERT_WEBHOOKS": f"{hook_base}/hook,{hook_base}/flaky",
        "FACELEDGER_ALERT_EMAILS": "client7@example.org",
        "FACELEDGER_SMTP_HOST": "127.0.0.1",
        "FACELEDGER_SMTP_PORT": str(smtp_port),
    }
    with TestSite(images={**mine, **others}) as site:
        seeds = [site.url("/page1"), site.url("/page2"), site.url("/redirect/1")]
        scope = ["--max-depth", "0", "--max-pages", "10", "--allow-address", "127.0.0.0/8"]
        code, _, stderr = bounded_cli(
            settings, "watch", "run", *seeds, *scope, "--json", **INVESTIGATOR, **env
        )
        assert code == EXIT_AUTH, stderr
        assert site.paths() == {}  # refused before anything was fetched
        code, stdout, stderr = bounded_cli(
            settings,
            "watch",
            "run",
            *seeds,
            *scope,
            "--every",
            "0",
            "--times",
            "2",
            "--json",
            **as_admin(),
            **env,
        )
        assert code == 0, stderr
        first, second = (json.loads(line) for line in stdout.splitlines())
        page, image = site.url, site.url
        expected = {
            (page("/page2"), image("/img/a.jpg")),
            (page("/final"), image("/img/final.jpg")),
        }
        cdn = site.url("/img/cdn.jpg", HOST_B)
        assert site.hits("/img/cdn.jpg", HOST_B) == 2  # the other people were crawled, twice

    # Exactly the enrolled person's two captures, once; the child was never compared.
    assert first["alerts"] == 2 and first["repeats"] == 0
    assert first["faces_seen"] == 6 and first["minor_faces"] == 1 and first["images"] == 6
    assert first["deliveries"] == {"sent": 4, "failed": 2}
    assert second["alerts"] == 0 and second["repeats"] == 2 and second["run"] != first["run"]
    assert "deliveries failed" in stderr
    code, stdout, _ = cli(settings, "watch", "alerts", "--json", **AUDITOR)
    alerts = json.loads(stdout)["alerts"]
    assert {(a["page_url"], a["image_url"]) for a in alerts} == expected
    assert all(
        a["subject"] == subject_id and a["score"] >= settings.watch_threshold for a in alerts
    )
    flaky = Target("webhook", f"{hook_base}/flaky").key
    for alert in alerts:
        assert {d["status"] for k, d in alert["deliveries"].items() if k != flaky} == {"sent"}
        assert alert["deliveries"][flaky]["status"] == "failed"
        assert "500" in alert["deliveries"][flaky]["error"]

    # Delivered: e-mail and webhook carry the page and image URLs.
    assert len(box.messages) == 2 and len(receiver.received["/hook"]) == 2
    for alert in alerts:
        assert any(
            alert["page_url"] in m and alert["image_url"] in m and "client 7" in m
            for m in box.messages
        )
    sent = {(d["alert"]["page_url"], d["alert"]["image_url"]) for d in receiver.received["/hook"]}
    assert sent == expected
    assert all(d["event"] == "watch.alert" for d in receiver.received["/hook"])

    # The failed webhook, retried once it is back, is delivered and recorded as sent.
    receiver.failing.clear()
    code, stdout, stderr = cli(settings, "watch", "deliver", "--json", **as_admin(), **env)
    assert code == 0, stderr
    assert json.loads(stdout)["deliveries"] == {"sent": 2, "failed": 0}
    _, stdout, _ = cli(settings, "watch", "alerts", "--json", **as_admin())
    for alert in json.loads(stdout)["alerts"]:
        assert {d["status"] for d in alert["deliveries"].values()} == {"sent"}

    # Nothing of anyone else: no faces, no images, no embeddings, no crawl, no bytes.
    workspace = Workspace(settings)
    with workspace.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Face)) == 0
        assert session.scalar(select(func.count()).select_from(SourceImage)) == 0
        template = session.scalars(select(WatchSubject.template)).one()
    assert blobs(settings) == [template]
    assert not any(settings.index_dir.glob("*"))
    assert not any((settings.data_dir / "watch" / "jobs").glob("run-*"))
    for data in stored_bytes(settings.data_dir):
        assert not any(other in data for other in others.values())
    for payload in (json.dumps(e["payload"]) for e in entries(workspace.sessions)):
        assert not any(path in payload for path in [*others, cdn])

    # Evidence: each alert's capture, byte for byte, citing what the alert cites.
    for alert in alerts:
        records = evidence_records(Path(alert["evidence_file"]))
        record_id, digest, payload = records[alert["image_url"]]
        assert (record_id, digest) == (alert["warc_record_id"], alert["warc_digest"])
        assert payload in mine.values()
        assert alert["page_url"] in records

    # Takedown letters carry the evidence; producing one is ledgered.
    alert = next(a for a in alerts if a["image_url"].endswith("/img/final.jpg"))
    for kind in ("gdpr", "dmca"):
        letter = tmp_path / f"{kind}.txt"
        args = ("watch", "takedown", str(alert["id"]), "--out", str(letter), "--kind", kind)
        code, _, stderr = cli(settings, *args, "--sender", "C. Client", **as_admin())
        assert code == 0, stderr
        text = letter.read_text()
        for value in ("page_url", "image_url", "captured_at", "warc_digest", "warc_record_id"):
            assert alert[value] in text
        assert "C. Client" in text and "&amp;" not in text
    assert "Article 17" in (tmp_path / "gdpr.txt").read_text()
    assert "512(c)(3)" in (tmp_path / "dmca.txt").read_text()
    code, _, _ = cli(settings, "watch", "takedown", "999", "--out", str(letter), **as_admin())
    assert code == EXIT_NOT_FOUND
    code, _, _ = cli(settings, *args, **INVESTIGATOR)
    assert code == EXIT_AUTH

    # The ledger tells the story and verifies.
    actions = [e["action"] for e in entries(workspace.sessions) if e["action"].startswith("watch")]
    assert actions == [
        "watch.enrolled",
        "watch.refused",
        "watch.run",
        "watch.alert",
        "watch.alert",
        "watch.finished",
        "watch.run",
        "watch.finished",
        "watch.takedown",
        "watch.takedown",
    ]
    refused = entries(workspace.sessions, "watch.refused")[0]
    assert refused["actor"] == "ivan" and refused["payload"]["code"] == "permission_denied"
    (declared, _) = (e["payload"] for e in entries(workspace.sessions, "watch.run"))
    assert declared["subjects"] == [{"id": subject_id, "label": "client 7", "basis": BASIS}]
    assert declared["scope"]["seeds"] == seeds and declared["scope"]["max_depth"] == 0
    finished = entries(workspace.sessions, "watch.finished")[0]["payload"]
    assert finished["faces_seen"] == 6 and finished["alerts"] == 2
    code, _, stderr = cli(settings, "ledger", "verify")
    assert code == 0, stderr


def test_enrolment_refuses_minors_non_admins_and_group_photos(
    settings: Settings, faces_dev: Path, shared_data: Path
) -> None:
    initialise(settings, "ivan", "audrey")
    models = {"FACELEDGER_MODEL_DIR": str(settings.model_cache_dir)}
    adult = photos(faces_dev, PERSON)[0]
    child = shared_data / "ages" / CHILD
    add = ("watch", "add", "--name", "someone", "--basis", "consent", "--json")

    code, stdout, _ = cli(settings, *add, str(child), **as_admin(), **models)
    assert code == EXIT_REFUSED and json.loads(stdout)["error"] == "minor"
    code, _, _ = cli(settings, *add, str(adult), **INVESTIGATOR, **models)
    assert code == EXIT_AUTH
    group = shared_data / "groups" / "deepface_couple.jpg"
    code, stdout, _ = cli(settings, *add, str(group), **as_admin(), **models)
    assert code == EXIT_CHOOSE_FACE and len(json.loads(stdout)["faces"]) >= 2
    code, stdout, _ = cli(settings, "watch", "run", "http://127.0.0.1:9/", "--json", **as_admin())
    assert code == EXIT_REFUSED and "nobody is enrolled" in json.loads(stdout)["message"]

    workspace = Workspace(settings)
    with workspace.sessions() as session:
        assert session.scalar(select(func.count()).select_from(WatchSubject)) == 0
    refusals = [e["payload"] for e in entries(workspace.sessions, "watch.refused")]
    assert [(r["attempt"], r["code"]) for r in refusals] == [
        ("enrol", "minor"),
        ("enrol", "permission_denied"),
    ]
    assert all("someone" not in json.dumps(r) for r in refusals)  # no label of a child

    code, stdout, _ = cli(settings, *add, str(adult), **as_admin(), **models)
    assert code == 0
    subject_id = json.loads(stdout)["id"]
    remove = ("watch", "remove", str(subject_id), "--reason", "consent withdrawn")
    assert cli(settings, *remove, **INVESTIGATOR)[0] == EXIT_AUTH
    assert (
        cli(settings, "watch", "remove", "99", "--reason", "x", **as_admin())[0] == EXIT_NOT_FOUND
    )
    assert cli(settings, *remove, **as_admin())[0] == 0
    assert cli(settings, *remove, **as_admin())[0] == EXIT_REFUSED  # already removed
    code, stdout, _ = cli(settings, "watch", "list", "--json", **AUDITOR)
    (listed,) = json.loads(stdout)["subjects"]
    assert listed["removal_reason"] == "consent withdrawn" and "template" not in listed
    assert blobs(settings) == []  # the template is erased with the consent
    assert cli(settings, "watch", "list", **INVESTIGATOR)[0] == EXIT_AUTH
    assert cli(settings, "ledger", "verify")[0] == 0
