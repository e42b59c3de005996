"""The composition root: settings, the database and the per-collection indexes, opened once.

The CLI and the web app build one Workspace and hand it to the services, so each
service finds its dependencies in one place instead of opening them itself.
"""

from __future__ import annotations

from functools import cached_property, partial

from sqlalchemy.orm import Session, sessionmaker

from faceledger.config import Settings
from faceledger.index.local import LocalIndex, file_stamp
from faceledger.index.reconcile import reconcile
from faceledger.store import repo
from faceledger.store.db import open_database, reading


class Workspace:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._indexes: dict[int, LocalIndex] = {}

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return open_database(self.settings.database)

    @cached_property
    def reading(self) -> sessionmaker[Session]:
        """Read-only sessions: they may be opened inside a write transaction (store.db)."""
        return reading(self.sessions)

    def index(self, collection_id: int) -> LocalIndex:
        """The collection's index, reconciled with the store when it is opened.

        A long-running process (the web app) opens it again when another process (an
        ingest, an opt-out purge from the CLI) has saved the file since: otherwise it would
        miss new faces and keep purged ones until restarted.
        """
        path = self.settings.index_dir / f"collection-{collection_id}.faiss"
        cached = self._indexes.get(collection_id)
        if cached is None or cached.stamp != file_stamp(path):
            index = LocalIndex(path)
            with self.reading() as session:
                stored = repo.face_ids(session, collection_id)
                reconcile(index, stored, partial(repo.embeddings, session))
            self._indexes[collection_id] = cached = index
        return cached
