"""Case photos: checked, content-addressed files under ``instance/photos/<case_id>/``.

Owns: accepting an upload (size limit ``GRIDMAP_PHOTO_MAX_BYTES``, default 5 MB; type decided by
the file's magic bytes, JPEG, PNG or WebP only, never by the declared content type or the file
name; then DECODED with Pillow under a pixel limit, ``MAX_PIXELS``, and RE-ENCODED, so what is
stored and served is an image Pillow drew itself: random bytes after a PNG signature, HTML after a
JPEG one, a 50,000 × 50,000 px decompression bomb are refused, and EXIF (GPS, camera, owner) and
every other metadata are dropped; the server's own time and place of the upload are kept in the
database), storing it as ``photos/<case_id>/<sha256>.<ext>`` (written to a temporary file and renamed,
so a half-written photo never appears; the same photo twice is stored once), the ``case_photos``
row with a "photo" history event, and finding a stored photo's file again.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.incidents.models import Case, CasePhoto

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
#: the most pixels a photo may have (a 12 MP phone photo is 4000 × 3000; 40 MP leaves room)
MAX_PIXELS = 40_000_000
#: Pillow's format name per accepted type, and the options it is saved with (no metadata)
_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
_SAVE = {"jpeg": {"quality": 90, "optimize": True}, "png": {"optimize": True}, "webp": {"quality": 90}}
#: (extension, content type) per accepted image type
TYPES = {"jpeg": ("jpg", "image/jpeg"), "png": ("png", "image/png"), "webp": ("webp", "image/webp")}


class PhotoError(ValueError):
    """An upload that is refused; ``status`` is the HTTP status (400, 413, 415)."""

    def __init__(self, message: str, status: int = 400, field: str = "photo"):
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


def sniff_image(head: bytes) -> str | None:
    """"jpeg", "png" or "webp" from the first bytes of a file, else None."""
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def reencode_image(data: bytes, kind: str, *, max_pixels: int = MAX_PIXELS) -> bytes:
    """``data`` decoded by Pillow (it must really be a ``kind`` image of at most ``max_pixels``)
    and encoded again without any metadata, turned upright by its EXIF orientation. PhotoError
    (415 unreadable or not that type, 413 too many pixels) otherwise."""
    import io
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[kind]])
            w, h = im.size
            if w * h > max_pixels:
                raise PhotoError(f"the photo has {w} × {h} pixels; at most {max_pixels:,} are accepted", 413)
            im.load()
            im = ImageOps.exif_transpose(im)
    except PhotoError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoError(f"the photo has too many pixels (at most {max_pixels:,})", 413) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise PhotoError(f"the file starts like a {kind.upper()} image but is not a readable one", 415) from None
    if kind == "jpeg" and im.mode not in ("RGB", "L", "CMYK"):
        im = im.convert("RGB")
    elif kind == "png" and im.mode not in ("RGB", "RGBA", "L", "LA", "P", "I", "1"):
        im = im.convert("RGBA")
    elif kind == "webp" and im.mode not in ("RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in im.mode else "RGB")
    out = io.BytesIO()
    im.save(out, format=_PIL_FORMAT[kind], **_SAVE[kind])  # no exif=, icc_profile=, pnginfo=: nothing kept
    return out.getvalue()


def _safe_name(name: str | None) -> str:
    base = os.path.basename((name or "").replace("\\", "/")).strip() or "photo"
    base = re.sub(r"[\x00-\x1f]", "", base)
    return base[:200]


def photos_root(instance_path: str | os.PathLike) -> Path:
    return Path(instance_path) / "photos"


def save_photo(session: Session, case: Case, stream: BinaryIO | bytes, *, filename: str | None,
               actor: Actor, instance_path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES,
               comment: str | None = None) -> CasePhoto:
    """Check and store one photo of ``case`` (in the caller's transaction); the row is returned.

    Raises PhotoError: empty (400), larger than ``max_bytes`` (413), not JPEG/PNG/WebP (415).
    """
    from gridmap.incidents.history import append_event

    data = stream if isinstance(stream, bytes) else stream.read(max_bytes + 1)
    if not data:
        raise PhotoError("the photo is empty")
    if len(data) > max_bytes:
        raise PhotoError(f"the photo is larger than {max_bytes // 1024} KB (GRIDMAP_PHOTO_MAX_BYTES)", 413)
    kind = sniff_image(data[:16])
    if kind is None:
        raise PhotoError("the file is not a JPEG, PNG or WebP image (checked by its content, not its name "
                         "or declared type)", 415)
    data = reencode_image(data, kind)
    ext, ctype = TYPES[kind]
    sha = hashlib.sha256(data).hexdigest()
    existing = session.scalar(select(CasePhoto).where(CasePhoto.case_id == case.id, CasePhoto.sha256 == sha))
    if existing is not None:
        return existing
    rel = f"photos/{case.id}/{sha}.{ext}"
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
        with session.begin_nested():
            ev = append_event(session, case, "photo", actor, from_status=case.status, to_status=case.status,
                              comment=comment, data={"sha256": sha, "size": len(data), "content_type": ctype})
            photo = CasePhoto(case_id=case.id, event_id=ev.id, filename=_safe_name(filename), content_type=ctype,
                              size=len(data), sha256=sha, stored_path=rel)
            session.add(photo)
            session.flush()
    except BaseException:
        if created:
            target.unlink(missing_ok=True)
        raise
    return photo


def photo_file(photo: CasePhoto, instance_path: str | os.PathLike) -> Path:
    """The stored file of ``photo`` (inside the photos folder: a tampered path is refused)."""
    root = photos_root(instance_path).resolve()
    path = (Path(instance_path) / photo.stored_path).resolve()
    if root not in path.parents:
        raise PhotoError("stored path outside the photos folder", 404)
    return path


def photo_dict(p: CasePhoto) -> dict:
    return {"id": p.id, "case_id": p.case_id, "filename": p.filename, "content_type": p.content_type,
            "size": p.size, "sha256": p.sha256, "created_at": p.created_at.isoformat() if p.created_at else None,
            "url": f"/api/v1/cases/{p.case_id}/photos/{p.id}"}
