"""What the app holds for its lifetime: the workspace, the search service, limits, keys.

Built once per app (in its lifespan) and reached from routes through `deps.services`. The
face pipeline is loaded on the first request that needs the search service, so the app
starts in a moment and a server that only serves approvals never loads the models.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from faceledger.config import Settings
from faceledger.search.service import SearchService
from faceledger.web.config import WebConfig
from faceledger.web.ratelimit import RateLimiter
from faceledger.web.serial import SerialPipeline
from faceledger.web.sessions import Revocations, session_key
from faceledger.workspace import Workspace


class Services:
    def __init__(self, settings: Settings, config: WebConfig) -> None:
        self.settings = settings
        self.config = config
        self.workspace = Workspace(settings)
        self.workspace.sessions()  # opens the database (and migrates it) before serving
        self.session_key = session_key(settings)
        self.session_lifetime = timedelta(hours=config.session_hours)
        self.revocations = Revocations(self.session_lifetime)
        self.login_limit = RateLimiter(config.login_rate)
        self.bad_token_limit = RateLimiter(config.bad_token_rate)
        self.search_limit = RateLimiter(config.search_rate)
        self._search: SearchService | None = None
        self._lock = threading.Lock()

    @property
    def search(self) -> SearchService:
        """The one search service of the process (its pipeline is built on first use)."""
        with self._lock:
            if self._search is None:
                pipeline = SerialPipeline(self.settings, threads=2, limits=self.config.upload)
                self._search = SearchService(self.workspace, pipeline)
            return self._search
