"""Photos are decoded with Pillow under a pixel limit and re-encoded: what passes only the magic bytes
(random bytes after a PNG signature, HTML after a JPEG one, a truncated file, a 50,000 × 50,000 px
decompression bomb, an image of another type behind a signature) is refused and nothing is stored;
a real photo is stored without its EXIF (GPS, camera) but upright."""
from __future__ import annotations

import io
import os
import struct
import zlib

import pytest
from PIL import Image
from sqlalchemy import func, select

from gridmap.incidents.models import CasePhoto, CaseEvent
from gridmap.incidents.photos import MAX_PIXELS, PhotoError, reencode_image, sniff_image
from tests.test_cases_api import _upload, cases, world  # noqa: F401  (fixtures)


def _png_header_only(w: int, h: int) -> bytes:
    """A PNG whose IHDR claims w × h pixels, with a tiny (compressed) body: a decompression bomb."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def _jpeg_with_gps() -> bytes:
    im = Image.new("RGB", (30, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"   # Make
    exif[0x0112] = 6             # Orientation: rotate 90° to view upright
    exif[0x8825] = {2: (30.0, 2.0, 0.0), 4: (122.0, 6.0, 0.0)}  # GPS
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


HOSTILE = {
    "random after PNG signature": b"\x89PNG\r\n\x1a\n" + os.urandom(3000),
    "html after JPEG signature": b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>" + b" " * 200,
    "truncated PNG": None,  # filled below
    "bomb 50000x50000": _png_header_only(50_000, 50_000),
    "webp header, random body": b"RIFF\x00\x10\x00\x00WEBPVP8 " + os.urandom(500),
    "a GIF behind a PNG signature": b"\x89PNG\r\n\x1a\n" + b"GIF89a" + os.urandom(100),
}
_buf = io.BytesIO()
Image.new("RGB", (64, 64), (1, 2, 3)).save(_buf, format="PNG")
HOSTILE["truncated PNG"] = _buf.getvalue()[:60]


@pytest.mark.parametrize("what", list(HOSTILE))
def test_reencode_refuses(what):
    data = HOSTILE[what]
    kind = sniff_image(data[:16])
    assert kind is not None  # every one of them passes the magic-byte check
    with pytest.raises(PhotoError) as e:
        reencode_image(data, kind)
    assert e.value.status in (413, 415)


def test_pixel_limit_is_checked_before_decoding():
    with pytest.raises(PhotoError) as e:
        reencode_image(_png_header_only(10_000, 10_000), "png")
    assert e.value.status == 413 and f"{MAX_PIXELS:,}" in e.value.message


def test_metadata_is_stripped_and_the_photo_turned_upright():
    out = reencode_image(_jpeg_with_gps(), "jpeg")
    im = Image.open(io.BytesIO(out))
    assert im.format == "JPEG" and im.size == (20, 30)  # rotated by its orientation, then no tag needed
    assert dict(im.getexif()) == {} and b"SecretCam" not in out


def test_hostile_uploads_over_http_store_nothing(client, app, world, cases, sessionmaker):  # noqa: F811
    a = cases["a"]
    for what, data in HOSTILE.items():
        r = _upload(client, a, world.w1, data, name="x.png")
        assert r.status_code in (413, 415), (what, r.status_code, r.json)
        assert r.json["field"] == "photo"
    with sessionmaker() as s:
        assert s.scalar(select(func.count(CasePhoto.id))) == 0
        assert s.scalar(select(func.count(CaseEvent.id)).where(CaseEvent.action == "photo")) == 0
    folder = os.path.join(app.instance_path, "photos", str(a))
    assert not os.path.exists(folder) or not [f for f in os.listdir(folder) if not f.startswith(".")]
    r = _upload(client, a, world.w1, _jpeg_with_gps(), name="gps.jpg", ctype="image/jpeg")
    assert r.status_code == 201, r.json
    got = client.get(r.json["url"], headers=world.w1)
    assert b"SecretCam" not in got.data and dict(Image.open(io.BytesIO(got.data)).getexif()) == {}
