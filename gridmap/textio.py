"""Text files as users bring them: UTF-8 (with or without a BOM), else GBK as Excel and Chinese
GIS software write it. Owns the one decoding rule every importer uses."""
from __future__ import annotations

ENCODINGS = ("utf-8-sig", "gb18030")  # GB18030 is a superset of GBK


def decode_text(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The text and the encoding it was read with ("utf-8" or "gbk"), or the one the user named.

    Raises UnicodeDecodeError when nothing fits.
    """
    if encoding:
        return data.decode(encoding), encoding
    last: UnicodeDecodeError | None = None
    for enc in ENCODINGS:
        try:
            return data.decode(enc), ("gbk" if enc == "gb18030" else "utf-8")
        except UnicodeDecodeError as e:
            last = e
    raise last  # type: ignore[misc]
