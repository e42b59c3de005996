"""What one HTML page references: its title, links and images, read once and cheaply.

Two parts of faceledger read untrusted HTML for the same facts. The crawler
(`faceledger.crawl.extract`) needs the links to follow and the images a page publishes, with
alt text; the web-archive reader (`faceledger.ingest.warc`) needs every image URL a page
embeds so that an archived image can be linked to the page that shows it. They used to parse
pages separately and drifted (different srcset parsers, only one of them guarded against
pathological nesting). This module is the only place that parses HTML pages; what differs
between the callers is policy, passed as `RefRules`:

- srcset: the crawler fetches each photo once, at its best, so it takes the *largest*
  candidate (`largest_candidate`); the archive reader must recognise whichever resolution
  was captured, so it takes *every* candidate (`srcset_candidates`). Both split a srcset
  the way the HTML spec does: a URL may contain commas (`w_100,h_100/a.jpg 100w`), and a
  comma inside a parenthesised descriptor does not end the candidate.
- lazy loading (`data-src`, `data-srcset`, ...), which the crawler follows;
- plain links to image files (`<a href="x.jpg">`): an image to the crawler, a weaker,
  link-only claim to the archive reader;
- how a reference is normalised (`canonical`) and the caps on links, images and nodes.

Everything else is shared: `<base href>` resolution, the title, `img`, `picture > source`,
`og:image`/`twitter:image` metadata, deduplication and caps, and the hostile-markup guard.
selectolax's lexbor parser is used because it is fast and tolerant of broken markup; one lazy
traversal with caps keeps a page of a million tags from costing more than a normal one.

One pathology needs catching before parsing: lexbor (like the HTML spec's tree builder) scans
the stack of open elements for every block-level start tag, so `<div>` nested 200,000 deep
costs minutes. `parse_cost` estimates that work in one linear pass; a page over
`MAX_PARSE_WORK` is reported `hostile` and not parsed at all. The crawler refuses to archive
such a page, and the archive reader (which may read archives written by anyone) lets it
contribute no references instead of stalling ingestion.

Walking the tree stays linear too: a `picture`'s alt text is looked up once per `picture`
among its children, so `<picture><source>` nested or repeated 100,000 times costs one pass,
not one subtree search per `source`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_CANDIDATES",
    "MAX_PARSE_WORK",
    "MAX_TEXT",
    "ImageRef",
    "PageContent",
    "RefRules",
    "http_url",
    "largest_candidate",
    "parse_cost",
    "read_page",
    "srcset_candidates",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff")
"""Path endings that make a plain link a link to an image."""

MAX_TEXT = 500
"""Characters kept of a title or alt text, after collapsing whitespace."""

MAX_CANDIDATES = 1_000
"""Candidates `largest_candidate` reads from one srcset."""

MAX_PARSE_WORK = 20_000_000
"""Open-element stack steps `parse_cost` allows: ~0.1 s of parsing; real pages need <1%."""

_META_IMAGE_KEYS = {
    "og:image": "og:image",
    "og:image:url": "og:image",
    "og:image:secure_url": "og:image",
    "twitter:image": "twitter:image",
    "twitter:image:src": "twitter:image",
}
"""`meta` property/name values that name an image -> the `via` reported for them."""
_LAZY_SRC = ("data-src", "data-lazy-src", "data-original")
_SRCSET_URL = re.compile(r"[\s,]*([^\s,]\S*)")
_SRCSET_DESCRIPTORS = re.compile(r"(?:[^,(]|\([^)]*\)?)*")
"""Up to the comma that ends a candidate; commas inside parentheses do not end it."""
_DESCRIPTOR = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)([wx])$", re.IGNORECASE)
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


# --------------------------------------------------------------------------- results and rules


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image a page references: URL (as `RefRules.canonical` made it), alt text and which
    markup named it (`img`, `srcset`, `picture`, `og:image`, `twitter:image` or `link`)."""

    url: str
    alt: str | None
    via: str


@dataclass(frozen=True, slots=True)
class PageContent:
    """What one page yields: title, links (document order) and images it references."""

    title: str | None
    links: list[str]
    images: list[ImageRef]
    capped: bool = False
    """A cap was reached, or the page could not be parsed: there may be more references."""
    hostile: bool = False
    """The markup would cost too much to parse (see `parse_cost`); nothing was extracted."""


def http_url(url: str) -> str | None:
    """`url` without its fragment if it is http(s), else None (the default `canonical`)."""
    try:
        url = urldefrag(url).url
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


@dataclass(frozen=True, slots=True, kw_only=True)
class RefRules:
    """What a caller wants from a page; see the module docstring for why these differ.

    The caps are the caller's to choose; every other switch is off by default.
    """

    max_links: int
    max_images: int
    max_nodes: int | None = None
    """Elements walked at most; None walks until both other caps are reached."""
    every_candidate: bool = False
    """Every srcset candidate (and `src`) is an image, rather than only the largest."""
    lazy: bool = False
    """Read lazy-loading attributes: `data-src` & co. when `src` is missing or a `data:` URL,
    `data-srcset` when `srcset` is missing."""
    image_links: bool = False
    """A link whose path ends in an image extension is an image (via `link`), not a link."""
    canonical: Callable[[str], str | None] = http_url
    """Absolute URL -> the form stored and deduplicated, or None to drop the reference."""


# --------------------------------------------------------------------------- reading a page


def read_page(html: bytes | str, page_url: str, rules: RefRules) -> PageContent:
    """Title, links and images of `html` served at `page_url`; never raises on bad markup.

    Bytes are decoded by the parser (BOM, `<meta charset>`, else UTF-8). A page over
    `MAX_PARSE_WORK` comes back `hostile` and empty; one the parser fails on comes back
    empty and `capped`.
    """
    raw = html if isinstance(html, bytes) else html.encode("utf-8", "replace")
    if parse_cost(raw) > MAX_PARSE_WORK:
        return PageContent(None, [], [], capped=True, hostile=True)
    try:
        tree = LexborHTMLParser(html, encoding=isinstance(html, bytes))
        walker = _Walker(_base_url(tree, page_url), rules)
        capped = walker.walk(tree.root)
    except Exception:  # a page the parser chokes on yields nothing, not a crash
        return PageContent(None, [], [], capped=True)
    return PageContent(_title(tree), list(walker.links), list(walker.images.values()), capped)


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


def _base_url(tree: LexborHTMLParser, page_url: str) -> str:
    """The document's base URL: the first `<base href>`, resolved against the page URL."""
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
    """Whitespace collapsed and capped at `MAX_TEXT`, or None if nothing is left."""
    if not value:
        return None
    text = " ".join(value.split())[:MAX_TEXT]
    return text or None


class _Walker:
    """Collects deduplicated, resolved references while the tree is walked once."""

    def __init__(self, base: str, rules: RefRules) -> None:
        self.base = base
        self.rules = rules
        self.links: dict[str, None] = {}
        self.images: dict[str, ImageRef] = {}
        self._picture_alts: dict[int, str | None] = {}

    def walk(self, root: LexborNode | None) -> bool:
        """Visit the tree under `root` in document order; True if a cap cut the walk short."""
        if root is None:
            return False
        max_nodes = self.rules.max_nodes
        for count, node in enumerate(root.traverse()):
            if (max_nodes is not None and count >= max_nodes) or self._full:
                return True
            self._visit(node)
        return False

    @property
    def _full(self) -> bool:
        return self._links_full and self._images_full

    @property
    def _links_full(self) -> bool:
        return len(self.links) >= self.rules.max_links

    @property
    def _images_full(self) -> bool:
        return len(self.images) >= self.rules.max_images

    def _visit(self, node: LexborNode) -> None:
        tag = node.tag
        if tag == "a":
            self._anchor(node)
        elif self._images_full:
            return
        elif tag == "img":
            self._img(node)
        elif tag == "source":
            self._source(node)
        elif tag == "meta":
            attrs = node.attributes
            key = (attrs.get("property") or attrs.get("name") or "").strip().lower()
            if key in _META_IMAGE_KEYS:
                self._image(attrs.get("content"), None, _META_IMAGE_KEYS[key])

    def _anchor(self, node: LexborNode) -> None:
        image_links = self.rules.image_links
        if self._links_full and (self._images_full or not image_links):
            return
        url = self._resolve(node.attributes.get("href"))
        if url is None:
            return
        if image_links and urlsplit(url).path.lower().endswith(IMAGE_EXTENSIONS):
            if self._wants_image(url):  # the anchor's text is only read for a new image
                title = node.attributes.get("title") or node.text(deep=True)
                self.images[url] = ImageRef(url, _text(title), "link")
        elif not self._links_full:
            self.links[url] = None

    def _img(self, node: LexborNode) -> None:
        attrs = node.attributes
        src = attrs.get("src")
        srcset = attrs.get("srcset")
        if self.rules.lazy:
            if not src or src.strip().lower().startswith("data:"):
                src = next((attrs[k] for k in _LAZY_SRC if attrs.get(k)), src)
            srcset = srcset or attrs.get("data-srcset")
        alt = _text(attrs.get("alt"))
        if self.rules.every_candidate:
            self._image(src, alt, "img")
            for url, _ in srcset_candidates(srcset, self.rules.max_images):
                self._image(url, alt, "srcset")
        else:
            best = largest_candidate(srcset, src)
            self._image(best, alt, "srcset" if best != src else "img")

    def _source(self, node: LexborNode) -> None:
        picture = node.parent
        if picture is None or picture.tag != "picture":
            return  # video/audio sources are not images
        attrs = node.attributes
        srcset = attrs.get("srcset")
        if self.rules.lazy:
            srcset = srcset or attrs.get("data-srcset")
        alt = self._picture_alt(picture)
        if self.rules.every_candidate:
            for url, _ in srcset_candidates(srcset, self.rules.max_images):
                self._image(url, alt, "picture")
        else:
            self._image(largest_candidate(srcset, None), alt, "picture")

    def _picture_alt(self, picture: LexborNode) -> str | None:
        """Alt text of the picture's `img` child, found once per picture (linear overall)."""
        key = picture.mem_id
        if key not in self._picture_alts:
            img = next((child for child in picture.iter() if child.tag == "img"), None)
            self._picture_alts[key] = _text(img.attributes.get("alt")) if img else None
        return self._picture_alts[key]

    def _image(self, ref: str | None, alt: str | None, via: str) -> None:
        if self._images_full:
            return
        url = self._resolve(ref)
        if url is not None and self._wants_image(url):
            self.images[url] = ImageRef(url, alt, via)

    def _wants_image(self, url: str) -> bool:
        return url not in self.images and not self._images_full

    def _resolve(self, ref: str | None) -> str | None:
        if not ref or not ref.strip():
            return None
        try:
            absolute = urljoin(self.base, ref.strip())
        except ValueError:
            return None
        return self.rules.canonical(absolute)


# --------------------------------------------------------------------------- srcset


def srcset_candidates(srcset: str | None, limit: int = MAX_CANDIDATES) -> list[tuple[str, str]]:
    """(url, first descriptor or "") of up to `limit` candidates, split as the HTML spec does.

    A URL runs to the next whitespace, so it may contain commas; trailing commas end it with
    no descriptors. Otherwise descriptors run to the next comma outside parentheses.
    """
    found: list[tuple[str, str]] = []
    if not srcset:
        return found
    position = 0
    while len(found) < limit:
        match = _SRCSET_URL.match(srcset, position)
        if match is None:
            break
        url, position = match.group(1), match.end()
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            descriptors = _SRCSET_DESCRIPTORS.match(srcset, position)
            end = descriptors.end() if descriptors else len(srcset)
            tokens = srcset[position:end].split()
            descriptor = tokens[0] if tokens else ""
            position = end
        found.append((url, descriptor))
    return found


def largest_candidate(srcset: str | None, src: str | None) -> str | None:
    """The srcset candidate with the largest width (`w`) or density (`x`), else `src`.

    As in the HTML spec, `src` counts as a 1x candidate unless the srcset uses widths or
    already has a 1x entry. Malformed descriptors are read as 1x rather than rejected.
    """
    widths: list[tuple[float, str]] = []
    densities: list[tuple[float, str]] = []
    for url, descriptor in srcset_candidates(srcset):
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
