"""Evidence of a match: the matched captures copied, byte for byte, out of the crawl's WARCs.

The crawl folder holds everyone's images and is deleted after the scan. Before that, the
records of a matched image and of the page that embeds it (response, request, metadata:
each its own gzip member) are copied unchanged into a WARC file of the alert's own, so
their record ids and digests still verify against what the alert and the ledger cite.
A matched image that also shows other people is kept whole: it is the evidence.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator


def copy_captures(warc_files: Iterable[Path], uris: set[str], target: Path) -> int:
    """Copy every record whose WARC-Target-URI is in `uris` into a new `target` file (mode
    0600); return how many were copied."""
    target.parent.mkdir(parents=True, exist_ok=True)
    copied = 0
    with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        for path in warc_files:
            with path.open("rb") as raw:
                for offset, length in _spans(raw, uris):
                    raw.seek(offset)
                    out.write(raw.read(length))
                    copied += 1
    return copied


def _spans(raw: BinaryIO, uris: set[str]) -> list[tuple[int, int]]:
    """(offset, length) of each wanted record's gzip member, found before any is copied."""
    records = ArchiveIterator(raw)
    spans = []
    for record in records:
        uri = record.rec_headers.get_header("WARC-Target-URI")
        records.read_to_end(record)
        if uri in uris:
            spans.append((records.get_record_offset(), records.get_record_length()))
    return spans
