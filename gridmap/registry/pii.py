"""Personal data at rest (PIPL, GB/T 35273): keyed digests, AES-GCM ciphertexts, masks, checksums.

Owns: ``PiiKeys`` (one master key → an HMAC-SHA256 key for digests, used for lookups and
de-duplication, and an AES-256-GCM key for the encrypted copy; older master keys kept for
decryption during a rotation), where the key comes from (``GRIDMAP_PII_KEY``, else the file
``instance/pii_key`` generated once with mode 0600), masking (``330902********123X``,
``138****5678``), and the validators of identity numbers (GB 11643, ISO 7064 MOD 11-2 check
digit) and unified social credit codes (GB 32100, MOD 31 check character).

A ciphertext is ``<key id>:<base64(nonce ‖ ciphertext ‖ tag)>``; the key id (8 hex characters of
a hash of the master key) says which key decrypts it. Rotation: see docs/registry.md.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_AAD = b"gridmap-registry-pii-v1"


class PiiKeyError(RuntimeError):
    """No usable key, or a ciphertext whose key is not configured."""


def _master(secret: str | bytes) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else secret
    raw = raw.strip()
    if len(raw) < 32:
        raise PiiKeyError("a personal-data key must be at least 32 characters (generate one with "
                          "`python -c 'import secrets; print(secrets.token_hex(32))'`)")
    return hashlib.sha256(b"gridmap-pii-master\x00" + raw).digest()


class _Key:
    def __init__(self, secret: str | bytes):
        m = _master(secret)
        self.id = hashlib.sha256(b"id\x00" + m).hexdigest()[:8]
        self.mac = hmac.new(m, b"digest", hashlib.sha256).digest()
        self.aes = AESGCM(hmac.new(m, b"aes-gcm", hashlib.sha256).digest())


class PiiKeys:
    """The current key (digests and new ciphertexts) and the old ones (decryption only)."""

    def __init__(self, secret: str | bytes, old: list[str | bytes] | tuple = ()):
        self.current = _Key(secret)
        self.by_id = {self.current.id: self.current}
        for o in old:
            k = _Key(o)
            self.by_id.setdefault(k.id, k)

    @property
    def key_id(self) -> str:
        return self.current.id

    def digest(self, value: str) -> str:
        """HMAC-SHA256 (hex) of the normalised value under the current key."""
        return hmac.digest(self.current.mac, value.encode("utf-8"), "sha256").hex()  # one-shot, in OpenSSL

    def encrypt(self, value: str) -> str:
        nonce = secrets.token_bytes(12)
        ct = self.current.aes.encrypt(nonce, value.encode("utf-8"), _AAD)
        return f"{self.current.id}:{base64.b64encode(nonce + ct).decode('ascii')}"

    def key_id_of(self, token: str) -> str:
        return token.split(":", 1)[0]

    def decrypt(self, token: str) -> str:
        kid, _, body = token.partition(":")
        key = self.by_id.get(kid)
        if key is None:
            raise PiiKeyError(f"no key {kid} configured to decrypt this value (set GRIDMAP_PII_OLD_KEYS)")
        raw = base64.b64decode(body)
        return key.aes.decrypt(raw[:12], raw[12:], _AAD).decode("utf-8")


def keys_from_config(config: dict, instance_path: str | os.PathLike) -> PiiKeys:
    """The keys of an app: ``GRIDMAP_PII_KEY`` (else instance/pii_key, created once, 0600) and
    ``GRIDMAP_PII_OLD_KEYS`` (comma-separated, during a rotation)."""
    secret = config.get("GRIDMAP_PII_KEY") or _instance_key(Path(instance_path))
    old = [o for o in str(config.get("GRIDMAP_PII_OLD_KEYS") or "").split(",") if o.strip()]
    return PiiKeys(secret, old)


def _instance_key(instance: Path) -> str:
    path = instance / "pii_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        instance.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key


# ----------------------------------------------------------------------------- masks

def mask_id(id_number: str) -> str:
    """330902199001011234 → 330902********1234 (first 6, last 4)."""
    s = id_number or ""
    if len(s) <= 10:
        return "*" * len(s)
    return s[:6] + "*" * (len(s) - 10) + s[-4:]


def mask_phone(phone: str) -> str:
    """13812345678 → 138****5678; other numbers keep only their last 4 digits."""
    s = phone or ""
    if len(s) == 11 and s.startswith("1"):
        return s[:3] + "****" + s[-4:]
    if len(s) <= 4:
        return "*" * len(s)
    return "*" * (len(s) - 4) + s[-4:]


# ----------------------------------------------------------------------------- identity numbers

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"^[1-9]\d{16}[\dX]$")


def id_check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits (GB 11643)."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS)) % 11]


def normalize_id(value: str) -> str:
    return unicodedata.normalize("NFKC", value or "").strip().upper().replace(" ", "")


def id_problem(id_number: str, today: dt.date | None = None) -> str | None:
    """Why ``id_number`` (normalised) is not a valid 18-digit identity number, or None."""
    if not _ID_RE.match(id_number):
        return "identity number must be 18 characters: 17 digits and a digit or X"
    try:
        born = dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return "identity number holds no valid birth date"
    if born.year < 1900 or born > (today or dt.date.today()):
        return "identity number's birth date is out of range"
    if id_check_digit(id_number[:17]) != id_number[17]:
        return "identity number fails its check digit (GB 11643)"
    return None


def id_birth_date(id_number: str) -> dt.date:
    return dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def id_gender(id_number: str) -> str:
    return "M" if int(id_number[16]) % 2 else "F"


# ----------------------------------------------------------------------------- credit codes

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_RE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")


def credit_check_char(first17: str) -> str:
    """The GB 32100 check character of the first 17 characters of a unified social credit code."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS))
    return _USCC_CHARS[(31 - total % 31) % 31]


def credit_code_problem(code: str) -> str | None:
    """Why ``code`` (normalised) is not a unified social credit code, or None."""
    if not _USCC_RE.match(code):
        return ("credit code must be 18 characters: digits and capitals except I, O, S, V, Z, "
                "with a 6-digit region code in positions 3–8")
    if credit_check_char(code[:17]) != code[17]:
        return "credit code fails its check character (GB 32100)"
    return None


# ----------------------------------------------------------------------------- phones

_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE_RE = re.compile(r"^0\d{9,11}$")


def normalize_phone(value: str) -> tuple[str | None, str | None]:
    """(digits, problem): +86 138-1234-5678 → 13812345678; empty → (None, None)."""
    s = re.sub(r"[\s\-()（）]", "", unicodedata.normalize("NFKC", value or ""))
    if not s:
        return None, None
    if s.startswith("+86"):
        s = s[3:]
    elif s.startswith("0086"):
        s = s[4:]
    if _MOBILE_RE.match(s) or _LANDLINE_RE.match(s):
        return s, None
    return None, "phone must be an 11-digit mobile number (1xx…) or a landline with its area code (0xxx…)"
