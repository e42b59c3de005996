"""Server-rendered pages; each module adds its routes to `router` (included by the app), and
the page modules' navigation entries (`NAV_ITEMS`) join `render.NAV` in this order."""

from fastapi import APIRouter

from faceledger.web.pages import (
    approvals,
    auth,
    collections,
    crawls,
    home,
    ledger,
    optouts,
    reports,
    searches,
)
from faceledger.web.pages.render import NAV

PAGES = (searches, approvals, collections, crawls, ledger, reports, optouts)

router = APIRouter(tags=["pages"])
for module in (auth, home, *PAGES):
    router.include_router(module.router)
NAV.extend(item for module in PAGES for item in module.NAV_ITEMS)
