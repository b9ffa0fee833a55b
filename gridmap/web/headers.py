"""Security headers on every response the app sends, in one after-request hook.

Owns: ``register(app)``. Pages, ledger HTML, API answers, Open311, static files, photos, error
pages (404, 413, 500 …) all leave through it:

- ``Content-Security-Policy``: HTML gets the page policy with the request's nonce
  (``views.base.content_security_policy``); anything else ``default-src 'none'`` (a JSON answer or
  a CSS file has no business running script) — both with ``frame-ancestors 'none'``;
- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin``;
- ``Cache-Control: private, no-store`` on HTML and on every API / Open311 answer (they carry names,
  phones and case texts), unless the view chose its own caching (photos, tiles; send_file's
  default ``no-cache`` on an export is not a choice and becomes ``no-store``); static files keep theirs.

A header a view set itself is kept (``setdefault``).
"""
from __future__ import annotations

from flask import request

#: the policy of everything that is not an HTML page
NON_HTML_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
JSON_PREFIXES = ("/api/", "/open311/")


def register(app) -> None:
    from gridmap.web.views.base import content_security_policy

    @app.after_request
    def _security_headers(resp):
        html = resp.mimetype == "text/html"
        h = resp.headers
        h.setdefault("Content-Security-Policy", content_security_policy() if html else NON_HTML_CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")
        if request.endpoint != "static" and (html or request.path.startswith(JSON_PREFIXES)):
            # send_file's own default ("no-cache") still lets a proxy or the browser keep an export
            if h.get("Cache-Control") in (None, "", "no-cache"):
                h["Cache-Control"] = "private, no-store"
        return resp
