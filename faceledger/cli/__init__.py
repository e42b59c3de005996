"""The `faceledger` command line: thin layers over the services, one module per area."""

from faceledger.cli import (
    collections,
    crawl,
    engine,
    evaluate,
    ledger,
    policy,
    reports,
    search,
    serve,
    users,
    watch,
)
from faceledger.cli.app import app

__all__ = [
    "app",
    "collections",
    "crawl",
    "engine",
    "evaluate",
    "ledger",
    "policy",
    "reports",
    "search",
    "serve",
    "users",
    "watch",
]
