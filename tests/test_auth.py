"""Authentication and user management, attacked: lock-outs, roles, tokens, the ledger, the CLI."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from faceledger.auth import login, passwords, tokens, users
from faceledger.auth.actor import resolve_actor
from faceledger.auth.login import LOCK_PERIOD, MAX_FAILURES, authenticate
from faceledger.auth.passwords import WeakPassword, generate_password, verify_password
from faceledger.auth.roles import Role, UnknownRole, require_role
from faceledger.auth.tokens import authenticate_token, create_token, revoke_token
from faceledger.auth.users import UserError
from faceledger.config import Settings
from faceledger.errors import EXIT_AUTH, EXIT_REFUSED, AuthError, PermissionDenied
from faceledger.store.models import ApiToken, User
from faceledger.workspace import Workspace
from tests.accounts import ADMIN_PW, AUD_PW, INV_PW, as_admin, cli, entries


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sessions(settings: Settings) -> sessionmaker[Session]:
    """A database with an admin, an investigator and an auditor."""
    factory = Workspace(settings).sessions
    with factory() as session:
        admin = users.init_admin(session, "alice", ADMIN_PW)
        users.add_user(session, admin, "ivan", ["investigator"], INV_PW)
        users.add_user(session, admin, "audrey", [Role.AUDITOR], AUD_PW)
        session.commit()
    return factory


@pytest.fixture
def db(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


def user(session: Session, name: str) -> User:
    return users.get_user(session, name)


def ledger_text(sessions: sessionmaker[Session]) -> str:
    return json.dumps(entries(sessions))


def outcomes(sessions: sessionmaker[Session]) -> list[str]:
    return [e["payload"]["outcome"] for e in entries(sessions, "auth.login")]


# --- passwords -----------------------------------------------------------------------------


def test_production_hasher_is_argon2id_and_hashes_are_salted() -> None:
    assert passwords.HASHER.type is Type.ID
    assert passwords.HASHER.memory_cost >= 65536 and passwords.HASHER.time_cost >= 3
    first, second = passwords.hash_password(ADMIN_PW), passwords.hash_password(ADMIN_PW)
    assert first.startswith("$argon2id$") and first != second
    assert verify_password(first, ADMIN_PW) and not verify_password(first, ADMIN_PW + "x")
    assert not verify_password("not a hash", ADMIN_PW)


@pytest.mark.parametrize("weak", ["", "short", "elevenchars", " " * 20])
def test_weak_passwords_are_refused_with_a_clear_message(weak: str) -> None:
    with pytest.raises(WeakPassword, match=r"at least 12|only spaces"):
        passwords.hash_password(weak)


def test_generated_passwords_meet_the_policy_and_differ() -> None:
    generated = {generate_password() for _ in range(50)}
    assert len(generated) == 50
    for password in generated:
        assert len(password) == 20
        passwords.check_policy(password)


def test_weak_password_for_a_new_user_changes_nothing(
    db: Session, sessions: sessionmaker[Session]
) -> None:
    before = len(entries(sessions))
    with pytest.raises(WeakPassword):
        users.add_user(db, user(db, "alice"), "bob", ["investigator"], "tooshort")
    db.rollback()
    assert users.find_user(db, "bob") is None
    assert len(entries(sessions)) == before


def test_a_weaker_stored_hash_is_upgraded_at_login(
    db: Session, sessions: sessionmaker[Session]
) -> None:
    weaker = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1)
    user(db, "ivan").password_hash = weaker.hash(INV_PW)
    db.commit()
    authenticate(db, "ivan", INV_PW)
    with sessions() as fresh:
        stored = user(fresh, "ivan").password_hash
    assert "m=1024" in stored and verify_password(stored, INV_PW)


# --- login ---------------------------------------------------------------------------------


def test_right_password_logs_in_and_is_ledgered(
    db: Session, sessions: sessionmaker[Session]
) -> None:
    assert authenticate(db, "ivan", INV_PW).name == "ivan"
    [entry] = entries(sessions, "auth.login")
    assert entry == {
        "actor": "ivan",
        "action": "auth.login",
        "subject": "user:ivan",
        "payload": {"outcome": "ok"},
    }


def test_wrong_password_is_refused_counted_and_ledgered(
    db: Session, sessions: sessionmaker[Session]
) -> None:
    with pytest.raises(AuthError, match="wrong user name or password"):
        authenticate(db, "ivan", "not-ivans-password")
    db.rollback()  # what a caller does on an exception: the attempt must survive it
    [entry] = entries(sessions, "auth.login")
    assert entry["actor"] is None and entry["subject"] == "user:ivan"
    assert entry["payload"] == {"outcome": "failed", "reason": "wrong_password", "failures": 1}
    with sessions() as fresh:
        assert user(fresh, "ivan").failed_logins == 1


def test_unknown_user_gets_the_same_answer_after_a_real_hash_check(
    db: Session, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []

    def spy(password_hash: str, password: str) -> bool:
        checked.append(password_hash)
        return verify_password(password_hash, password)

    monkeypatch.setattr(login, "verify_password", spy)
    with pytest.raises(AuthError) as unknown:
        authenticate(db, "mallory", "some-password-123")
    with pytest.raises(AuthError) as wrong:
        authenticate(db, "ivan", "some-password-123")
    assert str(unknown.value) == str(wrong.value)
    assert len(checked) == 2 and checked[0].startswith("$argon2id$")
    assert entries(sessions, "auth.login")[0]["payload"] == {
        "outcome": "failed",
        "reason": "unknown_user",
    }


def test_lockout_after_five_failures_refuses_even_the_right_password(
    db: Session, sessions: sessionmaker[Session], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    for attempt in range(MAX_FAILURES):
        clock.advance(timedelta(seconds=1))
        with pytest.raises(AuthError, match="wrong"):
            authenticate(db, "ivan", f"guess-number-{attempt}", clock=clock)
    locked_until = clock.now + LOCK_PERIOD

    checked: list[str] = []

    def spy(password_hash: str, password: str) -> bool:
        checked.append(password)
        return verify_password(password_hash, password)

    monkeypatch.setattr(login, "verify_password", spy)
    with pytest.raises(AuthError, match="locked"):
        authenticate(db, "ivan", INV_PW, clock=clock)
    clock.advance(LOCK_PERIOD - timedelta(seconds=1))
    with pytest.raises(AuthError, match="locked"):
        authenticate(db, "ivan", INV_PW, clock=clock)
    assert checked == []  # a locked account's password is not even looked at

    with sessions() as fresh:  # the lock is stored, not only in this session's memory
        stored = user(fresh, "ivan")
        assert stored.failed_logins == MAX_FAILURES
        assert stored.locked_until is not None
        assert stored.locked_until.replace(tzinfo=UTC) == locked_until

    clock.advance(timedelta(seconds=1))  # the lock has run out
    assert authenticate(db, "ivan", INV_PW, clock=clock).name == "ivan"
    with sessions() as fresh:
        assert user(fresh, "ivan").failed_logins == 0
        assert user(fresh, "ivan").locked_until is None
    assert outcomes(sessions) == ["failed"] * MAX_FAILURES + ["locked", "locked", "ok"]
    assert entries(sessions, "auth.login")[MAX_FAILURES - 1]["payload"]["locked_until"]


def test_an_expired_lock_gives_a_fresh_allowance_not_an_instant_relock(
    db: Session, clock: Clock
) -> None:
    for _ in range(MAX_FAILURES):
        with pytest.raises(AuthError):
            authenticate(db, "ivan", "wrong-password-1", clock=clock)
    clock.advance(LOCK_PERIOD)
    with pytest.raises(AuthError, match="wrong"):
        authenticate(db, "ivan", "wrong-password-1", clock=clock)
    assert user(db, "ivan").failed_logins == 1 and user(db, "ivan").locked_until is None


def test_only_consecutive_failures_count(db: Session, clock: Clock) -> None:
    for _ in range(2):
        for _ in range(MAX_FAILURES - 1):
            with pytest.raises(AuthError):
                authenticate(db, "ivan", "wrong-password-1", clock=clock)
        authenticate(db, "ivan", INV_PW, clock=clock)
    assert user(db, "ivan").locked_until is None


def test_lockout_of_one_user_does_not_touch_another(db: Session, clock: Clock) -> None:
    for _ in range(MAX_FAILURES):
        with pytest.raises(AuthError):
            authenticate(db, "ivan", "wrong-password-1", clock=clock)
    assert authenticate(db, "audrey", AUD_PW, clock=clock).name == "audrey"


def test_a_deactivated_user_cannot_log_in(db: Session, sessions: sessionmaker[Session]) -> None:
    users.deactivate(db, user(db, "alice"), "ivan")
    db.commit()
    with pytest.raises(AuthError, match="deactivated"):
        authenticate(db, "ivan", INV_PW)
    assert outcomes(sessions) == ["failed"]


def test_authenticate_refuses_to_commit_someone_elses_pending_changes(db: Session) -> None:
    user(db, "ivan").roles = ["admin"]
    with pytest.raises(RuntimeError, match="before making changes"):
        authenticate(db, "alice", ADMIN_PW)


def test_passwords_never_reach_the_ledger(
    db: Session, sessions: sessionmaker[Session], clock: Clock
) -> None:
    tried = ["first-wrong-guess", "second-wrong-guess", INV_PW, "unknown-user-pass"]
    for password in tried[:2]:
        with pytest.raises(AuthError):
            authenticate(db, "ivan", password, clock=clock)
    authenticate(db, "ivan", INV_PW, clock=clock)
    with pytest.raises(AuthError):
        authenticate(db, "nobody", tried[3], clock=clock)
    admin = user(db, "alice")
    users.reset_password(db, admin, "ivan", "brand-new-password")
    users.add_user(db, admin, "bob", ["approver"], "bobs-first-password")
    db.commit()
    text = ledger_text(sessions)
    for secret in [*tried, ADMIN_PW, AUD_PW, "brand-new-password", "bobs-first-password"]:
        assert secret not in text
    assert "$argon2" not in text
    assert outcomes(sessions) == ["failed", "failed", "ok", "failed"]


# --- user management -----------------------------------------------------------------------


def test_init_admin_only_on_an_empty_system(db: Session) -> None:
    with pytest.raises(users.AlreadyInitialised):
        users.init_admin(db, "eve", "eves-own-password")


def test_adding_a_user_is_ledgered_with_roles(sessions: sessionmaker[Session]) -> None:
    added = entries(sessions, "user.add")
    assert [(e["actor"], e["subject"], e["payload"]) for e in added] == [
        ("alice", "user:ivan", {"roles": ["investigator"]}),
        ("alice", "user:audrey", {"roles": ["auditor"]}),
    ]
    [init] = entries(sessions, "user.init")
    assert init["actor"] is None and init["payload"] == {"roles": ["admin"]}


@pytest.mark.parametrize("name", ["ivan", "audrey"])
def test_non_admins_cannot_manage_users(
    db: Session, sessions: sessionmaker[Session], name: str
) -> None:
    actor = user(db, name)
    before = len(entries(sessions))
    attempts = [
        lambda: users.add_user(db, actor, "bob", ["admin"], "bobs-first-password"),
        lambda: users.set_roles(db, actor, name, ["admin"]),
        lambda: users.set_roles(db, actor, "alice", ["auditor"]),
        lambda: users.deactivate(db, actor, "alice"),
        lambda: users.reset_password(db, actor, "alice", "taken-over-password"),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied, match="needs the role admin"):
            attempt()
    db.rollback()
    assert user(db, name).roles != ["admin"] and users.find_user(db, "bob") is None
    assert len(entries(sessions)) == before


def test_set_roles_ledgers_old_and_new(db: Session, sessions: sessionmaker[Session]) -> None:
    users.set_roles(db, user(db, "alice"), "ivan", ["approver", "investigator", "approver"])
    db.commit()
    [entry] = entries(sessions, "user.roles")
    assert entry["payload"] == {"old": ["investigator"], "new": ["approver", "investigator"]}


def test_unknown_roles_and_empty_role_lists_are_refused(db: Session) -> None:
    admin = user(db, "alice")
    with pytest.raises(UnknownRole, match="superuser"):
        users.set_roles(db, admin, "ivan", ["superuser"])
    with pytest.raises(UserError, match="at least one role"):
        users.set_roles(db, admin, "ivan", [])


def test_the_last_admin_cannot_demote_or_deactivate_themselves(
    db: Session, sessions: sessionmaker[Session]
) -> None:
    admin = user(db, "alice")
    with pytest.raises(UserError, match="last admin"):
        users.set_roles(db, admin, "alice", ["auditor"])
    with pytest.raises(UserError, match="last admin"):
        users.deactivate(db, admin, "alice")
    assert user(db, "alice").roles == ["admin"] and user(db, "alice").active
    # With a second admin, stepping down is fine.
    users.set_roles(db, admin, "ivan", ["admin", "investigator"])
    users.set_roles(db, admin, "alice", ["auditor"])
    db.commit()
    with pytest.raises(PermissionDenied):
        users.add_user(db, user(db, "alice"), "bob", ["admin"], "bobs-first-password")
    # ... and now ivan is the last one.
    with pytest.raises(UserError, match="last admin"):
        users.set_roles(db, user(db, "ivan"), "ivan", ["investigator"])


def test_a_deactivated_admin_is_not_counted_nor_obeyed(db: Session) -> None:
    admin = user(db, "alice")
    users.add_user(db, admin, "bob", ["admin"], "bobs-first-password")
    users.deactivate(db, admin, "bob")
    with pytest.raises(UserError, match="last admin"):
        users.set_roles(db, admin, "alice", ["auditor"])
    with pytest.raises(PermissionDenied, match="deactivated"):
        require_role(user(db, "bob"), Role.ADMIN)


def test_duplicate_and_odd_names_are_refused(db: Session) -> None:
    admin = user(db, "alice")
    with pytest.raises(UserError, match="already exists"):
        users.add_user(db, admin, "ivan", ["auditor"], "another-password")
    for name in ["", "two words", "x" * 201, "semi;colon"]:
        with pytest.raises(UserError, match="invalid user name"):
            users.add_user(db, admin, name, ["auditor"], "another-password")


def test_reset_password_lifts_a_lockout(
    db: Session, sessions: sessionmaker[Session], clock: Clock
) -> None:
    for _ in range(MAX_FAILURES):
        with pytest.raises(AuthError):
            authenticate(db, "ivan", "wrong-password-1", clock=clock)
    users.reset_password(db, user(db, "alice"), "ivan", "fresh-password-22")
    db.commit()
    assert authenticate(db, "ivan", "fresh-password-22", clock=clock).name == "ivan"
    [entry] = entries(sessions, "user.reset_password")
    assert entry["payload"] == {"unlocked": True}


def test_list_users_for_admins_and_auditors_only(db: Session) -> None:
    assert [u.name for u in users.list_users(db, user(db, "audrey"))] == [
        "alice",
        "audrey",
        "ivan",
    ]
    with pytest.raises(PermissionDenied):
        users.list_users(db, user(db, "ivan"))


# --- tokens --------------------------------------------------------------------------------


def test_token_plaintext_is_never_stored(
    db: Session, sessions: sessionmaker[Session], settings: Settings
) -> None:
    token = create_token(db, user(db, "alice"), "ivan")
    db.commit()
    assert token.startswith("flt_") and len(token) > 40
    [row] = db.scalars(select(ApiToken)).all()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in ledger_text(sessions)
    db.close()
    sessions.kw["bind"].dispose()
    secret = token.encode()
    for path in settings.data_dir.rglob("*"):
        if path.is_file():
            assert secret not in path.read_bytes(), path


def test_a_token_authenticates_and_its_use_is_ledgered(
    db: Session, sessions: sessionmaker[Session], clock: Clock
) -> None:
    token = create_token(db, user(db, "alice"), "ivan", days=7, clock=clock)
    db.commit()
    clock.advance(timedelta(days=1))
    assert authenticate_token(db, token, clock=clock).name == "ivan"
    with sessions() as fresh:
        [row] = fresh.scalars(select(ApiToken)).all()
        assert row.last_used_at is not None
        assert row.last_used_at.replace(tzinfo=UTC) == clock.now
    created, used = entries(sessions, "token.create"), entries(sessions, "auth.token")
    assert created[0]["actor"] == "alice" and created[0]["payload"]["user"] == "ivan"
    assert used == [
        {
            "actor": "ivan",
            "action": "auth.token",
            "subject": created[0]["subject"],
            "payload": {"outcome": "ok", "user": "ivan"},
        }
    ]


def test_expired_revoked_unknown_and_tampered_tokens_are_refused(
    db: Session, sessions: sessionmaker[Session], clock: Clock
) -> None:
    admin = user(db, "alice")
    expiring = create_token(db, admin, "ivan", days=1, clock=clock)
    revoked = create_token(db, admin, "ivan", clock=clock)
    db.commit()
    revoke_token(db, admin, 2, clock=clock)
    db.commit()
    clock.advance(timedelta(days=1))
    with pytest.raises(AuthError, match="expired"):
        authenticate_token(db, expiring, clock=clock)
    with pytest.raises(AuthError, match="revoked"):
        authenticate_token(db, revoked, clock=clock)
    for bogus in ["flt_" + "A" * 43, revoked[:-1], "", expiring.removeprefix("flt_")]:
        with pytest.raises(AuthError, match="unknown token"):
            authenticate_token(db, bogus, clock=clock)
    db.rollback()
    used = [e["payload"]["outcome"] for e in entries(sessions, "auth.token")]
    assert used == ["expired", "revoked", "unknown", "unknown", "unknown", "unknown"]
    assert [e["actor"] for e in entries(sessions, "token.revoke")] == ["alice"]


def test_tokens_of_deactivated_users_are_refused(db: Session) -> None:
    token = create_token(db, user(db, "alice"), "ivan")
    users.deactivate(db, user(db, "alice"), "ivan")
    db.commit()
    with pytest.raises(AuthError, match="deactivated"):
        authenticate_token(db, token)


def test_who_may_create_and_revoke_tokens(db: Session) -> None:
    ivan, audrey = user(db, "ivan"), user(db, "audrey")
    own = create_token(db, ivan, "ivan")
    db.commit()
    with pytest.raises(PermissionDenied):
        create_token(db, ivan, "alice")
    with pytest.raises(PermissionDenied):
        revoke_token(db, audrey, 1)
    with pytest.raises(PermissionDenied):
        tokens.list_tokens(db, audrey, "ivan")
    assert [t.user for t in tokens.list_tokens(db, audrey)] == []
    listed = tokens.list_tokens(db, ivan)
    assert [t.id for t in listed] == [1] and own not in json.dumps(listed[0].as_dict())
    revoke_token(db, ivan, 1)
    db.commit()
    with pytest.raises(AuthError, match="revoked"):
        authenticate_token(db, own)
    with pytest.raises(tokens.UnknownToken):
        revoke_token(db, ivan, 99)


# --- resolve_actor -------------------------------------------------------------------------


def test_resolve_actor_from_a_token(db: Session) -> None:
    token = create_token(db, user(db, "alice"), "ivan")
    db.commit()
    env = {"FACELEDGER_TOKEN": token, "FACELEDGER_USER": "alice", "FACELEDGER_PASSWORD": "x"}
    assert resolve_actor(db, env, prompt=False).name == "ivan"  # the token wins


def test_resolve_actor_from_name_and_password(db: Session) -> None:
    env = {"FACELEDGER_USER": "audrey", "FACELEDGER_PASSWORD": AUD_PW}
    assert resolve_actor(db, env, prompt=False).name == "audrey"
    with pytest.raises(AuthError, match="wrong"):
        resolve_actor(db, {**env, "FACELEDGER_PASSWORD": "wrong-password"}, prompt=False)


def test_resolve_actor_without_credentials_says_how(db: Session) -> None:
    for env in [{}, {"FACELEDGER_USER": "ivan"}, {"FACELEDGER_TOKEN": ""}]:
        with pytest.raises(AuthError, match="say who you are: set FACELEDGER_USER"):
            resolve_actor(db, env, prompt=True, interactive=False)


def test_resolve_actor_prompts_at_a_terminal(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("builtins.input", lambda: "ivan")
    monkeypatch.setattr("getpass.getpass", lambda prompt: INV_PW)
    assert resolve_actor(db, {}, prompt=True, interactive=True).name == "ivan"
    with pytest.raises(AuthError):
        resolve_actor(db, {}, prompt=False, interactive=True)


def test_resolve_actor_can_demand_a_password(db: Session) -> None:
    token = create_token(db, user(db, "ivan"), "ivan")
    db.commit()
    with pytest.raises(AuthError, match="needs a password"):
        resolve_actor(db, {"FACELEDGER_TOKEN": token}, prompt=False, allow_token=False)


def test_resolve_actor_refuses_deactivated_users(db: Session) -> None:
    users.deactivate(db, user(db, "alice"), "audrey")
    db.commit()
    env = {"FACELEDGER_USER": "audrey", "FACELEDGER_PASSWORD": AUD_PW}
    with pytest.raises(AuthError, match="deactivated"):
        resolve_actor(db, env, prompt=False)


# --- CLI -----------------------------------------------------------------------------------


def test_cli_init_prints_a_generated_password_once(settings: Settings) -> None:
    code, stdout, _ = cli(settings, "init", "--json")
    assert code == 0
    answer = json.loads(stdout)
    password = answer["password"]
    assert answer["admin"] == "admin" and len(password) == 20
    assert (settings.data_dir / "faceledger.db").is_file()
    code, stdout, stderr = cli(settings, "init")
    assert code == EXIT_REFUSED and "already initialised" in stderr
    assert password not in stdout + stderr
    code, stdout, _ = cli(settings, "user", "list", "--json", **as_admin(password))
    assert code == 0 and [u["name"] for u in json.loads(stdout)["users"]] == ["admin"]
    assert password not in stdout


def test_cli_init_takes_the_password_from_the_environment(settings: Settings) -> None:
    code, stdout, stderr = cli(
        settings, "init", "--admin", "root", FACELEDGER_ADMIN_PASSWORD=ADMIN_PW
    )
    assert code == 0 and ADMIN_PW not in stdout + stderr and "root" in stdout
    code, _, _ = cli(settings, "user", "list", **as_admin(name="root"))
    assert code == 0


def test_cli_init_refuses_a_weak_password(settings: Settings) -> None:
    code, _, stderr = cli(settings, "init", FACELEDGER_ADMIN_PASSWORD="short")
    assert code == 2 and "at least 12" in stderr


def test_cli_user_management(settings: Settings) -> None:
    cli(settings, "init", FACELEDGER_ADMIN_PASSWORD=ADMIN_PW)
    code, stdout, _ = cli(
        settings, "user", "add", "ivan", "--role", "investigator", "--json", **as_admin()
    )
    ivan_pw = json.loads(stdout)["password"]
    assert code == 0 and len(ivan_pw) == 20
    code, stdout, _ = cli(
        settings,
        "user",
        "add",
        "audrey",
        "-r",
        "auditor",
        "--json",
        FACELEDGER_NEW_PASSWORD=AUD_PW,
        **as_admin(),
    )
    assert code == 0 and json.loads(stdout)["password"] is None
    code, stdout, _ = cli(
        settings,
        "user",
        "roles",
        "ivan",
        "-r",
        "approver",
        "-r",
        "investigator",
        "--json",
        **as_admin(),
    )
    assert code == 0 and json.loads(stdout)["roles"] == ["approver", "investigator"]
    code, stdout, _ = cli(settings, "user", "list", "--json", **as_admin(AUD_PW, "audrey"))
    assert code == 0 and len(json.loads(stdout)["users"]) == 3
    code, _, stderr = cli(settings, "user", "roles", "admin", "-r", "auditor", **as_admin())
    assert code == EXIT_REFUSED and "last admin" in stderr
    code, _, _ = cli(settings, "user", "deactivate", "ivan", **as_admin())
    assert code == 0
    code, stdout, _ = cli(settings, "user", "list", "--json", **as_admin(ivan_pw, "ivan"))
    assert code == EXIT_AUTH and "deactivated" in json.loads(stdout)["message"]
    code, _, _ = cli(settings, "user", "roles", "nobody", "-r", "auditor", **as_admin())
    assert code == 7


def init_with_investigator(settings: Settings) -> None:
    """An initialised workspace with the admin and one investigator, ivan."""
    cli(settings, "init", FACELEDGER_ADMIN_PASSWORD=ADMIN_PW)
    cli(
        settings,
        "user",
        "add",
        "ivan",
        "-r",
        "investigator",
        FACELEDGER_NEW_PASSWORD=INV_PW,
        **as_admin(),
    )


def test_cli_non_admins_and_strangers_exit_4(settings: Settings) -> None:
    init_with_investigator(settings)
    code, stdout, _ = cli(
        settings, "user", "add", "eve", "-r", "admin", "--json", **as_admin(INV_PW, "ivan")
    )
    assert code == EXIT_AUTH
    assert json.loads(stdout)["error"] == "permission_denied"
    code, _, stderr = cli(settings, "user", "add", "eve", "-r", "admin")
    assert code == EXIT_AUTH and "FACELEDGER_USER" in stderr
    code, _, stderr = cli(settings, "user", "add", "eve", "-r", "admin", **as_admin("wrong-pw-123"))
    assert code == EXIT_AUTH and "wrong user name or password" in stderr


def test_cli_before_init_says_to_run_init(settings: Settings) -> None:
    code, _, stderr = cli(settings, "user", "list", **as_admin())
    assert code == EXIT_AUTH and "faceledger init" in stderr


def test_cli_tokens(settings: Settings) -> None:
    init_with_investigator(settings)
    code, stdout, _ = cli(settings, "token", "create", "ivan", "--days", "3", **as_admin())
    assert code == 0
    token = stdout.strip().splitlines()[-1]
    assert token.startswith("flt_")

    code, stdout, _ = cli(settings, "token", "list", "--json", FACELEDGER_TOKEN=token)
    assert code == 0 and token not in stdout
    [listed] = json.loads(stdout)["tokens"]
    assert listed["user"] == "ivan" and listed["last_used_at"]

    # A token cannot mint tokens (a stolen one would outlive its revocation).
    code, _, stderr = cli(settings, "token", "create", "ivan", FACELEDGER_TOKEN=token)
    assert code == EXIT_AUTH and "needs a password" in stderr
    code, _, _ = cli(settings, "token", "create", "admin", **as_admin(INV_PW, "ivan"))
    assert code == EXIT_AUTH

    code, _, _ = cli(settings, "token", "revoke", str(listed["id"]), FACELEDGER_TOKEN=token)
    assert code == 0
    code, stdout, _ = cli(settings, "token", "list", "--json", FACELEDGER_TOKEN=token)
    assert code == EXIT_AUTH and json.loads(stdout)["message"] == "this token was revoked"
