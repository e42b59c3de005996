"""The composition root: settings, the database and the per-collection indexes, opened once.

The CLI (and later the web app) build one Workspace and hand it to the services, so each
service finds its dependencies in one place instead of opening them itself.
"""

from __future__ import annotations

from functools import cached_property

from sqlalchemy.orm import Session, sessionmaker

from faceledger.config import Settings
from faceledger.index.local import LocalIndex
from faceledger.index.reconcile import reconcile
from faceledger.store.db import open_database


class Workspace:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._indexes: dict[int, LocalIndex] = {}

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return open_database(self.settings.database)

    def index(self, collection_id: int) -> LocalIndex:
        """The collection's index, reconciled with the store the first time it is opened."""
        if collection_id not in self._indexes:
            index = LocalIndex(self.settings.index_dir / f"collection-{collection_id}.faiss")
            with self.sessions() as session:
                reconcile(index, session, collection_id)
            self._indexes[collection_id] = index
        return self._indexes[collection_id]
