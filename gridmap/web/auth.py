"""Who is asking: API tokens (``Authorization: Bearer …``) and the login session, for every view.

Owns: ``current_actor()`` and the ``login_required`` decorator. An API call without valid
credentials gets 401 JSON; a page redirects to the login page (when the web app has one).
The login cookie carries only a session id; ``gridmap.accounts.sessions`` decides on every request
whether it still counts (not logged out, not timed out, password unchanged, user active). A token
counts while it is neither revoked nor expired and its user is active.
"""
from __future__ import annotations

import datetime as dt
from functools import wraps

from flask import current_app, g, request, session as http_session

from gridmap import get_session
from gridmap.accounts.actor import Actor
from gridmap.accounts.models import User
from gridmap.accounts.service import actor_for, user_for_token
from gridmap.accounts.sessions import end_session, resolve_session
from gridmap.web.errors import APIError


def current_user() -> User | None:
    if "gm_user" in g:
        return g.gm_user
    user = None
    auth = request.headers.get("Authorization", "")
    db = get_session()
    if auth.lower().startswith("bearer "):
        user = user_for_token(db, auth[7:].strip(), address=request.remote_addr)
        db.commit()  # last_used_at, the audit of the first use in an hour
    elif http_session.get("sid"):
        cfg = current_app.config
        u = resolve_session(db, http_session.get("sid"),
                            idle=dt.timedelta(minutes=float(cfg.get("GRIDMAP_SESSION_IDLE_MINUTES", 120))),
                            absolute=dt.timedelta(hours=float(cfg.get("GRIDMAP_SESSION_ABSOLUTE_HOURS", 12))))
        db.commit()  # last_seen_at, or the end of a timed-out session
        if u is not None and http_session.get("pw") == (u.password_hash or "")[-16:]:
            user = u
    g.gm_user = user
    return user


def log_in(user: User, session_id: str) -> None:
    """Put a new session into the cookie (the old cookie's content is dropped: no fixation)."""
    http_session.clear()
    http_session["sid"] = session_id
    http_session["pw"] = (user.password_hash or "")[-16:]
    g.pop("gm_user", None)


def log_out() -> int | None:
    """End the cookie's session on the server and empty the cookie; returns the user id it had."""
    db = get_session()
    uid = end_session(db, http_session.get("sid"))
    db.commit()
    http_session.clear()
    g.pop("gm_user", None)
    return uid


def current_actor() -> Actor | None:
    user = current_user()
    return actor_for(user) if user else None


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            raise APIError("authentication required: send 'Authorization: Bearer <token>' "
                           "(create one with `gridmap tokens create NAME`)", 401)
        return view(*args, **kwargs)

    return wrapped


def roles_required(*roles):
    def deco(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user().role not in roles:
                raise APIError("your role may not do this", 403)
            return view(*args, **kwargs)

        return wrapped

    return deco
