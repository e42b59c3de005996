"""What the crawler takes from one HTML page: links to follow and images to fetch.

Parsing lives in `faceledger.html_refs`, shared with the web-archive reader so the two cannot
drift; this module is the crawler's policy over it. An image is only fetched when an
in-scope page references it, so the crawler wants, per page:

- `a[href]` links to follow, capped at `MAX_LINKS`;
- images with their alt text, capped at `MAX_IMAGES`: `img` (`src`, and of `srcset` only the
  largest candidate: the same photo at several resolutions should be fetched once, at its
  best), `picture > source` srcsets, lazy-loading `data-src`/`data-srcset`,
  `og:image`/`twitter:image` metadata, and plain links to image files;
- at most `MAX_NODES` elements walked, so a page of a million tags costs no more than a
  normal one.

A page whose nesting would make the parser quadratic (see `parse_cost`) comes back
`hostile`; the crawler refuses to archive it.
"""

from __future__ import annotations

from faceledger.html_refs import (
    IMAGE_EXTENSIONS,
    ImageRef,
    PageContent,
    RefRules,
    largest_candidate,
    parse_cost,
    read_page,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageRef",
    "PageContent",
    "extract",
    "largest_candidate",
    "parse_cost",
]

MAX_LINKS = 5_000
MAX_IMAGES = 1_000
MAX_NODES = 200_000


def extract(
    html: bytes | str,
    page_url: str,
    *,
    max_links: int = MAX_LINKS,
    max_images: int = MAX_IMAGES,
    max_nodes: int = MAX_NODES,
) -> PageContent:
    """Title, links and images of `html` served at `page_url`; never raises on bad markup."""
    rules = RefRules(
        max_links=max_links, max_images=max_images, max_nodes=max_nodes, lazy=True, image_links=True
    )
    return read_page(html, page_url, rules)
