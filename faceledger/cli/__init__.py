"""The `faceledger` command line: thin layers over the services, one module per area."""

from faceledger.cli import engine, evaluate, ledger, search, users
from faceledger.cli.app import app

__all__ = ["app", "engine", "evaluate", "ledger", "search", "users"]
