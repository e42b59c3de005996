"""Reading web archives: image detection, page linking, provenance and damaged files.

Archives are built per test with `warc_fixtures` (warcio's own writer; ARC by hand) and
images are tiny Pillow renders, so every expectation is about bytes the test wrote.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image
from warc_fixtures import Capture, write_arc, write_warc

from faceledger.faces.decode import sniff_format
from faceledger.ingest.warc import MAX_REFS_PER_PAGE, iter_warc
from faceledger.types import SourceItem

SITE = "http://example.com"
CAPTURED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def picture(fmt: str = "JPEG", color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buffer, fmt)
    return buffer.getvalue()


JPEG = picture("JPEG")
PNG = picture("PNG", (30, 30, 200))


def images_of(path: Path, **kwargs: int) -> list[SourceItem]:
    return list(iter_warc(path, **kwargs))


def by_url(items: list[SourceItem]) -> dict[str, SourceItem]:
    return {item.image_url: item for item in items}


def sha1_b32(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


# --------------------------------------------------------------------------- images and fields


@pytest.mark.parametrize("compressed", [True, False], ids=["warc.gz", "warc"])
def test_yields_each_image_with_its_bytes_and_provenance(tmp_path: Path, compressed: bool) -> None:
    name = "crawl.warc.gz" if compressed else "crawl.warc"
    written = write_warc(
        tmp_path / name,
        images=[(f"{SITE}/a.jpg", JPEG, "image/jpeg"), (f"{SITE}/b.png", PNG, "image/png")],
        gzip=compressed,
    )

    items = by_url(images_of(written.path))

    assert set(items) == {f"{SITE}/a.jpg", f"{SITE}/b.png"}
    jpeg = items[f"{SITE}/a.jpg"]
    assert jpeg.data == JPEG
    assert items[f"{SITE}/b.png"].data == PNG
    assert jpeg.error is None
    assert jpeg.http_status == 200
    assert jpeg.content_type == "image/jpeg"
    assert jpeg.captured_at == CAPTURED
    assert jpeg.captured_at is not None and jpeg.captured_at.tzinfo is not None
    assert jpeg.warc_file == name
    assert jpeg.warc_record_id == written.record_ids[f"{SITE}/a.jpg"]
    assert jpeg.warc_record_id.startswith("<urn:uuid:")
    assert jpeg.warc_digest == written.payload_digests[f"{SITE}/a.jpg"] == sha1_b32(JPEG)
    assert jpeg.page_url is None and jpeg.page_title is None


def test_chunked_and_gzip_transfer_encodings_are_decoded(tmp_path: Path) -> None:
    path = write_warc(
        tmp_path / "enc.warc.gz",
        captures=[
            Capture(f"{SITE}/chunked.jpg", JPEG, "image/jpeg", chunked=True),
            Capture(f"{SITE}/gz.png", PNG, "image/png", gzip_encoded=True),
            Capture(f"{SITE}/both.jpg", JPEG, "image/jpeg", chunked=True, gzip_encoded=True),
        ],
    ).path

    items = by_url(images_of(path))

    assert items[f"{SITE}/chunked.jpg"].data == JPEG
    assert items[f"{SITE}/gz.png"].data == PNG
    assert items[f"{SITE}/both.jpg"].data == JPEG


def test_resource_records_are_images_too(tmp_path: Path) -> None:
    path = write_warc(
        tmp_path / "res.warc.gz", resources=[("file:///scan/photo.png", PNG, "image/png")]
    ).path

    (item,) = images_of(path)

    assert item.image_url == "file:///scan/photo.png"
    assert item.data == PNG
    assert item.http_status is None
    assert item.content_type == "image/png"
    assert item.warc_digest == sha1_b32(PNG)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_every_supported_format_is_sniffed(tmp_path: Path, fmt: str) -> None:
    body = picture(fmt)
    assert sniff_format(body[:64]) == fmt
    path = write_warc(
        tmp_path / "fmt.warc.gz", images=[(f"{SITE}/x", body, "application/octet-stream")]
    ).path

    (item,) = images_of(path)

    assert item.data == body


def test_payloads_that_merely_start_like_an_image_are_skipped(tmp_path: Path) -> None:
    # The decoder's own sniffing decides, so nothing is yielded that it would call not_an_image.
    riff_not_webp = b"RIFF\x10\x00\x00\x00WEBPJUNK" + bytes(8)
    path = write_warc(
        tmp_path / "fake.warc.gz",
        images=[
            (f"{SITE}/bmw.bmp", b"BMW owners club - photos of my car", "image/bmp"),
            (f"{SITE}/fake.webp", riff_not_webp, "image/webp"),
            (f"{SITE}/empty.jpg", b"", "image/jpeg"),
            (f"{SITE}/real.jpg", JPEG, "image/jpeg"),
        ],
    ).path

    assert [item.image_url for item in images_of(path)] == [f"{SITE}/real.jpg"]


# --------------------------------------------------------------------------- what is skipped


def test_html_responses_are_not_yielded(tmp_path: Path) -> None:
    path = write_warc(
        tmp_path / "p.warc.gz",
        pages=[(f"{SITE}/", "<html><body><img src='a.jpg'></body></html>")],
        images=[(f"{SITE}/a.jpg", JPEG, "image/jpeg")],
    ).path

    assert [item.image_url for item in images_of(path)] == [f"{SITE}/a.jpg"]


def test_text_labelled_as_jpeg_is_skipped_not_an_error(tmp_path: Path) -> None:
    """Decision: a non-image body is simply not an image (soft 404s, error pages served as
    image/jpeg are common); it is skipped silently rather than counted as an error."""
    path = write_warc(
        tmp_path / "lie.warc.gz",
        images=[
            (f"{SITE}/fake.jpg", b"<html>Not found</html>", "image/jpeg"),
            (f"{SITE}/empty.jpg", b"", "image/jpeg"),
        ],
    ).path

    assert images_of(path) == []


def test_jpeg_bytes_labelled_as_html_are_yielded(tmp_path: Path) -> None:
    path = write_warc(
        tmp_path / "mislabel.warc.gz", images=[(f"{SITE}/photo", JPEG, "text/html; charset=utf-8")]
    ).path

    (item,) = images_of(path)

    assert item.data == JPEG
    assert item.content_type == "text/html; charset=utf-8"


@pytest.mark.parametrize("status", [404, 500, 301, 304])
def test_non_2xx_image_responses_are_skipped(tmp_path: Path, status: int) -> None:
    path = write_warc(
        tmp_path / "status.warc.gz",
        captures=[Capture(f"{SITE}/gone.jpg", JPEG, "image/jpeg", status=status)],
    ).path

    assert images_of(path) == []


def test_revisit_and_request_records_are_skipped(tmp_path: Path) -> None:
    written = write_warc(
        tmp_path / "dedup.warc.gz",
        images=[(f"{SITE}/a.jpg", JPEG, "image/jpeg")],
        revisits=[f"{SITE}/a.jpg", f"{SITE}/elsewhere.jpg"],
        requests=True,
    )

    items = images_of(written.path)

    assert [(item.image_url, item.warc_record_id) for item in items] == [
        (f"{SITE}/a.jpg", written.record_ids[f"{SITE}/a.jpg"])
    ]


# --------------------------------------------------------------------------- linking to pages


def linked(tmp_path: Path, pages: list[tuple[str, str]], urls: list[str], **kwargs: bool) -> dict:
    """page_url/page_title per image URL for an archive of `pages` plus a JPEG at each URL."""
    path = write_warc(
        tmp_path / "site.warc.gz",
        pages=pages,
        images=[(url, JPEG, "image/jpeg") for url in urls],
        **kwargs,
    ).path
    return {item.image_url: (item.page_url, item.page_title) for item in images_of(path)}


def test_relative_src_is_linked_with_the_page_title(tmp_path: Path) -> None:
    html = """<html><head><title>  Team
        photos </title></head><body>
        <img src="img/one.jpg"><img src="../two.jpg"><img src="/three.jpg#large">
        <img src="//cdn.example.net/four.jpg"></body></html>"""
    page = f"{SITE}/about/team.html#top"

    links = linked(
        tmp_path,
        [(page, html)],
        [
            f"{SITE}/about/img/one.jpg",
            f"{SITE}/two.jpg",
            f"{SITE}/three.jpg",
            "http://cdn.example.net/four.jpg",
            f"{SITE}/orphan.jpg",
        ],
    )

    expected = (f"{SITE}/about/team.html", "Team photos")
    assert links[f"{SITE}/about/img/one.jpg"] == expected
    assert links[f"{SITE}/two.jpg"] == expected
    assert links[f"{SITE}/three.jpg"] == expected
    assert links["http://cdn.example.net/four.jpg"] == expected
    assert links[f"{SITE}/orphan.jpg"] == (None, None)


def test_srcset_picture_og_and_twitter_images_are_linked(tmp_path: Path) -> None:
    html = """<html><head><title>Gallery</title>
        <meta property="og:image" content="https://example.com/og.jpg">
        <meta name="twitter:image" content="/tw.jpg">
        </head><body>
        <img src="small.jpg" srcset="medium.jpg 2x, large.jpg 3x">
        <img srcset="w_100,h_100/crop.jpg 100w, tall.jpg 400w">
        <picture><source srcset="pic.webp" type="image/webp"><img src="pic.jpg"></picture>
        <video><source src="clip.jpg"></video>
        </body></html>"""
    urls = [
        "https://example.com/og.jpg",
        f"{SITE}/tw.jpg",
        f"{SITE}/g/small.jpg",
        f"{SITE}/g/medium.jpg",
        f"{SITE}/g/large.jpg",
        f"{SITE}/g/w_100,h_100/crop.jpg",
        f"{SITE}/g/tall.jpg",
        f"{SITE}/g/pic.webp",
        f"{SITE}/g/pic.jpg",
        f"{SITE}/g/clip.jpg",
    ]

    links = linked(tmp_path, [(f"{SITE}/g/index.html", html)], urls)

    for url in urls[:-1]:
        assert links[url] == (f"{SITE}/g/index.html", "Gallery"), url
    assert links[f"{SITE}/g/clip.jpg"] == (None, None)  # a video source is not an image ref


def test_base_href_is_honoured(tmp_path: Path) -> None:
    html = """<html><head><base href="https://static.example.org/assets/"></head>
        <body><img src="face.jpg"><a href="/full.jpg">full size</a></body></html>"""

    links = linked(
        tmp_path,
        [(f"{SITE}/post/1", html)],
        ["https://static.example.org/assets/face.jpg", "https://static.example.org/full.jpg"],
    )

    assert links["https://static.example.org/assets/face.jpg"][0] == f"{SITE}/post/1"
    assert links["https://static.example.org/full.jpg"][0] == f"{SITE}/post/1"


def test_pages_stored_after_their_images_still_link(tmp_path: Path) -> None:
    links = linked(
        tmp_path,
        [(f"{SITE}/late.html", "<title>Late</title><img src=a.jpg>")],
        [f"{SITE}/a.jpg"],
        images_first=True,
    )

    assert links[f"{SITE}/a.jpg"] == (f"{SITE}/late.html", "Late")


def test_first_embedding_page_wins_and_embed_beats_link(tmp_path: Path) -> None:
    pages = [
        (f"{SITE}/linker", "<title>Linker</title><a href='/a.jpg'>photo</a><a href='/b.jpg'>b</a>"),
        (f"{SITE}/first", "<title>First</title><img src='/a.jpg'>"),
        (f"{SITE}/second", "<title>Second</title><img src='/a.jpg'><a href='/b.jpg'>b</a>"),
    ]

    links = linked(tmp_path, pages, [f"{SITE}/a.jpg", f"{SITE}/b.jpg"], images_first=True)

    assert links[f"{SITE}/a.jpg"] == (f"{SITE}/first", "First")
    assert links[f"{SITE}/b.jpg"] == (f"{SITE}/linker", "Linker")


def test_url_spelling_differences_still_match(tmp_path: Path) -> None:
    links = linked(
        tmp_path,
        [("http://Example.COM/p", "<img src='HTTP://EXAMPLE.com/Pic.jpg#frag'>")],
        ["http://example.com/Pic.jpg"],
    )

    assert links["http://example.com/Pic.jpg"][0] == "http://Example.COM/p"


def test_html_without_html_content_type_is_sniffed_as_a_page(tmp_path: Path) -> None:
    path = write_warc(
        tmp_path / "sniff.warc.gz",
        images=[
            (f"{SITE}/page", b"  <!DOCTYPE html><title>T</title><img src=a.jpg>", "text/plain"),
            (f"{SITE}/a.jpg", JPEG, "image/jpeg"),
        ],
    ).path

    (item,) = images_of(path)

    assert (item.page_url, item.page_title) == (f"{SITE}/page", "T")


def test_hostile_html_is_survived_and_capped(tmp_path: Path) -> None:
    flood = "".join(f"<img src='/junk/{i}.jpg'>" for i in range(MAX_REFS_PER_PAGE + 50))
    broken = "<html><head><title>Broken <b>markup</title><<img src='/x.jpg' <p></div></table>"
    pages = [
        (
            f"{SITE}/flood",
            f"<title>Flood</title><img src='/early.jpg'>{flood}<img src='/late.jpg'>",
        ),
        (f"{SITE}/broken", broken + "<img src=/ok.jpg>" + "<div>" * 2_000),
        (f"{SITE}/nul", "<html>\x00\x00<img src=/nul.jpg>\ufffd</html>"),
        (f"{SITE}/srcset", "<img srcset='" + ", " * 50_000 + "s.jpg 1x (((, t.jpg'>"),
    ]
    urls = [f"{SITE}/{name}.jpg" for name in ("early", "late", "ok", "nul", "s", "t")]

    links = linked(tmp_path, pages, urls)

    assert links[f"{SITE}/early.jpg"][0] == f"{SITE}/flood"
    assert links[f"{SITE}/late.jpg"] == (None, None)  # beyond the per-page cap
    assert links[f"{SITE}/ok.jpg"][0] == f"{SITE}/broken"
    assert links[f"{SITE}/nul.jpg"][0] == f"{SITE}/nul"
    assert links[f"{SITE}/s.jpg"][0] == f"{SITE}/srcset"


def test_deeply_nested_page_contributes_no_links_and_does_not_stall(tmp_path: Path) -> None:
    # 200,000 nested divs take lexbor minutes; the parse_cost guard refuses the page instead.
    deep = "<title>Deep</title><img src='/deep.jpg'>" + "<div>" * 200_000
    pages = [(f"{SITE}/deep", deep), (f"{SITE}/fine", "<title>Fine</title><img src='/fine.jpg'>")]

    started = time.monotonic()
    links = linked(tmp_path, pages, [f"{SITE}/deep.jpg", f"{SITE}/fine.jpg"])

    assert time.monotonic() - started < 10  # generous: the guard is one linear pass
    assert links[f"{SITE}/deep.jpg"] == (None, None)
    assert links[f"{SITE}/fine.jpg"] == (f"{SITE}/fine", "Fine")


# --------------------------------------------------------------------------- size cap


def test_oversize_image_yields_an_error_item_without_data(tmp_path: Path) -> None:
    noise = Image.frombytes("RGB", (64, 64), bytes(range(256)) * 48)
    buffer = io.BytesIO()
    noise.save(buffer, "PNG", compress_level=0)
    big = buffer.getvalue()
    path = write_warc(
        tmp_path / "big.warc.gz",
        images=[(f"{SITE}/small.jpg", JPEG, "image/jpeg"), (f"{SITE}/big.png", big, "image/png")],
    ).path
    limit = len(JPEG) + 100
    assert len(big) > limit

    items = by_url(images_of(path, max_bytes=limit))

    assert items[f"{SITE}/small.jpg"].data == JPEG
    oversize = items[f"{SITE}/big.png"]
    assert oversize.data is None
    assert oversize.error is not None and "max_bytes" in oversize.error
    assert str(len(big)) in oversize.error
    assert oversize.warc_digest == sha1_b32(big)
    assert oversize.warc_record_id is not None


# --------------------------------------------------------------------------- damaged archives


def four_images(tmp_path: Path, compressed: bool) -> tuple[Path, list[str]]:
    urls = [f"{SITE}/{i}.png" for i in range(4)]
    images = [(url, picture("PNG", (i * 50, 0, 0)), "image/png") for i, url in enumerate(urls)]
    name = "four.warc.gz" if compressed else "four.warc"
    return write_warc(tmp_path / name, images=images, gzip=compressed).path, urls


@pytest.mark.parametrize("compressed", [True, False], ids=["warc.gz", "warc"])
def test_truncated_archive_yields_good_records_then_one_error(
    tmp_path: Path, compressed: bool
) -> None:
    path, urls = four_images(tmp_path, compressed)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # cut inside the last image record

    items = images_of(path)

    assert [item.image_url for item in items[:-1]] == urls[:3]
    assert all(item.data and item.error is None for item in items[:-1])
    error = items[-1]
    assert error.data is None
    assert error.error is not None and f"{SITE}/3.png" in error.error
    assert error.warc_file == path.name
    assert error.image_url == path.resolve().as_uri()


def test_truncation_between_gzip_members_is_reported(tmp_path: Path) -> None:
    path, urls = four_images(tmp_path, compressed=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    items = images_of(path)

    assert [item.error is None for item in items] == [True] * (len(items) - 1) + [False]
    assert {item.image_url for item in items[:-1]} <= set(urls)
    assert "EOFError" in (items[-1].error or "")


def test_corrupt_bytes_inside_a_record_are_reported(tmp_path: Path) -> None:
    path, urls = four_images(tmp_path, compressed=False)
    data = path.read_bytes()
    cut = data.index(b"IEND", data.index(urls[1].encode()))
    path.write_bytes(data[:cut] + b"inserted junk" + data[cut:])

    items = images_of(path)

    assert [item.image_url for item in items[:-1]] == urls[:1]
    assert items[-1].error is not None and urls[1] in items[-1].error


def test_corrupt_gzip_member_is_reported(tmp_path: Path) -> None:
    path, _ = four_images(tmp_path, compressed=True)
    data = bytearray(path.read_bytes())
    middle = len(data) * 3 // 4
    data[middle : middle + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))

    items = images_of(path)

    assert items[-1].data is None and items[-1].error
    assert all(item.error is None for item in items[:-1])


def test_trailing_garbage_is_reported_after_all_images(tmp_path: Path) -> None:
    path, urls = four_images(tmp_path, compressed=False)
    path.write_bytes(path.read_bytes() + b"not a record\r\n")

    items = images_of(path)

    assert [item.image_url for item in items[:-1]] == urls
    assert items[-1].error is not None and "after record" in items[-1].error


def test_whole_file_gzip_is_read(tmp_path: Path) -> None:
    plain, urls = four_images(tmp_path, compressed=False)
    path = tmp_path / "whole.warc.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))

    assert [item.image_url for item in images_of(path)] == urls


@pytest.mark.parametrize(
    "content",
    [b"", b"just some text\n", JPEG, b"<html><body>hi</body></html>", gzip.compress(b"hello")],
    ids=["empty", "text", "jpeg", "html", "gzip-text"],
)
def test_non_archive_raises_a_clear_error_at_call_time(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "not.warc"
    path.write_bytes(content)

    with pytest.raises(ValueError, match="not a web archive"):
        iter_warc(path)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.warc\.gz"):
        iter_warc(tmp_path / "nope.warc.gz")


# --------------------------------------------------------------------------- ARC


def arc_record(url: str, body: bytes, content_type: str, status: str = "200 OK") -> bytes:
    http = f"HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\n".encode()
    block = http + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    return f"{url} 192.0.2.7 20240102030405 {content_type} {len(block)}\n".encode() + block + b"\n"


def test_hand_written_arc_v1_file_is_read(tmp_path: Path) -> None:
    version_block = b"1 0 Test\nURL IP-address Archive-date Content-type Archive-length\n"
    header = f"filedesc://t.arc 0.0.0.0 20240102030405 text/plain {len(version_block)}\n"
    html = b"<html><title>Arc page</title><img src='/a.jpg'></html>"
    path = tmp_path / "t.arc"
    path.write_bytes(
        header.encode()
        + version_block
        + b"\n"
        + arc_record(f"{SITE}/a.jpg", JPEG, "image/jpeg")
        + arc_record(f"{SITE}/missing.jpg", JPEG, "image/jpeg", status="404 Not Found")
        + arc_record(f"{SITE}/", html, "text/html")
    )

    (item,) = images_of(path)

    assert item.image_url == f"{SITE}/a.jpg"
    assert item.data == JPEG
    assert (item.page_url, item.page_title) == (f"{SITE}/", "Arc page")
    assert item.captured_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert item.http_status == 200
    assert item.content_type == "image/jpeg"
    assert item.warc_digest == sha1_b32(JPEG)
    assert item.warc_record_id is not None and "t.arc" in item.warc_record_id


def test_gzipped_arc_is_read_with_stable_record_ids(tmp_path: Path) -> None:
    path = write_arc(
        tmp_path / "t.arc.gz",
        [
            Capture(f"{SITE}/p", b"<img src=b.png>", "text/html"),
            Capture(f"{SITE}/b.png", PNG, "image/png"),
        ],
        gzip=True,
    )

    first, second = images_of(path), images_of(path)

    assert [(item.data, item.page_url) for item in first] == [(PNG, f"{SITE}/p")]
    assert first[0].warc_record_id == second[0].warc_record_id
