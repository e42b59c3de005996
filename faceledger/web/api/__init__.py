"""The REST API under /api/v1; each module adds its routes to `router`."""

from fastapi import APIRouter

from faceledger.web.api import collections, ledger, optouts, reports, results, searches, users

router = APIRouter(prefix="/api/v1")
for module in (searches, results, collections, ledger, reports, optouts, users):
    router.include_router(module.router)
