"""The Content-Security-Policy nonce of a request, and putting it on trusted generated HTML.

Owns: :func:`csp_nonce` (one per request, kept in ``flask.g``; the policy header names it) and
:func:`add_nonce` (every ``<script>``/``<style>`` of folium's HTML gets it). Pages
(``gridmap.web.views.base``) and whole-map pages (``gridmap.web.maps.render_page``) share them.
"""
from __future__ import annotations

import re
import secrets

from flask import g
from markupsafe import Markup

_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b(?![^>]*\bnonce=)([^>]*)>", re.I)


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def add_nonce(html: str, nonce: str | None = None) -> Markup:
    """Give every <script> and <style> element of trusted generated HTML (folium's) the page's nonce."""
    nonce = nonce or csp_nonce()
    return Markup(_SCRIPT_OR_STYLE.sub(lambda m: f'<{m.group(1)} nonce="{nonce}"{m.group(2)}>', str(html)))
