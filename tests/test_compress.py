"""Text responses are gzipped for clients that accept it; static files byte-identical once unzipped."""
import gzip
from pathlib import Path

import gridmap

STATIC = Path(gridmap.__file__).parent / "static"


def test_static_script_is_gzipped_and_identical(client):
    path = "vendor/leaflet/leaflet.js"
    raw = (STATIC / path).read_bytes()
    r = client.get(f"/static/{path}", headers={"Accept-Encoding": "gzip, deflate"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    assert int(r.headers["Content-Length"]) < len(raw) / 2
    assert gzip.decompress(r.data) == raw
    plain = client.get(f"/static/{path}")
    assert "Content-Encoding" not in plain.headers and plain.data == raw


def test_fonts_are_not_recompressed(client):
    fonts = sorted((STATIC / "vendor").rglob("*.woff2"))
    assert fonts
    rel = fonts[0].relative_to(STATIC).as_posix()
    r = client.get(f"/static/{rel}", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and "Content-Encoding" not in r.headers
