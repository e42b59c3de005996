"""The shared HTML page reader: srcset splitting, base href, metadata images, caps, guards.

Crawler- and archive-level behaviour is tested in test_crawl.py and test_warc.py; these tests
pin the parsing both rely on, under both callers' rules.
"""

from __future__ import annotations

import time

import pytest

from faceledger.html_refs import (
    MAX_PARSE_WORK,
    RefRules,
    largest_candidate,
    parse_cost,
    read_page,
    srcset_candidates,
)

CRAWLER = RefRules(max_links=100, max_images=100, max_nodes=200_000, lazy=True, image_links=True)
ARCHIVE = RefRules(max_links=100, max_images=100, every_candidate=True)


def image_urls(html: str, rules: RefRules = ARCHIVE, page: str = "http://h/dir/p.html") -> list:
    return [ref.url for ref in read_page(html, page, rules).images]


# --------------------------------------------------------------------------- srcset


@pytest.mark.parametrize(
    ("srcset", "expected"),
    [
        ("a.jpg", [("a.jpg", "")]),
        ("a.jpg 1x, b.jpg 2x", [("a.jpg", "1x"), ("b.jpg", "2x")]),
        ("w_100,h_100/a.jpg 100w, b.jpg 400w", [("w_100,h_100/a.jpg", "100w"), ("b.jpg", "400w")]),
        ("a.jpg, b.jpg 2x", [("a.jpg", ""), ("b.jpg", "2x")]),  # trailing comma ends a URL
        ("a.jpg,b.jpg 2x", [("a.jpg,b.jpg", "2x")]),  # a URL runs to whitespace
        ("  ,, a.jpg\n\t480w ,\n b.jpg 2x,", [("a.jpg", "480w"), ("b.jpg", "2x")]),
        ("a.jpg 1x (x, y), b.jpg 2x", [("a.jpg", "1x"), ("b.jpg", "2x")]),  # comma in parens
        ("a.jpg 1x (((, b.jpg", [("a.jpg", "1x")]),  # an unclosed paren runs to the end
        (", , ,", []),
        ("", []),
        (None, []),
    ],
)
def test_srcset_is_split_like_the_spec(srcset: str | None, expected: list) -> None:
    assert srcset_candidates(srcset) == expected


def test_srcset_candidates_are_capped() -> None:
    srcset = ", ".join(f"i{n}.jpg {n}w" for n in range(50))
    assert [url for url, _ in srcset_candidates(srcset, limit=3)] == ["i0.jpg", "i1.jpg", "i2.jpg"]


def test_largest_candidate() -> None:
    assert largest_candidate("a.jpg 300w, b.jpg 900w, c.jpg 600w", "s.jpg") == "b.jpg"
    assert largest_candidate("w_1,h_1/a.jpg 10w, z.jpg 20w", None) == "z.jpg"
    assert largest_candidate("m.jpg 2x", "s.jpg") == "m.jpg"
    assert largest_candidate("m.jpg 0.5x", "s.jpg") == "s.jpg"  # src is the 1x candidate
    assert largest_candidate("a.jpg 1x", "s.jpg") == "a.jpg"  # unless srcset has a 1x
    assert largest_candidate("a.jpg bogus, b.jpg", None) == "a.jpg"  # malformed reads as 1x
    assert largest_candidate(None, " s.jpg ") == "s.jpg"
    assert largest_candidate("", None) is None


def test_every_candidate_vs_largest_under_each_callers_rules() -> None:
    html = '<img src="s.jpg" srcset="w_9,h_9/m.jpg 2x, l.jpg 3x" alt=" An  alt ">'

    assert image_urls(html) == [
        "http://h/dir/s.jpg",
        "http://h/dir/w_9,h_9/m.jpg",
        "http://h/dir/l.jpg",
    ]
    (ref,) = read_page(html, "http://h/dir/p.html", CRAWLER).images
    assert (ref.url, ref.alt, ref.via) == ("http://h/dir/l.jpg", "An alt", "srcset")


# --------------------------------------------------------------------------- references


def test_base_href_resolves_relative_references() -> None:
    html = """<head><base href="https://cdn.example.org/assets/"><title> A
        title </title></head><body><img src="face.jpg"><a href="/about">about</a>
        <img src="//other.example.net/x.jpg"><img src="https://abs.example/y.jpg#frag"></body>"""

    content = read_page(html, "http://h/dir/p.html", CRAWLER)

    assert content.title == "A title"
    assert content.links == ["https://cdn.example.org/about"]
    assert [ref.url for ref in content.images] == [
        "https://cdn.example.org/assets/face.jpg",
        "https://other.example.net/x.jpg",
        "https://abs.example/y.jpg",
    ]


@pytest.mark.parametrize("href", ["", "   ", "javascript:alert(1)", "data:text/html,hi"])
def test_base_href_that_is_not_http_is_ignored(href: str) -> None:
    html = f'<base href="{href}"><img src="a.jpg">'
    assert image_urls(html) == ["http://h/dir/a.jpg"]


def test_og_and_twitter_images_picture_sources_and_non_http_refs() -> None:
    html = """<head>
        <meta property="og:image" content="/og.jpg">
        <meta property="OG:IMAGE:SECURE_URL" content="https://s.example/og2.jpg">
        <meta name="twitter:image:src" content="tw.jpg">
        <meta name="description" content="not-an-image.jpg">
        </head><body>
        <picture><source srcset="p1.webp 1x, p2.webp 2x"><img src="p.jpg" alt="Pic"></picture>
        <video><source srcset="v.jpg"></video>
        <img src="data:image/gif;base64,R0lG"><img src="mailto:x@y"><img src="  ">
        </body>"""

    crawled = {ref.url: ref for ref in read_page(html, "http://h/dir/p.html", CRAWLER).images}

    assert {url: (ref.via, ref.alt) for url, ref in crawled.items()} == {
        "http://h/og.jpg": ("og:image", None),
        "https://s.example/og2.jpg": ("og:image", None),
        "http://h/dir/tw.jpg": ("twitter:image", None),
        "http://h/dir/p2.webp": ("picture", "Pic"),
        "http://h/dir/p.jpg": ("img", "Pic"),
    }
    assert image_urls(html) == [
        "http://h/og.jpg",
        "https://s.example/og2.jpg",
        "http://h/dir/tw.jpg",
        "http://h/dir/p1.webp",
        "http://h/dir/p2.webp",
        "http://h/dir/p.jpg",
    ]


def test_lazy_attributes_and_image_links_follow_the_rules() -> None:
    html = """<img src="data:image/gif;base64,R0lG" data-src="lazy.jpg">
        <img data-srcset="d1.jpg 1x, d2.jpg 2x">
        <a href="photo.JPG" title="Full size">x</a><a href="next.html#top">next</a>"""

    content = read_page(html, "http://h/", CRAWLER)
    assert {(ref.url, ref.via) for ref in content.images} == {
        ("http://h/lazy.jpg", "img"),
        ("http://h/d2.jpg", "srcset"),
        ("http://h/photo.JPG", "link"),
    }
    assert content.links == ["http://h/next.html"]

    archived = read_page(html, "http://h/", ARCHIVE)
    assert archived.images == []  # no lazy attributes, and links stay links
    assert archived.links == ["http://h/photo.JPG", "http://h/next.html"]


def test_canonical_form_is_the_callers() -> None:
    rules = RefRules(
        max_links=10,
        max_images=10,
        every_candidate=True,
        canonical=lambda url: url.upper() if "skip" not in url else None,
    )
    content = read_page("<img src=a.jpg><img src=A.JPG><img src=skip.jpg>", "http://h/", rules)
    assert [ref.url for ref in content.images] == ["HTTP://H/A.JPG"]  # deduplicated by form


# --------------------------------------------------------------------------- caps and guards


def test_caps_on_links_images_and_nodes() -> None:
    many = "".join(f'<a href="/p{n}">x</a><img src="/i{n}.jpg">' for n in range(300))

    content = read_page(many, "http://h/", CRAWLER)
    assert len(content.links) == 100 and len(content.images) == 100
    assert content.links[0] == "http://h/p0" and content.capped

    few_nodes = RefRules(max_links=1000, max_images=1000, max_nodes=50, lazy=True, image_links=True)
    content = read_page(many, "http://h/", few_nodes)
    assert content.capped and len(content.links) + len(content.images) < 50

    small = read_page("<a href=/a>a</a><img src=/b.jpg>", "http://h/", CRAWLER)
    assert not small.capped


def test_deeply_nested_page_is_refused_quickly() -> None:
    nested = b"<div>" * 1_000_000 + b'<img src="deep.jpg">'  # minutes for the parser
    assert parse_cost(nested) > MAX_PARSE_WORK

    for rules in (CRAWLER, ARCHIVE):
        started = time.monotonic()
        content = read_page(nested, "http://h/", rules)
        assert time.monotonic() - started < 5  # generous: the estimate is one linear pass
        assert content.hostile and content.images == [] and content.links == []


def test_ordinary_nesting_is_not_hostile() -> None:
    page = b"<div><ul>" + b"<li><p>x</p></li>" * 10_000 + b"</ul></div>" + b"<img src=a.jpg>"
    assert parse_cost(page) < MAX_PARSE_WORK / 100
    assert [ref.url for ref in read_page(page, "http://h/", CRAWLER).images] == ["http://h/a.jpg"]


@pytest.mark.parametrize("nested", [True, False], ids=["nested", "repeated"])
def test_many_picture_sources_cost_one_pass(nested: bool) -> None:
    # The picture's alt is looked up once per picture, not by a subtree search per source.
    unit = b"<picture><source srcset=a.jpg>"
    html = unit * 40_000 if nested else b"<picture>" + b"<source srcset=a.jpg>" * 40_000

    started = time.monotonic()
    content = read_page(html + b"<img src=b.jpg alt=B>", "http://h/", CRAWLER)

    assert time.monotonic() - started < 5
    assert [ref.url for ref in content.images] == ["http://h/a.jpg", "http://h/b.jpg"]


def test_garbage_and_empty_input_never_raise() -> None:
    garbage = bytes(range(256)) * 100 + b"<a href='/ok'>"
    assert read_page(garbage, "http://h/", CRAWLER).links == ["http://h/ok"]
    empty = read_page(b"", "http://h/", ARCHIVE)
    assert (empty.title, empty.links, empty.images) == (None, [], [])
