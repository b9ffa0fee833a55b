"""Management actions on a hazard beside its rectification cycle: assigning the responsible unit,
extending the deadline (with a reason), 督办 (supervision by a higher level), and photos.

Owns: who may do each (``MANAGE_ROLES`` assign and extend; ``SUPERVISE_ROLES``, a street office or
above, supervise), what each needs (an extension without a reason, or to a date not after the
current deadline, is refused; a hazard is supervised once; nothing changes a closed hazard), the
version-checked update and the history event of each. The life-cycle itself (rectify, verify,
close, reopen) is ``hazards.service.apply_action``; ``available_actions`` lists both for a page.

Photos are checked by content (JPEG, PNG, WebP; ``incidents.photos.sniff_image``) before anything
is written, stored content-addressed under ``instance/photos/hazards/<id>/`` and recorded with a
``photo`` event (or with the rectification they document).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.db import utcnow
from gridmap.hazards.models import Hazard, HazardPhoto
from gridmap.hazards.service import (SUPERVISOR_ROLES, TRANSITIONS, TIMEZONE, HazardError, _last_rectify,
                                     append_event, hazard_filter)

#: roles that assign the responsible unit and extend a deadline (the supervisors of the area)
MANAGE_ROLES = SUPERVISOR_ROLES
#: roles that supervise (督办): a level above the community
SUPERVISE_ROLES = ("street", "district", "city", "admin", "system")
MAX_REASON = 2000
#: an extension may move the deadline at most this far from now
MAX_EXTENSION_DAYS = 366


def _hazard(session: Session, actor: Actor, hazard_id: int, expected_version: int | None) -> Hazard:
    session.flush()
    h = session.scalar(select(Hazard).where(Hazard.id == hazard_id, hazard_filter(session, actor))
                       .execution_options(populate_existing=True))
    if h is None:
        raise HazardError("hazard", f"no hazard {hazard_id}", 404)
    if expected_version is not None and expected_version != h.version:
        raise HazardError("version", f"hazard {h.number} has changed (version {h.version}, you expected "
                                     f"{expected_version}); reload it and try again", 409)
    return h


def _reason(text: Any, what: str) -> str:
    if text is None or (isinstance(text, str) and not text.strip()):
        raise HazardError("reason", f"{what} needs a reason", 400)
    if not isinstance(text, str):
        raise HazardError("reason", "the reason must be text", 400)
    text = text.strip()
    if len(text) > MAX_REASON:
        raise HazardError("reason", f"the reason is too long: {len(text)} characters, at most {MAX_REASON}", 400)
    return text


def _write(session: Session, h: Hazard, values: dict, now: dt.datetime) -> None:
    n = session.execute(update(Hazard).where(Hazard.id == h.id, Hazard.version == h.version)
                        .values(**values, version=h.version + 1, updated_at=now)
                        .execution_options(synchronize_session=False)).rowcount
    if n != 1:
        raise HazardError("version", f"hazard {h.number} was changed by another action while you were acting; "
                                     "reload it and try again", 409)
    session.refresh(h)


def _not_closed(h: Hazard, what: str) -> None:
    if h.status == "closed":
        raise HazardError("action", f"hazard {h.number} is closed (已销号): reopen it before you {what}", 409)


def assign_unit(session: Session, hazard_id: int, actor: Actor, *, unit, person=None, comment: str | None = None,
                expected_version: int | None = None, now: dt.datetime | None = None) -> Hazard:
    """Set the responsible unit (责任单位) and, optionally, its contact person."""
    now = now or utcnow()
    h = _hazard(session, actor, hazard_id, expected_version)
    if actor.role not in MANAGE_ROLES:
        raise HazardError("action", "assigning the responsible unit needs a supervisor (head and up)", 403)
    _not_closed(h, "assign it")
    if not isinstance(unit, str) or not unit.strip():
        raise HazardError("unit", "the responsible unit is required (责任单位)", 400)
    unit = unit.strip()
    if len(unit) > 200:
        raise HazardError("unit", f"the responsible unit is too long: {len(unit)} characters, at most 200", 400)
    if person is not None and not isinstance(person, str):
        raise HazardError("person", "the person must be text", 400)
    person = (person or "").strip() or None
    if person and len(person) > 80:
        raise HazardError("person", f"the person is too long: {len(person)} characters, at most 80", 400)
    before = {"unit": h.responsible_unit, "person": h.responsible_person}
    _write(session, h, {"responsible_unit": unit, "responsible_person": person}, now)
    append_event(session, h, "assign", actor, from_status=h.status, to_status=h.status,
                 comment=(comment or "").strip()[:MAX_REASON] or None,
                 data={"unit": unit, "person": person, "before": before}, at=now)
    return h


def parse_deadline(value) -> dt.datetime:
    """A new deadline: YYYY-MM-DD (the end of that local day) or an ISO time with a zone."""
    from gridmap.hazards.service import parse_time

    if value is None or (isinstance(value, str) and not value.strip()):
        raise HazardError("deadline", "give the new deadline (YYYY-MM-DD)", 400)
    return parse_time(value, "deadline", end_of_day=True)


def extend(session: Session, hazard_id: int, actor: Actor, *, deadline, reason, expected_version: int | None = None,
           now: dt.datetime | None = None) -> Hazard:
    """Move an open hazard's rectification deadline later (延期), with a reason; counted per hazard."""
    now = now or utcnow()
    reason = _reason(reason, "an extension")
    new = parse_deadline(deadline)
    h = _hazard(session, actor, hazard_id, expected_version)
    if actor.role not in MANAGE_ROLES:
        raise HazardError("action", "an extension is approved by a supervisor (head and up)", 403)
    if h.status != "open":
        raise HazardError("action", f"only a hazard waiting for rectification (待整改) can be extended; "
                                    f"{h.number} is {h.status}", 409)
    if h.rectify_deadline is not None and new <= h.rectify_deadline:
        old = h.rectify_deadline.astimezone(TIMEZONE).strftime("%Y-%m-%d %H:%M")
        raise HazardError("deadline", f"the new deadline must be after the current one ({old})", 400)
    if new <= now:
        raise HazardError("deadline", "the new deadline lies in the past", 400)
    if new > now + dt.timedelta(days=MAX_EXTENSION_DAYS):
        raise HazardError("deadline", f"an extension reaches at most {MAX_EXTENSION_DAYS} days ahead", 400)
    old = h.rectify_deadline
    _write(session, h, {"rectify_deadline": new, "extension_count": (h.extension_count or 0) + 1}, now)
    append_event(session, h, "extend", actor, from_status=h.status, to_status=h.status, comment=reason,
                 data={"from": old.isoformat() if old else None, "to": new.isoformat()}, at=now)
    return h


def supervise(session: Session, hazard_id: int, actor: Actor, *, comment, expected_version: int | None = None,
              now: dt.datetime | None = None) -> Hazard:
    """督办: a street office or a higher level puts the hazard under its supervision (once), with its note."""
    now = now or utcnow()
    comment = _reason(comment, "督办 (supervision)")
    h = _hazard(session, actor, hazard_id, expected_version)
    if actor.role not in SUPERVISE_ROLES:
        raise HazardError("action", f"督办 is for {', '.join(SUPERVISE_ROLES[:-1])} (a level above the community)",
                          403)
    _not_closed(h, "supervise it")
    if h.supervised:
        raise HazardError("action", f"hazard {h.number} is supervised already (督办, since "
                                    f"{h.supervised_at.astimezone(TIMEZONE):%Y-%m-%d} by {h.supervised_by})", 409)
    _write(session, h, {"supervised": True, "supervised_at": now, "supervised_by": actor.name[:120]}, now)
    append_event(session, h, "supervise", actor, from_status=h.status, to_status=h.status, comment=comment, at=now)
    return h


# ----------------------------------------------------------------------------- photos

def check_photo(data: bytes, max_bytes: int) -> tuple[str, str]:
    """(extension, content type) of an acceptable photo; HazardError 400/413/415 otherwise."""
    from gridmap.incidents.photos import TYPES, sniff_image

    if not data:
        raise HazardError("photo", "the photo is empty", 400)
    if len(data) > max_bytes:
        raise HazardError("photo", f"the photo is larger than {max_bytes // 1024} KB", 413)
    kind = sniff_image(data[:16])
    if kind is None:
        raise HazardError("photo", "the file is not a JPEG, PNG or WebP image (checked by its content)", 415)
    return TYPES[kind]


def store_photo(session: Session, h: Hazard, data: bytes, *, filename: str | None, instance_path,
                event_id: int | None, max_bytes: int) -> HazardPhoto:
    """Store one checked photo of ``h`` (file first, then the row; the file goes if the row fails)."""
    from gridmap.incidents.photos import _safe_name

    ext, ctype = check_photo(data, max_bytes)
    sha = hashlib.sha256(data).hexdigest()
    rel = f"photos/hazards/{h.id}/{sha}.{ext}"
    target = Path(instance_path) / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    created = False
    if not target.exists():
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
            created = True
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    try:
        p = HazardPhoto(hazard_id=h.id, event_id=event_id, filename=_safe_name(filename), content_type=ctype,
                        size=len(data), sha256=sha, stored_path=rel, created_at=utcnow())
        session.add(p)
        session.flush()
    except BaseException:
        if created:
            target.unlink(missing_ok=True)
        raise
    return p


def photo_path(photo: HazardPhoto, instance_path) -> Path:
    """The stored file of ``photo``, refused when its path leaves the photos folder."""
    root = (Path(instance_path) / "photos" / "hazards").resolve()
    path = (Path(instance_path) / photo.stored_path).resolve()
    if root not in path.parents:
        raise HazardError("photo", "stored path outside the photos folder", 404)
    return path


def rectify_with_photos(session: Session, hazard_id: int, actor: Actor, *, comment, photos: list[tuple[bytes, str]],
                        instance_path, max_bytes: int, expected_version: int | None = None,
                        now: dt.datetime | None = None) -> Hazard:
    """Rectify (``service.apply_action``) and store its photos with that event, all or nothing:
    every photo is checked before the hazard changes."""
    from gridmap.hazards.models import HazardEvent
    from gridmap.hazards.service import apply_action

    for data, _name in photos:
        check_photo(data, max_bytes)
    h = apply_action(session, hazard_id, "rectify", actor, comment=comment, data={"photos": len(photos)},
                     expected_version=expected_version, now=now)
    ev = session.scalar(select(HazardEvent).where(HazardEvent.hazard_id == h.id)
                        .order_by(HazardEvent.seq.desc()).limit(1))
    for data, name in photos:
        store_photo(session, h, data, filename=name, instance_path=instance_path, event_id=ev.id,
                    max_bytes=max_bytes)
    return h


# ----------------------------------------------------------------------------- what a page offers

def available_actions(session: Session, h: Hazard, actor: Actor) -> list[str]:
    """The actions ``actor`` may try on ``h`` now (a page shows these; the services still decide)."""
    out = []
    if actor.role == "department":
        return out
    supervisor = actor.role in SUPERVISOR_ROLES
    for name, table in TRANSITIONS.items():
        tr = table.get(h.status)
        if tr is None or (tr.who == "supervisor" and not supervisor):
            continue
        out.append(name)
    if h.status != "closed" and actor.role in MANAGE_ROLES:
        out.append("assign")
    if h.status == "open" and actor.role in MANAGE_ROLES:
        out.append("extend")
    if h.status != "closed" and not h.supervised and actor.role in SUPERVISE_ROLES:
        out.append("supervise")
    return out


def rectified_by_actor(session: Session, h: Hazard, actor: Actor) -> bool:
    """Whether ``actor`` did the last rectification (and so may not verify it)."""
    last = _last_rectify(session, h.id)
    return last is not None and ((actor.worker_id is not None and actor.worker_id == last.actor_worker_id)
                                 or (actor.user_id is not None and actor.user_id == last.actor_user_id))
