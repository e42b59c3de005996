"""Types shared across layers: what every image source yields (files, archives, crawls).

They sit at the bottom of the layering, beside settings, so the store can record an item
and a crawl or a watch round can produce one without importing the ingest package.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One candidate image with its provenance.

    `image_url` is a `file://` URL for files and the captured URL for web archives;
    `page_url` is the page that embeds the image, or None where there is none.
    A source that cannot read an item yields it with `data=None` and `error` set, so the
    job counts the error and goes on.
    """

    image_url: str
    data: bytes | None
    page_url: str | None = None
    page_title: str | None = None
    captured_at: datetime | None = None
    http_status: int | None = None
    content_type: str | None = None
    warc_file: str | None = None
    warc_record_id: str | None = None
    warc_digest: str | None = None
    error: str | None = None
