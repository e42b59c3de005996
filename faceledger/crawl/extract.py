"""Links and images out of one HTML page, bounded so hostile markup costs little.

The crawler needs two things from a page: the links to follow (`a[href]`) and the images it
publishes, with their alt text, because an image is only fetched when an in-scope page
references it. Images come from `img` (`src`, and of `srcset` only the largest candidate:
the same photo at several resolutions should be fetched once, at its best), `picture >
source` srcsets, lazy-loading `data-src`/`data-srcset`, `og:image`/`twitter:image` metadata
and plain links to image files. selectolax's lexbor parser is used because it is fast and
tolerant of broken markup; caps on nodes walked, links and images keep a page of a million
tags from costing more than a normal one.

One pathology needs catching before parsing: lexbor (like the HTML spec's tree builder) scans
the stack of open elements for every block-level start tag, so `<div>` nested 200,000 deep
costs minutes. `parse_cost` estimates that work in one linear pass; a page over
`MAX_PARSE_WORK` is reported `hostile` and not parsed (the crawler refuses to archive it, so
it cannot stall the WARC ingester, which parses archived pages the same way).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageRef",
    "PageContent",
    "extract",
    "largest_candidate",
    "parse_cost",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff")
MAX_LINKS = 5_000
MAX_IMAGES = 1_000
MAX_NODES = 200_000
MAX_TEXT = 500
MAX_PARSE_WORK = 20_000_000
"""Open-element stack steps `parse_cost` allows: ~0.1 s of parsing; real pages need <1%."""

_META_KEYS = {
    "og:image": "og:image",
    "og:image:url": "og:image",
    "og:image:secure_url": "og:image",
    "twitter:image": "twitter:image",
    "twitter:image:src": "twitter:image",
}
_SRCSET_URL = re.compile(r"[\s,]*([^\s,][^\s]*)")
_DESCRIPTOR = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)([wx])$", re.IGNORECASE)
_LAZY_SRC = ("data-src", "data-lazy-src", "data-original")
_TAG = re.compile(rb"<(/?)([a-zA-Z][a-zA-Z0-9-]{0,30})")
_NO_DEPTH = frozenset(
    b"area base br col embed hr img input link meta param source track wbr"
    b" p li dt dd option optgroup tr td th rb rt rp thead tbody tfoot colgroup caption".split()
)
"""Void elements and ones a sibling closes implicitly: they never deepen the stack."""
_BLOCK = frozenset(
    b"address article aside blockquote center details dialog dir div dl fieldset figcaption"
    b" figure footer header hgroup main menu nav ol search section summary ul h1 h2 h3 h4 h5"
    b" h6 pre listing form table xmp".split()
)
"""Start tags that make the parser look for a `p` to close, walking the open elements."""


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image a page references: absolute URL, alt text and which markup named it."""

    url: str
    alt: str | None
    via: str


@dataclass(frozen=True, slots=True)
class PageContent:
    """What one page yields: title, links to follow and images it publishes."""

    title: str | None
    links: list[str]
    images: list[ImageRef]
    capped: bool = False
    hostile: bool = False
    """The markup would cost too much to parse (see `parse_cost`); nothing was extracted."""


def parse_cost(html: bytes) -> int:
    """Estimate the parser's open-element stack work for `html`, in one linear pass."""
    depth = work = 0
    for match in _TAG.finditer(html):
        name = match.group(2).lower()
        if name in _NO_DEPTH:
            continue
        if match.group(1):
            depth = max(0, depth - 1)
            continue
        if name in _BLOCK:
            work += depth
        depth += 1
    return work


def extract(
    html: bytes | str,
    page_url: str,
    *,
    max_links: int = MAX_LINKS,
    max_images: int = MAX_IMAGES,
    max_nodes: int = MAX_NODES,
) -> PageContent:
    """Title, links and images of `html` served at `page_url`; never raises on bad markup."""
    raw = html if isinstance(html, bytes) else html.encode("utf-8", "replace")
    if parse_cost(raw) > MAX_PARSE_WORK:
        return PageContent(None, [], [], capped=True, hostile=True)
    try:
        tree = LexborHTMLParser(html, encoding=isinstance(html, bytes))
    except Exception:  # a page the parser cannot take yields nothing, not a crash
        return PageContent(None, [], [], capped=True)
    walker = _Walker(_base_url(tree, page_url), max_links, max_images)
    capped = False
    root = tree.root
    if root is not None:
        for count, node in enumerate(root.traverse()):
            if count >= max_nodes or walker.full:
                capped = True
                break
            walker.visit(node)
    return PageContent(_title(tree), list(walker.links), list(walker.images.values()), capped)


class _Walker:
    """Collects deduplicated, resolved references while the tree is walked once."""

    def __init__(self, base: str, max_links: int, max_images: int) -> None:
        self.base = base
        self.max_links = max_links
        self.max_images = max_images
        self.links: dict[str, None] = {}
        self.images: dict[str, ImageRef] = {}

    @property
    def full(self) -> bool:
        return len(self.links) >= self.max_links and len(self.images) >= self.max_images

    def visit(self, node: LexborNode) -> None:
        tag = node.tag
        if tag == "a":
            self._anchor(node)
        elif tag == "img":
            attrs = node.attributes
            src = attrs.get("src")
            if not src or src.strip().lower().startswith("data:"):
                src = next((attrs[k] for k in _LAZY_SRC if attrs.get(k)), src)
            srcset = attrs.get("srcset") or attrs.get("data-srcset")
            best = largest_candidate(srcset, src)
            self._image(best, _text(attrs.get("alt")), "srcset" if best != src else "img")
        elif tag == "source":
            parent = node.parent
            if parent is not None and parent.tag == "picture":
                attrs = node.attributes
                best = largest_candidate(attrs.get("srcset") or attrs.get("data-srcset"), None)
                img = parent.css_first("img")
                self._image(best, _text(img.attributes.get("alt")) if img else None, "picture")
        elif tag == "meta":
            attrs = node.attributes
            key = (attrs.get("property") or attrs.get("name") or "").strip().lower()
            if key in _META_KEYS:
                self._image(attrs.get("content"), None, _META_KEYS[key])

    def _anchor(self, node: LexborNode) -> None:
        url = self._resolve(node.attributes.get("href"))
        if url is None:
            return
        if urlsplit(url).path.lower().endswith(IMAGE_EXTENSIONS):
            title = node.attributes.get("title") or node.text(deep=True)
            self._image(url, _text(title), "link")
        elif len(self.links) < self.max_links:
            self.links[url] = None

    def _image(self, ref: str | None, alt: str | None, via: str) -> None:
        url = self._resolve(ref)
        if url is None or url in self.images or len(self.images) >= self.max_images:
            return
        self.images[url] = ImageRef(url, alt, via)

    def _resolve(self, ref: str | None) -> str | None:
        if not ref or not ref.strip():
            return None
        try:
            url = urldefrag(urljoin(self.base, ref.strip())).url
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            return None
        return url if scheme in ("http", "https") else None


def largest_candidate(srcset: str | None, src: str | None) -> str | None:
    """The srcset candidate with the largest width (`w`) or density (`x`), else `src`.

    As in the HTML spec, `src` counts as a 1x candidate unless the srcset uses widths or
    already has a 1x entry. Malformed descriptors are read as 1x rather than rejected.
    """
    widths: list[tuple[float, str]] = []
    densities: list[tuple[float, str]] = []
    for url, descriptor in _candidates(srcset or ""):
        match = _DESCRIPTOR.match(descriptor)
        if match and match.group(2).lower() == "w":
            widths.append((float(match.group(1)), url))
        else:
            densities.append((float(match.group(1)) if match else 1.0, url))
    if widths:
        return max(widths, key=lambda c: c[0])[1]
    if src and src.strip() and not any(d == 1.0 for d, _ in densities):
        densities.append((1.0, src.strip()))
    return max(densities, key=lambda c: c[0])[1] if densities else None


def _candidates(srcset: str) -> list[tuple[str, str]]:
    """(url, descriptor) pairs of a srcset; commas inside URLs are kept, as the spec says."""
    found: list[tuple[str, str]] = []
    position = 0
    while len(found) < MAX_IMAGES:
        match = _SRCSET_URL.match(srcset, position)
        if match is None:
            break
        url, position = match.group(1), match.end()
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            end = srcset.find(",", position)
            end = len(srcset) if end < 0 else end
            descriptor = srcset[position:end].strip().split(" ")[0] if position < end else ""
            position = end + 1
        if url:
            found.append((url, descriptor))
    return found


def _base_url(tree: LexborHTMLParser, page_url: str) -> str:
    node = tree.css_first("base[href]")
    href = (node.attributes.get("href") or "").strip() if node else ""
    if not href:
        return page_url
    try:
        base = urljoin(page_url, href)
    except ValueError:
        return page_url
    return base if urlsplit(base).scheme.lower() in ("http", "https") else page_url


def _title(tree: LexborHTMLParser) -> str | None:
    try:
        node = tree.css_first("title")
    except Exception:  # never let the title cost the page
        return None
    return _text(node.text()) if node is not None else None


def _text(value: str | None) -> str | None:
    if not value:
        return None
    text = " ".join(value.split())[:MAX_TEXT]
    return text or None
