"""The ledger against an attacker with raw SQL access: every edit must be caught and named.

Tampering goes through a separate engine with plain SQL (and SQLite's foreign keys off,
as an attacker would have them), never through the ORM the application uses.
"""

from __future__ import annotations

import ast
import json
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, create_engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from faceledger.cli import app
from faceledger.config import Settings
from faceledger.errors import EXIT_AUTH, EXIT_REFUSED
from faceledger.ledger import chain, keys, standalone_verify
from faceledger.ledger.checkpoints import ChainBroken, checkpoint, maybe_checkpoint, statement
from faceledger.ledger.export import export_bundle
from faceledger.ledger.log import append, erase_payload
from faceledger.ledger.verify import VerifyReport, verify
from faceledger.store.models import LedgerEntry, LedgerPayload
from faceledger.workspace import Workspace
from tests.accounts import NO_CREDENTIALS, credentials, entries, initialise

N = 50


def payload_for(seq: int) -> dict[str, Any]:
    return {
        "n": seq,
        "note": f"entry {seq}: café ✓",
        "score": seq / 7,
        "tags": ["a", "b"][: seq % 3],
        "nested": {"z": None, "a": True},
    }


@pytest.fixture
def sessions(settings: Settings) -> sessionmaker[Session]:
    return Workspace(settings).sessions


@pytest.fixture
def raw(settings: Settings) -> Iterator[Engine]:
    """The attacker's view: the same SQLite file, plain SQL, no foreign keys enforced."""
    engine = create_engine(settings.database)
    yield engine
    engine.dispose()


@pytest.fixture
def ledger(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    with sessions() as session:
        for seq in range(1, N + 1):
            append(
                session,
                actor=f"user{seq % 4}",
                action="test.act" if seq % 2 else "test.other",
                subject=f"subject-{seq}",
                payload=payload_for(seq),
            )
            session.commit()
    return sessions


def check(sessions: sessionmaker[Session], settings: Settings) -> VerifyReport:
    with sessions() as session:
        return verify(session, keys.existing_public_key(settings))


def sign_head(sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as session:
        assert checkpoint(session, settings) is not None
        session.commit()


def sql(raw: Engine, *statements: str, **params: Any) -> None:
    with raw.begin() as connection:
        for statement_ in statements:
            connection.execute(text(statement_), params)


def header(connection: Connection, seq: int) -> dict[str, Any]:
    row = connection.execute(text("SELECT * FROM ledger_entries WHERE seq = :s"), {"s": seq})
    return dict(row.mappings().one())


def assert_broken(report: VerifyReport, seq: int, *words: str) -> None:
    assert not report.ok
    assert report.problem_seq == seq, report.problem
    for word in words:
        assert word in (report.problem or ""), report.problem


# --- the database ---------------------------------------------------------------------------


def test_untouched_chain_verifies(ledger: sessionmaker[Session], settings: Settings) -> None:
    report = check(ledger, settings)
    assert report.ok, report.problem
    assert (report.entries, report.checkpoints, report.erased, report.head_seq) == (N, 0, 0, N)
    with ledger() as session:
        assert verify(session, None, batch=7) == report  # batch boundaries change nothing


def test_edited_actor_is_named(
    ledger: sessionmaker[Session], settings: Settings, raw: Engine
) -> None:
    sql(raw, "UPDATE ledger_entries SET actor = 'nobody' WHERE seq = 7")
    assert_broken(check(ledger, settings), 7, "entry 7:", "hash")


def test_edited_payload_is_named(
    ledger: sessionmaker[Session], settings: Settings, raw: Engine
) -> None:
    body = json.dumps({**payload_for(12), "n": 13}, sort_keys=True, separators=(",", ":"))
    sql(raw, "UPDATE ledger_payloads SET body = :b WHERE seq = 12", b=body)
    report = check(ledger, settings)
    assert report.problem == "entry 12: payload does not match its hash"


def test_payload_that_is_not_json_is_named(
    ledger: sessionmaker[Session], settings: Settings, raw: Engine
) -> None:
    sql(raw, "UPDATE ledger_payloads SET body = 'not json' WHERE seq = 3")
    assert check(ledger, settings).problem == "entry 3: payload does not match its hash"


def test_deleted_entry_is_named_as_a_gap(
    ledger: sessionmaker[Session], settings: Settings, raw: Engine
) -> None:
    sql(
        raw,
        "DELETE FROM ledger_payloads WHERE seq = 25",
        "DELETE FROM ledger_entries WHERE seq = 25",
    )
    report = check(ledger, settings)
    assert report.problem == "entry 25 missing: sequence jumps from 24 to 26"
    assert report.entries == N - 1


def test_deleted_first_entry_is_named(
    ledger: sessionmaker[Session], settings: Settings, raw: Engine
) -> None:
    sql(
        raw, "DELETE FROM ledger_payloads WHERE seq = 1", "DELETE FROM ledger_entries WHERE seq = 1"
    )
    assert check(ledger, settings).problem == "entry 1 missing: sequence starts at 2"


def test_swapped_entries_are_detected(
    ledger: sessionmaker[Session], settings: Settings, raw: Engine
) -> None:
    swap = [
        f"UPDATE {table} SET seq = {a} WHERE seq = {b}"
        for table in ("ledger_entries", "ledger_payloads")
        for a, b in ((-1, 20), (20, 21), (21, -1))
    ]
    sql(raw, *swap)
    assert_broken(check(ledger, settings), 20, "entry 20:")


def test_rehashed_entry_is_caught_at_its_successor(
    ledger: sessionmaker[Session], settings: Settings, raw: Engine
) -> None:
    with raw.begin() as connection:
        forged = {**header(connection, 10), "actor": "someone else"}
        forged["entry_hash"] = chain.entry_hash(forged)
        connection.execute(
            text(
                "UPDATE ledger_entries SET actor = :actor, entry_hash = :entry_hash WHERE seq = 10"
            ),
            forged,
        )
    report = check(ledger, settings)
    assert report.problem == "entry 11: prev_hash does not match entry 10's hash (broken link)"


def test_missing_payload_row_is_named(
    ledger: sessionmaker[Session], settings: Settings, raw: Engine
) -> None:
    sql(raw, "DELETE FROM ledger_payloads WHERE seq = 30")
    assert_broken(check(ledger, settings), 30, "payload is missing")


def test_payload_nulled_without_erasure_is_named(
    ledger: sessionmaker[Session], settings: Settings, raw: Engine
) -> None:
    sql(raw, "UPDATE ledger_payloads SET body = NULL WHERE seq = 31")
    assert_broken(check(ledger, settings), 31, "payload is missing")


def test_erased_payload_still_verifies(ledger: sessionmaker[Session], settings: Settings) -> None:
    with ledger() as session:
        erase_payload(session, 5)
        erase_payload(session, 6)
        session.commit()
    sign_head(ledger, settings)
    report = check(ledger, settings)
    assert report.ok, report.problem
    assert (report.erased, report.checkpoints, report.signed_seq) == (2, 1, N)


def test_truncated_tail_is_caught_by_the_checkpoint(
    ledger: sessionmaker[Session], settings: Settings, raw: Engine
) -> None:
    sign_head(ledger, settings)
    sql(
        raw,
        "DELETE FROM ledger_payloads WHERE seq > 40",
        "DELETE FROM ledger_entries WHERE seq > 40",
    )
    report = check(ledger, settings)
    assert (
        report.problem
        == "checkpoint 1 at entry 50: the chain has no entry 50 (it ends at entry 40)"
    )
    assert report.problem_seq == N


def test_rebuilt_tail_is_caught_by_the_checkpoint(
    ledger: sessionmaker[Session], settings: Settings, raw: Engine
) -> None:
    """Rewrite entry 45 and re-chain everything after it: only the signature can tell."""
    sign_head(ledger, settings)
    with raw.begin() as connection:
        previous = header(connection, 44)["entry_hash"]
        for seq in range(45, N + 1):
            row = header(connection, seq)
            row.update(prev_hash=previous, actor="rewritten" if seq == 45 else row["actor"])
            row["entry_hash"] = previous = chain.entry_hash(row)
            connection.execute(
                text(
                    "UPDATE ledger_entries SET actor = :actor, prev_hash = :prev_hash,"
                    " entry_hash = :entry_hash WHERE seq = :seq"
                ),
                row,
            )
    report = check(ledger, settings)
    assert (
        report.problem
        == "checkpoint 1 at entry 50: the chain's entry 50 is not the one that was signed"
    )


def test_checkpoint_signed_with_another_key_is_rejected(
    ledger: sessionmaker[Session], settings: Settings, raw: Engine
) -> None:
    sign_head(ledger, settings)
    our_key_id = keys.key_id(keys.signing_key(settings).public_key())
    with raw.begin() as connection:
        head_hash = header(connection, 30)["entry_hash"]
    intruder = Ed25519PrivateKey.generate()
    for key_id, expected in (
        (our_key_id, "checkpoint 2 at entry 30: bad signature"),
        (keys.key_id(intruder.public_key()), "checkpoint 2 at entry 30: signed by key"),
    ):
        created = "2026-01-01T00:00:00.000000+00:00"
        signature = intruder.sign(statement(30, head_hash, created, key_id)).hex()
        sql(raw, "DELETE FROM ledger_checkpoints WHERE id = 2")
        sql(
            raw,
            "INSERT INTO ledger_checkpoints (id, seq, entry_hash, created_at, key_id, signature)"
            " VALUES (2, 30, :h, :c, :k, :s)",
            h=head_hash,
            c=created,
            k=key_id,
            s=signature,
        )
        report = check(ledger, settings)
        assert report.problem is not None and report.problem.startswith(expected), report.problem


@pytest.mark.parametrize("column", ["seq", "entry_hash", "created_at", "signature"])
def test_altered_checkpoint_is_rejected(
    ledger: sessionmaker[Session], settings: Settings, raw: Engine, column: str
) -> None:
    """Point a genuine signature at another entry (or change what it says): it must not hold."""
    sign_head(ledger, settings)
    with raw.begin() as connection:
        other = header(connection, 40)["entry_hash"]
        original = connection.execute(text("SELECT signature FROM ledger_checkpoints")).scalar_one()
    values = {
        "seq": 40,
        "entry_hash": other,
        "created_at": "2030-01-01T00:00:00.000000+00:00",
        "signature": original[:-2] + ("00" if original[-2:] != "00" else "11"),
    }
    if column == "seq":
        sql(raw, "UPDATE ledger_checkpoints SET seq = 40, entry_hash = :h", h=other)
    else:
        sql(raw, f"UPDATE ledger_checkpoints SET {column} = :v", v=values[column])
    report = check(ledger, settings)
    assert report.problem is not None and "checkpoint 1 at entry" in report.problem
    assert "bad signature" in report.problem


def test_checkpoints_without_a_key_are_not_trusted(
    ledger: sessionmaker[Session], settings: Settings
) -> None:
    sign_head(ledger, settings)
    with ledger() as session:
        report = verify(session, None)
    assert_broken(report, N, "no public key")


# --- checkpoints and the key ----------------------------------------------------------------


def test_keyfile_is_private_and_never_replaced(settings: Settings) -> None:
    first = keys.signing_key(settings)
    path = keys.key_path(settings)
    assert path == settings.data_dir / "keys" / "ledger-ed25519.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = keys.signing_key(settings)
    assert keys.key_id(again.public_key()) == keys.key_id(first.public_key())
    assert len(keys.key_id(first.public_key())) == 16
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    pem = keys.public_key_pem(first.public_key())
    assert keys.key_id(keys.load_public_key(pem)) == keys.key_id(first.public_key())


def test_no_key_is_made_just_to_verify(settings: Settings) -> None:
    assert keys.existing_public_key(settings) is None
    assert not keys.key_path(settings).exists()


def test_checkpoint_is_a_noop_on_a_signed_head(
    ledger: sessionmaker[Session], settings: Settings
) -> None:
    with ledger() as session:
        first = checkpoint(session, settings)
        assert first is not None and first.seq == N
        assert checkpoint(session, settings) is None
        session.commit()
        assert session.scalar(text("SELECT count(*) FROM ledger_entries")) == N  # not an entry


def test_checkpoint_every_n(sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as session:
        for seq in range(1, 251):
            append(session, actor="svc", action="test.act", payload={"n": seq})
            maybe_checkpoint(session, settings, every=100)
            session.commit()
        seqs = session.scalars(text("SELECT seq FROM ledger_checkpoints ORDER BY seq")).all()
    assert seqs == [100, 200]
    report = check(sessions, settings)
    assert report.ok and report.signed_seq == 200


def test_a_broken_chain_is_not_signed(
    ledger: sessionmaker[Session], settings: Settings, raw: Engine
) -> None:
    sign_head(ledger, settings)
    with ledger() as session:
        for seq in range(N + 1, N + 11):
            append(session, actor="svc", action="test.act", payload={"n": seq})
        session.commit()
    sql(raw, "UPDATE ledger_entries SET subject = 'changed' WHERE seq = 55")
    with ledger() as session:
        with pytest.raises(ChainBroken) as broken:
            checkpoint(session, settings)
        assert broken.value.seq == 55
        assert maybe_checkpoint(session, settings, every=5) is None


# --- the exported bundle --------------------------------------------------------------------


def export(sessions: sessionmaker[Session], settings: Settings, directory: Path) -> None:
    with sessions() as session:
        append(session, actor=None, action="ledger.export", subject=str(directory), payload={})
        export_bundle(session, settings, directory)
        session.commit()


def run_verifier(bundle: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(bundle / "verify.py"), str(bundle), *extra],
        capture_output=True,
        text=True,
        cwd=bundle.parent,
        check=False,
    )


@pytest.fixture
def bundle(ledger: sessionmaker[Session], settings: Settings, tmp_path: Path) -> Path:
    with ledger() as session:
        erase_payload(session, 9)
        session.commit()
    export(ledger, settings, tmp_path / "bundle")
    return tmp_path / "bundle"


def rewrite_line(path: Path, seq: int, change: Any) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[seq - 1] = change(lines[seq - 1])
    path.write_bytes(b"".join(lines))


def test_bundle_verifies_with_its_own_script(bundle: Path) -> None:
    assert sorted(p.name for p in bundle.iterdir()) == [
        "checkpoints.json",
        "entries.jsonl",
        "manifest.json",
        "public_key.pem",
        "verify.py",
    ]
    assert (bundle / "verify.py").read_bytes() == Path(standalone_verify.__file__).read_bytes()
    result = run_verifier(bundle)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WHOLE" in result.stdout
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert (manifest["entries"], manifest["erased"], manifest["checkpoints"]) == (N + 1, 1, 1)
    entries = [json.loads(line) for line in (bundle / "entries.jsonl").read_text().splitlines()]
    assert entries[8]["payload"] is None and entries[8]["erased"] is True
    assert entries[0]["payload"] == payload_for(1)
    assert entries[-1]["action"] == "ledger.export"
    assert json.loads((bundle / "checkpoints.json").read_text())[0]["seq"] == N + 1


def test_bundle_with_one_changed_character_fails(bundle: Path) -> None:
    rewrite_line(bundle / "entries.jsonl", 17, lambda line: line.replace(b"caf\xc3\xa9", b"cafe"))
    result = run_verifier(bundle)
    assert result.returncode == 1
    assert "BROKEN: entry 17: payload does not match its hash" in result.stdout


def test_bundle_with_one_flipped_byte_fails(bundle: Path) -> None:
    data = bytearray((bundle / "entries.jsonl").read_bytes())
    data[data.index(b'"subject-23"') + 3] ^= 0x01
    (bundle / "entries.jsonl").write_bytes(bytes(data))
    result = run_verifier(bundle)
    assert result.returncode == 1
    assert "BROKEN: entry 23:" in result.stdout


def test_bundle_with_a_broken_line_names_the_entry(bundle: Path) -> None:
    rewrite_line(bundle / "entries.jsonl", 4, lambda line: line[:20] + b"\n")
    result = run_verifier(bundle)
    assert result.returncode == 1
    assert "BROKEN: entry 4 (line 4 of entries.jsonl): not valid JSON" in result.stdout


def test_bundle_with_an_unerased_payload_gone_fails(bundle: Path) -> None:
    def drop_payload(line: bytes) -> bytes:
        record = json.loads(line)
        return json.dumps({**record, "payload": None}).encode() + b"\n"

    rewrite_line(bundle / "entries.jsonl", 2, drop_payload)
    result = run_verifier(bundle)
    assert result.returncode == 1 and "BROKEN: entry 2: payload is missing" in result.stdout


def test_bundle_cut_short_fails(bundle: Path) -> None:
    lines = (bundle / "entries.jsonl").read_bytes().splitlines(keepends=True)
    (bundle / "entries.jsonl").write_bytes(b"".join(lines[:-3]))
    result = run_verifier(bundle)
    assert result.returncode == 1
    assert f"BROKEN: checkpoint 1 at entry {N + 1}: the chain has no entry" in result.stdout


@pytest.mark.parametrize("field", ["seq", "entry_hash", "created_at", "signature", "key_id"])
def test_bundle_with_an_edited_checkpoint_fails(bundle: Path, field: str) -> None:
    path = bundle / "checkpoints.json"
    checkpoints = json.loads(path.read_text())
    value = checkpoints[0][field]
    checkpoints[0][field] = (
        value - 1 if field == "seq" else value[:-1] + ("0" if value[-1] != "0" else "1")
    )
    path.write_text(json.dumps(checkpoints))
    result = run_verifier(bundle)
    assert result.returncode == 1
    assert "BROKEN: checkpoint 1 at entry" in result.stdout


def test_bundle_checked_against_the_auditors_key(bundle: Path, tmp_path: Path) -> None:
    """A bundle re-signed with a swapped-in key passes its own key, not the real one."""
    real = tmp_path / "real.pem"
    real.write_bytes((bundle / "public_key.pem").read_bytes())
    assert run_verifier(bundle, "--public-key", str(real)).returncode == 0
    intruder = Ed25519PrivateKey.generate()
    checkpoints = json.loads((bundle / "checkpoints.json").read_text())
    for item in checkpoints:
        item["key_id"] = standalone_verify.key_id(intruder.public_key())
        item["signature"] = intruder.sign(standalone_verify.checkpoint_statement(item)).hex()
    (bundle / "checkpoints.json").write_text(json.dumps(checkpoints))
    (bundle / "public_key.pem").write_bytes(keys.public_key_pem(intruder.public_key()))
    assert run_verifier(bundle).returncode == 0
    result = run_verifier(bundle, "--public-key", str(real))
    assert result.returncode == 1 and "signed by key" in result.stdout


def test_bundle_manifest_must_match(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["entries"] += 1
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    result = run_verifier(bundle)
    assert result.returncode == 1 and "BROKEN: manifest: entries" in result.stdout


def test_unreadable_bundle_exits_1(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    script = Path(standalone_verify.__file__)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1 and "NOT VERIFIED" in result.stdout


def test_standalone_verifier_does_not_import_faceledger() -> None:
    tree = ast.parse(Path(standalone_verify.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__", "cryptography"}, imported


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [1.5, -0.0, 1e300, 2**70], "é": '✓ \u2028 \x00 "q" \\'},
        {"nested": {"z": None, "y": True, "x": {"": []}}},
        [],
        "text",
    ],
)
def test_standalone_encoding_matches_the_ledgers(value: Any) -> None:
    assert standalone_verify.canonical(value) == chain.canonical(value)
    record = {name: value for name in chain.HEADER_FIELDS}
    assert standalone_verify.entry_hash(record) == chain.entry_hash(record)


def test_signed_statement_matches_the_standalone_one() -> None:
    item = {"seq": 3, "entry_hash": "ab" * 32, "created_at": "t", "key_id": "k", "id": 9}
    assert statement(3, "ab" * 32, "t", "k") == standalone_verify.checkpoint_statement(item)


# --- the command line -----------------------------------------------------------------------

runner = CliRunner()


def invoke(settings: Settings, *args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(
        app,
        ["--data-dir", str(settings.data_dir), "ledger", *args],
        env={**NO_CREDENTIALS, **(env or {})},
    )


def head(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.max(LedgerEntry.seq))) or 0)


def test_cli_verify_exit_codes(
    ledger: sessionmaker[Session], settings: Settings, raw: Engine
) -> None:
    result = invoke(settings, "verify")  # verify needs nobody: it shows no payload
    assert result.exit_code == 0, result.output
    assert "whole" in result.output
    result = invoke(settings, "verify", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["entries"] == N
    sql(raw, "UPDATE ledger_entries SET action = 'test.hidden' WHERE seq = 33")
    result = invoke(settings, "verify")
    assert result.exit_code == 1
    assert "entry 33:" in result.output
    result = invoke(settings, "verify", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["problem_seq"] == 33
    initialise(settings, "audrey")
    signing = invoke(settings, "checkpoint", env=credentials("audrey"))
    assert signing.exit_code == 1  # a broken chain is not signed


def test_cli_checkpoint_export_show_and_erase(
    ledger: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    initialise(settings, "audrey", "ivan")
    auditor, admin = credentials("audrey"), credentials()
    assert invoke(settings, "checkpoint").exit_code == EXIT_AUTH  # nobody said who
    assert invoke(settings, "show", env=credentials("ivan")).exit_code == EXIT_AUTH
    result = invoke(settings, "checkpoint", "--json", env=auditor)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["checkpoint"]["seq"] == head(ledger)

    target = tmp_path / "out"
    result = invoke(settings, "export", str(target), "--json", env=auditor)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["entries"] == head(ledger) and summary["checkpoints"] == 2
    assert run_verifier(target).returncode == 0
    assert invoke(settings, "export", str(target), env=auditor).exit_code == 2  # no overwrite

    result = invoke(
        settings, "show", "--last", "1", "--action", "ledger.export", "--json", env=auditor
    )
    [entry] = json.loads(result.stdout)["entries"]
    assert entry["subject"] == str(target.resolve()) and entry["actor"] == "audrey"
    shown = json.loads(invoke(settings, "show", "--last", "3", "--json", env=auditor).stdout)
    seqs = [e["seq"] for e in shown["entries"]]
    assert seqs == list(range(head(ledger) - 2, head(ledger) + 1))

    assert invoke(settings, "erase", "5", "--reason", "asked", env=auditor).exit_code == EXIT_AUTH
    assert invoke(settings, "erase", "5", "--reason", "request 12", env=admin).exit_code == 0
    assert invoke(settings, "erase", "5", "--reason", "again", env=admin).exit_code == EXIT_REFUSED
    erased = entries(ledger, "ledger.erased")
    assert [e["payload"] for e in erased] == [{"seq": 5, "reason": "request 12"}]
    with ledger() as session:
        payload = session.get(LedgerPayload, 5)
        assert payload is not None and payload.body is None and payload.erased_at is not None
    result = invoke(settings, "verify", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["erased"] == 1
