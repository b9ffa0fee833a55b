"""Accounts: creating users, hashing and checking passwords, API tokens, and turning a user into an Actor.

Owns: password hashing (werkzeug's scrypt), token issue and lookup (only SHA-256 digests are
stored, so a leaked database does not leak tokens), and which area a user's scope is rooted at.
"""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from gridmap.accounts.actor import Actor
from gridmap.accounts.models import ROLES, ApiToken, User
from gridmap.assign.models import Department, Worker
from gridmap.boundaries.models import Area
from gridmap.db import utcnow

#: the level of area each role's scope is rooted at (None: the whole city)
ROLE_LEVEL = {"worker": None, "head": "community", "community": "community", "street": "street",
              "district": "district", "city": None, "admin": None, "department": None}


class AccountError(ValueError):
    pass


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def create_user(session: Session, username: str, role: str, *, password: str | None = None,
                area_code: str | None = None, worker_code: str | None = None, department_code: str | None = None,
                display_name: str | None = None, language: str = "zh_CN") -> User:
    username = (username or "").strip()
    if not username:
        raise AccountError("a user needs a name")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    if session.scalar(select(User).where(User.username == username)):
        raise AccountError(f"user {username!r} exists already")
    if password is not None and len(password) < 8:
        raise AccountError("a password needs at least 8 characters")
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
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    if user is None or not user.password_hash:
        # spend the same time as a real check so names cannot be probed by timing
        check_password_hash(hash_password("x" * 12), password or "")
        return None
    return user if check_password_hash(user.password_hash, password or "") else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, username: str, name: str | None = None) -> str:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise AccountError(f"no user {username!r}")
    token = "gm_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_digest(token), name=name))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    if not token:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token),
                                                ApiToken.revoked_at.is_(None)))
    if row is None or not row.user.active:
        return None
    row.last_used_at = utcnow()
    return row.user


def actor_for(user: User) -> Actor:
    return Actor(name=user.display_name or user.username, role=user.role, user_id=user.id,
                 worker_id=user.worker_id, area_id=user.area_id, department_id=user.department_id)
