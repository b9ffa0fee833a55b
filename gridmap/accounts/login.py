"""Logging in: the password check, throttling kept in the database, the session it starts, the audit.

Owns: ``attempt_login`` (what the login form calls) and the throttling rules. Failures are rows of
``login_failures``, so every worker process behind a load balancer sees the same counts. Within the
window (``lockout_minutes``) a login is refused, before any password is checked, when there were
``max_failures`` failures for this name from this address, ``per_address`` failures from this
address for any names (a password sprayed over many names), or ``per_name`` failures for this name
from any addresses (one name attacked from many). The refusal lasts until the oldest counted failure
leaves the window. A success clears the failures of its name from its address.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from gridmap import audit
from gridmap.accounts.models import LoginFailure, User
from gridmap.accounts.service import authenticate
from gridmap.accounts.sessions import start_session
from gridmap.db import utcnow


@dataclass(frozen=True)
class Limits:
    max_failures: int = 5          # per (name, address)
    per_address: int = 20          # per address, any names
    per_name: int = 50             # per name, any addresses
    lockout_minutes: float = 15.0

    @classmethod
    def from_config(cls, cfg) -> "Limits":
        return cls(max_failures=int(cfg.get("GRIDMAP_LOGIN_MAX_FAILURES", 5)),
                   per_address=int(cfg.get("GRIDMAP_LOGIN_MAX_FAILURES_PER_ADDRESS", 20)),
                   per_name=int(cfg.get("GRIDMAP_LOGIN_MAX_FAILURES_PER_NAME", 50)),
                   lockout_minutes=float(cfg.get("GRIDMAP_LOGIN_LOCKOUT_MINUTES", 15)))

    @property
    def window(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.lockout_minutes)


@dataclass
class LoginResult:
    user: User | None = None
    session_id: str | None = None  # for the cookie
    wait_seconds: int = 0          # > 0: throttled, no password was checked


def wait_seconds(session: Session, username: str, address: str, limits: Limits,
                 now: dt.datetime | None = None) -> int:
    """Seconds until a login for this name from this address is allowed again (0: now)."""
    now = now or utcnow()
    since = now - limits.window
    recent = LoginFailure.at >= since
    wait = 0
    for cond, limit in ((LoginFailure.username == username, limits.per_name),
                        (LoginFailure.address == address, limits.per_address),
                        ((LoginFailure.username == username) & (LoginFailure.address == address), limits.max_failures)):
        n = session.scalar(select(func.count()).select_from(LoginFailure).where(cond, recent)) or 0
        if n < limit:
            continue
        # the failure that, once out of the window, brings the count below the limit
        oldest = session.scalar(select(LoginFailure.at).where(cond, recent).order_by(LoginFailure.at.desc())
                                .offset(limit - 1).limit(1))
        if oldest is not None:
            wait = max(wait, int((oldest + limits.window - now).total_seconds()) + 1)
    return wait


def record_failure(session: Session, username: str, address: str, limits: Limits,
                   now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    session.execute(delete(LoginFailure).where(LoginFailure.at < now - limits.window))  # forget the stale ones
    session.add(LoginFailure(username=username[:80], address=address[:64], at=now))
    session.flush()


def clear_failures(session: Session, username: str, address: str) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.username == username, LoginFailure.address == address))


def attempt_login(session: Session, username: str, password: str, address: str, limits: Limits) -> LoginResult:
    """Check a login. Throttled → ``wait_seconds``; wrong → empty result; right → the user and a new
    session id. Every outcome is audited. The caller commits (also on failure: the count is kept)."""
    name = (username or "").strip()
    key = name.lower()[:80]
    address = (address or "")[:64]
    wait = wait_seconds(session, key, address, limits)
    if wait:
        audit.record(session, "login.throttled", actor_name=name[:120], address=address, wait_seconds=wait)
        return LoginResult(wait_seconds=wait)
    user = authenticate(session, name, password)
    if user is None:
        record_failure(session, key, address, limits)
        audit.record(session, "login.failed", actor_name=name[:120], address=address)
        return LoginResult()
    clear_failures(session, key, address)
    sid = start_session(session, user, address)
    audit.record(session, "login", actor_user_id=user.id, actor_name=user.username, address=address)
    return LoginResult(user=user, session_id=sid)
