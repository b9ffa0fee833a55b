"""Gzip for text responses (pages, scripts, styles, JSON), so a phone on a weak signal downloads
a fraction of the bytes. Static files are compressed once and kept in memory by path and mtime.

Owns: the after-request hook. Behind a reverse proxy that compresses, set
GRIDMAP_GZIP=0 to leave it to the proxy.
"""
from __future__ import annotations

import gzip
import os
import threading

from flask import request

COMPRESSIBLE = ("text/", "application/javascript", "application/json", "application/geo+json",
                "image/svg+xml", "application/xml")
MIN_BYTES = 1024

_static_cache: dict[tuple[str, float], bytes] = {}
_lock = threading.Lock()


def _gzip_static(path: str, data: bytes) -> bytes:
    key = (path, os.path.getmtime(path) if os.path.exists(path) else 0.0)
    with _lock:
        hit = _static_cache.get(key)
    if hit is None:
        hit = gzip.compress(data, 6)
        with _lock:
            if len(_static_cache) > 512:
                _static_cache.clear()
            _static_cache[key] = hit
    return hit


def register(app) -> None:
    if not app.config.get("GRIDMAP_GZIP", True):
        return

    @app.after_request
    def _gzip(response):
        if (response.status_code != 200 or "gzip" not in request.headers.get("Accept-Encoding", "")
                or response.headers.get("Content-Encoding")
                or not (response.mimetype or "").startswith(COMPRESSIBLE)):
            return response
        static = request.endpoint == "static"
        if response.direct_passthrough and not static:
            return response  # a stream we should not buffer
        response.direct_passthrough = False
        data = response.get_data()
        if len(data) < MIN_BYTES:
            return response
        if static:
            folder = app.static_folder or ""
            body = _gzip_static(os.path.join(folder, request.view_args.get("filename", "")), data)
        else:
            body = gzip.compress(data, 5)
        response.set_data(body)
        response.headers["Content-Encoding"] = "gzip"
        response.headers["Content-Length"] = str(len(body))
        response.vary.add("Accept-Encoding")
        return response
