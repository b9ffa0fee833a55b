"""Pages: the start page (the full role-scoped web app comes with the maps issue)."""
from __future__ import annotations

from flask import Blueprint, render_template

from gridmap import get_session
from gridmap.boundaries.service import counts

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    return render_template("index.html", counts=counts(get_session()))


@bp.get("/healthz")
def healthz():
    get_session().execute(__import__("sqlalchemy").text("SELECT 1"))
    return {"status": "ok"}
