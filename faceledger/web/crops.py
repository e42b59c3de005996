"""Face crops of results, fetched from their source when shown and never stored.

A crop is served only to someone who may see the request and whose ledgered results view
registered that face as shown to them (an `Exposure`), so every face a person sees is in
the ledger and the register of affected people. The image is fetched at view time: a
`file://` source from disk, an http(s) source through the crawler's guarded fetcher (the
SSRF guard refuses private and loopback addresses unless the administrator allowed them,
and every redirect hop is checked again). It is decoded within the upload limits, cut
around the face and returned as a small JPEG; nothing is written to disk.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.config import Settings
from faceledger.crawl.config import CrawlConfig
from faceledger.crawl.fetch import Fetcher, FetchError
from faceledger.crawl.guard import Refused, check_url
from faceledger.faces.decode import DecodeLimits, ImageRejected, decode_image
from faceledger.search.outcome import NotFound, ServiceRefusal
from faceledger.search.requests import require_view
from faceledger.store.models import Exposure, SearchResult, User
from faceledger.web.errors import ApiError

CROP_SIDE = 256
MARGIN = 0.3  # of the face box, on each side


@dataclass(frozen=True)
class Shown:
    image_url: str
    box: list[int]


def shown_face(session: Session, user: User, result_id: int) -> Shown:
    """The source of a result's face, if `user` may see it and was shown it (ledgered)."""
    result = session.get(SearchResult, result_id)
    if result is None:
        raise NotFound(f"no search result {result_id}")
    require_view(session, user, result.request)
    if result.purged_at is not None or not result.image_url or not result.box:
        raise ServiceRefusal("no_results", f"result {result_id} is no longer available")
    seen = session.scalar(
        select(Exposure.id).where(Exposure.result_id == result.id, Exposure.shown_to == user.id)
    )
    if seen is None:
        raise ServiceRefusal(
            "results_not_viewed",
            f"open the results of request {result.request_id} first: that view is ledgered",
        )
    return Shown(result.image_url, list(result.box))


def _config(settings: Settings, limits: DecodeLimits) -> CrawlConfig:
    return CrawlConfig(
        contact_url=settings.crawl_contact_url,
        allowed_cidrs=settings.crawl_allowed_addresses,
        per_host_delay=0.0,
        retries=0,
        connect_timeout=5.0,
        read_timeout=10.0,
        max_fetch_seconds=20.0,
        max_image_bytes=limits.max_bytes,
    )


async def fetch_source(url: str, settings: Settings, limits: DecodeLimits) -> bytes:
    """The image bytes at `url` (file, or http(s) through the SSRF guard), or a 502."""
    if urlsplit(url).scheme == "file":
        return _read_file(Path(url2pathname(urlsplit(url).path)), limits.max_bytes)
    config = _config(settings, limits)
    try:
        async with Fetcher(config) as fetcher:
            for _ in range(config.max_redirects + 1):
                check_url(url)
                fetched = await fetcher.fetch(url, limits.max_bytes)
                if fetched.location is None:
                    if fetched.status != 200:
                        break
                    return fetched.body
                url = fetched.location
    except Refused as problem:
        raise ApiError(502, "source_refused", f"the source may not be fetched: {problem}") from None
    except FetchError as problem:
        raise ApiError(502, "source_unavailable", f"the source failed: {problem}") from None
    raise ApiError(502, "source_unavailable", "the source did not return the image")


def _read_file(path: Path, max_bytes: int) -> bytes:
    if not path.is_file():
        raise ApiError(502, "source_unavailable", "the source file is no longer there")
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(502, "source_unavailable", "the source file is over the size limit")
    return data


def crop_face(data: bytes, box: list[int], limits: DecodeLimits) -> bytes:
    """The face with a margin, at most CROP_SIDE pixels on a side, as JPEG."""
    try:
        decoded = decode_image(data, limits)
    except ImageRejected as problem:
        message = f"the source is not a usable image: {problem}"
        raise ApiError(502, "source_unavailable", message) from None
    left, top, width, height = box
    pad_x, pad_y = round(width * MARGIN), round(height * MARGIN)
    image = Image.fromarray(decoded.rgb).crop(
        (
            max(0, left - pad_x),
            max(0, top - pad_y),
            min(decoded.width, left + width + pad_x),
            min(decoded.height, top + height + pad_y),
        )
    )
    image.thumbnail((CROP_SIDE, CROP_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=88)
    return buffer.getvalue()
