"""The `faceledger` command line: thin layers over the services, one module per area."""

import faceledger.cli.reports  # noqa: F401  (registers `report` and `subject report`)
from faceledger.cli import collections, engine, evaluate, ledger, policy, search, users
from faceledger.cli.app import app

__all__ = ["app", "collections", "engine", "evaluate", "ledger", "policy", "search", "users"]
