"""Replays that change nothing: the ``Idempotency-Key`` header (or a ``client_id`` field) on the
API's create and action endpoints.

Owns: the :func:`idempotent` decorator over the table ``idempotency_keys``
(:class:`gridmap.fieldwork.models.IdempotencyKey`: per user and key, a digest of the request and,
once it has been answered, the answer's status and body).

A phone that lost its network sends its outbox again when it comes back; it cannot know whether
the first attempt reached the server. With a key:

* the first request runs as usual, and the key row is written **in the same transaction** as
  its effect (the view's own commit), so a case and its key exist together or not at all;
* a replay with the same key and the same request answers the first answer again (header
  ``Idempotent-Replayed: true``) and makes nothing new, also when the first answer was a refusal
  (a 4xx is recorded after the view's rollback);
* a replay with the same key and a different request is refused (409) naming the key;
* two copies in flight at once: the second waits on the unique index and then replays, or, when
  the first has not answered yet, gets 409 "still being processed" (retry later);
* an answer lost after the commit (the process died between the commit and recording the answer)
  is reported as 409 "already carried out" with the key: never a second case.

The request digest covers the method, the path and the body: JSON bodies are canonicalized
(key order and spacing do not matter); multipart bodies are digested from their fields and the
bytes of their files, not the boundary string a browser draws anew for every send.
Keys are kept ``GRIDMAP_IDEMPOTENCY_DAYS`` (default 7) and then purged (:func:`purge_keys`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from functools import wraps

from flask import Response, current_app, g, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridmap import get_session
from gridmap.db import utcnow
from gridmap.fieldwork.models import IdempotencyKey
from gridmap.web.auth import current_user
from gridmap.web.errors import APIError

HEADER = "Idempotency-Key"
KEY_RE = re.compile(r"^[A-Za-z0-9_.:\-]{8,128}$")
DEFAULT_DAYS = 7


def request_digest() -> str:
    """SHA-256 of the method, path and a canonical form of the body."""
    h = hashlib.sha256()
    h.update(request.method.encode() + b" " + request.path.encode() + b"\n")
    if request.mimetype == "multipart/form-data":
        for k in sorted(request.form):
            for v in request.form.getlist(k):
                h.update(f"form:{k}={v}\n".encode("utf-8", "surrogatepass"))
        for k in sorted(request.files):
            for f in request.files.getlist(k):
                data = f.stream.read()
                f.stream.seek(0)
                h.update(f"file:{k}:{len(data)}:".encode() + hashlib.sha256(data).digest() + b"\n")
        return h.hexdigest()
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw) if raw else None
        canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        h.update(canon.encode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):
        h.update(raw)
    return h.hexdigest()


def request_key() -> str | None:
    """The key of this request: the header, else a ``client_id`` field of a JSON body; None without."""
    key = request.headers.get(HEADER)
    if key is None and request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict) and body.get("client_id") is not None:
            key = body["client_id"]
    if key is None:
        return None
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise APIError(f"{HEADER} must be 8 to 128 letters, digits or _ . : - (a UUID will do)", 400,
                       field="Idempotency-Key")
    return key


def _replay(row: IdempotencyKey) -> Response:
    resp = Response(row.response or "", status=row.status_code, mimetype="application/json")
    resp.headers["Idempotent-Replayed"] = "true"
    return resp


def _answer_for_existing(row: IdempotencyKey, digest: str) -> Response:
    if row.request_hash != digest:
        raise APIError(f"{HEADER} {row.key!r} was already used for a different request; use a new key "
                       "for a new request", 409, field="Idempotency-Key", idempotency_key=row.key)
    if row.status_code is None:
        raise APIError(f"the request with {HEADER} {row.key!r} was already carried out or is still being "
                       "processed; look it up before sending it again", 409, field="Idempotency-Key",
                       idempotency_key=row.key)
    return _replay(row)


def _existing(session: Session, user_id: int, key: str) -> IdempotencyKey | None:
    return session.scalar(select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key))


def _record(session: Session, user_id: int, key: str, status: int, body: bytes) -> None:
    """Write the answer onto the key row and commit (insert the row when the view's rollback took
    it away: a refusal is remembered too). Uses the request's own session: a second connection
    would wait on the uncommitted key row of the first."""
    text = body.decode("utf-8", "replace")
    row = _existing(session, user_id, key)
    if row is None:
        session.add(IdempotencyKey(user_id=user_id, key=key, request_hash=g.gm_idempotency["digest"],
                                   method=request.method, path=request.path[:300], status_code=status,
                                   response=text))
    elif row.status_code is None:
        row.status_code, row.response = status, text
    try:
        session.commit()
    except IntegrityError:  # a concurrent copy recorded first: its answer stands
        session.rollback()


def idempotent(view):
    """Make a create or action endpoint safe to replay (see the module's docstring). Put it under
    ``login_required``: the key belongs to the user who sends it."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        key = request_key()
        user = current_user()
        if key is None or user is None:
            return view(*args, **kwargs)
        digest = request_digest()
        session = get_session()
        row = _existing(session, user.id, key)
        if row is not None:
            return _answer_for_existing(row, digest)
        g.gm_idempotency = {"key": key, "digest": digest}
        session.add(IdempotencyKey(user_id=user.id, key=key, request_hash=digest, method=request.method,
                                   path=request.path[:300]))
        try:
            session.flush()  # waits here while a concurrent copy holds the key
        except IntegrityError:
            session.rollback()
            row = _existing(session, user.id, key)
            if row is None:
                raise APIError("could not record the request's key; send it again", 409,
                               field="Idempotency-Key") from None
            return _answer_for_existing(row, digest)
        try:
            resp = current_app.make_response(view(*args, **kwargs))
        except APIError as e:
            session.rollback()
            if e.status < 500:
                _record(session, user.id, key, e.status, json.dumps({"error": e.message, **e.extra},
                                                           ensure_ascii=False).encode())
            raise
        except Exception:
            session.rollback()
            raise
        if resp.status_code < 500:
            _record(session, user.id, key, resp.status_code, resp.get_data())
        return resp

    return wrapped


def purge_keys(session: Session, *, days: int | None = None, now: dt.datetime | None = None) -> int:
    """Delete keys older than ``days`` (GRIDMAP_IDEMPOTENCY_DAYS); the number deleted."""
    days = days if days is not None else int(current_app.config.get("GRIDMAP_IDEMPOTENCY_DAYS", DEFAULT_DAYS))
    cut = (now or utcnow()) - dt.timedelta(days=days)
    return session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cut)).rowcount or 0
