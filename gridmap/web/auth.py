"""Who is asking: API tokens (``Authorization: Bearer …``) and the login session, for every view.

Owns: ``current_actor()`` and the ``login_required`` decorator. An API call without valid
credentials gets 401 JSON; a page redirects to the login page (when the web app has one).
"""
from __future__ import annotations

from functools import wraps

from flask import g, request, session as http_session

from gridmap import get_session
from gridmap.accounts.actor import Actor
from gridmap.accounts.models import User
from gridmap.accounts.service import actor_for, user_for_token
from gridmap.web.errors import APIError


def current_user() -> User | None:
    if "gm_user" in g:
        return g.gm_user
    user = None
    auth = request.headers.get("Authorization", "")
    db = get_session()
    if auth.lower().startswith("bearer "):
        user = user_for_token(db, auth[7:].strip())
        if user is not None:
            db.commit()  # last_used_at
    elif http_session.get("uid"):
        u = db.get(User, http_session["uid"])
        if u is not None and u.active and http_session.get("pw") == (u.password_hash or "")[-16:]:
            user = u
    g.gm_user = user
    return user


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
