"""Accounts: creating users, hashing and checking passwords, API tokens, and turning a user into an Actor.

Owns: password hashing (werkzeug's scrypt), token issue, expiry, listing, revocation and lookup
(only SHA-256 digests are stored, so a leaked database does not leak tokens), disabling, enabling
and re-passwording users (both end the user's sessions), and which area a user's scope is rooted
at. Each change is written to the audit log (``gridmap.audit``) in the caller's transaction.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from gridmap import audit
from gridmap.accounts.actor import Actor
from gridmap.accounts.models import ROLES, ApiToken, User
from gridmap.accounts.sessions import end_user_sessions
from gridmap.assign.models import Department, Worker
from gridmap.boundaries.models import Area
from gridmap.db import utcnow

#: the level of area each role's scope is rooted at (None: the whole city)
ROLE_LEVEL = {"worker": None, "head": "community", "community": "community", "street": "street",
              "district": "district", "city": None, "admin": None, "department": None}


#: lifetime of a new API token unless told otherwise, and the longest allowed
TOKEN_DAYS = 90
TOKEN_MAX_DAYS = 3650
MIN_PASSWORD = 8
#: how stale a token's ``last_used_at`` may get before a request writes it again
TOKEN_TOUCH_INTERVAL = dt.timedelta(seconds=60)


class AccountError(ValueError):
    pass


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def create_user(session: Session, username: str, role: str, *, password: str | None = None,
                area_code: str | None = None, worker_code: str | None = None, department_code: str | None = None,
                display_name: str | None = None, language: str = "zh_CN", operator: str | None = None) -> User:
    username = (username or "").strip()
    if not username:
        raise AccountError("a user needs a name")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    if session.scalar(select(User).where(User.username == username)):
        raise AccountError(f"user {username!r} exists already")
    if password is not None and len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    user = User(username=username, role=role, display_name=display_name or username, language=language,
                password_hash=hash_password(password) if password else None)
    level = ROLE_LEVEL[role]
    if area_code:
        area = session.scalar(select(Area).where(Area.code == area_code))
        if area is None:
            raise AccountError(f"no area with code {area_code}")
        if level and area.level != level:
            raise AccountError(f"a {role} user belongs to a {level}, but {area_code} is a {area.level}")
        user.area_id = area.id
    elif level:
        raise AccountError(f"a {role} user needs --area (the code of their {level})")
    if worker_code:
        w = session.scalar(select(Worker).where(Worker.code == worker_code))
        if w is None:
            raise AccountError(f"no worker with code {worker_code}")
        user.worker_id = w.id
        if not user.display_name or user.display_name == username:
            user.display_name = w.name
    elif role == "worker":
        raise AccountError("a worker user needs --worker (the worker's code)")
    if department_code:
        d = session.scalar(select(Department).where(Department.code == department_code))
        if d is None:
            raise AccountError(f"no department with code {department_code}")
        user.department_id = d.id
    elif role == "department":
        raise AccountError("a department user needs --department")
    session.add(user)
    session.flush()
    audit.record(session, "user.create", actor_name=operator, target=username, role=role, area=area_code,
                 worker=worker_code, department=department_code)
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    if user is None or not user.password_hash:
        # spend the same time as a real check so names cannot be probed by timing
        check_password_hash(hash_password("x" * 12), password or "")
        return None
    return user if check_password_hash(user.password_hash, password or "") else None


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise AccountError(f"no user {username!r}")
    return user


def set_active(session: Session, username: str, active: bool, operator: str | None = None) -> User:
    """Enable or disable a user. Disabling ends their sessions; their tokens are refused while disabled."""
    user = _user(session, username)
    if bool(user.active) == bool(active):
        raise AccountError(f"user {username!r} is already {'active' if active else 'disabled'}")
    user.active = bool(active)
    if not active:
        end_user_sessions(session, user.id, "disabled")
    audit.record(session, "user.enable" if active else "user.disable", actor_name=operator, target=username)
    session.flush()
    return user


def set_password(session: Session, username: str, password: str, operator: str | None = None) -> User:
    """Give a user a new password; every session of theirs ends (tokens stay: revoke them apart)."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    user = _user(session, username)
    user.password_hash = hash_password(password)
    ended = end_user_sessions(session, user.id, "password")
    audit.record(session, "user.passwd", actor_name=operator, target=username, sessions_ended=ended)
    session.flush()
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, username: str, name: str | None = None, days: int = TOKEN_DAYS,
                 operator: str | None = None) -> str:
    """A new token for the user, valid ``days`` days (1 … TOKEN_MAX_DAYS). Shown once: only its hash is kept."""
    user = _user(session, username)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= TOKEN_MAX_DAYS:
        raise AccountError(f"a token lives from 1 to {TOKEN_MAX_DAYS} days, not {days!r}")
    token = "gm_" + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, token_hash=_digest(token), name=name, expires_at=utcnow() + dt.timedelta(days=days))
    session.add(row)
    session.flush()
    audit.record(session, "token.create", actor_name=operator, target=username, token_id=row.id, days=days, label=name)
    return token


def token_status(row: ApiToken, now: dt.datetime | None = None) -> str:
    now = now or utcnow()
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


@dataclass
class TokenInfo:
    id: int
    username: str
    label: str | None
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    status: str


def list_tokens(session: Session, username: str | None = None, include_ended: bool = False) -> list[TokenInfo]:
    """Tokens (never their value), oldest first; revoked and expired ones only with ``include_ended``."""
    q = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
    if username:
        q = q.where(ApiToken.user_id == _user(session, username).id)
    now = utcnow()
    out = [TokenInfo(t.id, u, t.name, t.created_at, t.last_used_at, t.expires_at, token_status(t, now))
           for t, u in session.execute(q)]
    return out if include_ended else [t for t in out if t.status == "active"]


def revoke_token(session: Session, token_id: int, operator: str | None = None) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise AccountError(f"no token with id {token_id}")
    if row.revoked_at is not None:
        raise AccountError(f"token {token_id} was revoked already")
    row.revoked_at = utcnow()
    audit.record(session, "token.revoke", actor_name=operator, target=row.user.username, token_id=row.id)
    session.flush()
    return row


def user_for_token(session: Session, token: str, address: str | None = None) -> User | None:
    """The active user of a live token (not revoked, not expired), or None. The first use of a token
    in each hour is written to the audit log (``audited_at`` remembers when). The caller commits."""
    if not token or not isinstance(token, str) or len(token) > 200:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    now = utcnow()
    if row is None or token_status(row, now) != "active" or not row.user.active:
        return None
    if row.audited_at is None or now - row.audited_at >= audit.TOKEN_USE_INTERVAL:
        audit.record(session, "token.use", actor_user_id=row.user_id, actor_name=row.user.username,
                     address=address, target=f"token {row.id}", token_id=row.id, at=now)
        row.audited_at = now
    if row.last_used_at is None or now - row.last_used_at >= TOKEN_TOUCH_INTERVAL:
        row.last_used_at = now  # not on every request: one write a minute at most
    return row.user


def actor_for(user: User) -> Actor:
    return Actor(name=user.display_name or user.username, role=user.role, user_id=user.id,
                 worker_id=user.worker_id, area_id=user.area_id, department_id=user.department_id)
