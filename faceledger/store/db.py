"""Open the database: engine, SQLite pragmas, write transactions that serialise, migrations.

Several processes share one database (CLI commands, server processes, ingest workers), so
every write transaction must see the writes committed before it:

- On SQLite a write transaction starts with `BEGIN IMMEDIATE`: it takes the database's one
  write lock before its first read, so what it reads (the ledger's head, a request's state)
  cannot change under it. Waiting for the lock is bounded by `busy_timeout`.
- On PostgreSQL transactions run at READ COMMITTED; what must not race takes a lock in the
  transaction itself (the ledger's advisory lock, a row `FOR UPDATE`, a conditional update).

Read-only sessions (`reading`) begin a plain deferred transaction on SQLite: WAL lets them
read while a writer works, and one can be opened while the same thread holds a write
transaction (an index reconciled in the middle of a search).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from faceledger.errors import FaceledgerError

MIGRATIONS = Path(__file__).with_name("migrations")
# Transaction-scoped PostgreSQL advisory locks: one key per thing that must not race.
LEDGER_LOCK = 0x4C454447  # "LEDG"
MIGRATION_LOCK = 0x4D494752  # "MIGR"
READ_ONLY = "faceledger_read_only"
# How long a transaction waits for the write lock before it fails (SQLite's busy handler).
BUSY_TIMEOUT_MS = 30_000


class NestedWriteTransaction(FaceledgerError):
    """A thread began a second write transaction while holding one: on SQLite it would wait
    for its own lock until the busy timeout. A programming error, raised at once."""

    code = "nested_write_transaction"


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Transactions are begun explicitly (below), not by the driver before its first write,
    # so that a write transaction holds the lock from its first read.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class _SqliteWriters:
    """Begins SQLite transactions, immediate unless read-only, and catches a thread that
    would wait on itself."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _held(self) -> set[int]:
        held: set[int] | None = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = set()
        return held

    def begin(self, connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
            return
        held = self._held()
        if held - {id(connection)}:
            raise NestedWriteTransaction(
                "this thread already holds a write transaction on the database"
            )
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        held.add(id(connection))

    def end(self, connection: Connection) -> None:
        self._held().discard(id(connection))


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def make_engine(url: str) -> Engine:
    """Create an engine; for SQLite, make sure its folder exists and set how it begins."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        writers = _SqliteWriters()
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", writers.begin)
        event.listen(engine, "commit", writers.end)
        event.listen(engine, "rollback", writers.end)
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent; one process at a time)."""
    config = alembic_config()
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":  # SQLite's BEGIN IMMEDIATE already serialises
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_database(url: str) -> sessionmaker[Session]:
    """An up-to-date database, as a factory of write sessions."""
    engine = make_engine(url)
    migrate(engine)
    return sessionmaker(engine, expire_on_commit=False)


def reading(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions over the same database that only read (see the module docstring)."""
    engine = sessions.kw["bind"]
    return sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)
