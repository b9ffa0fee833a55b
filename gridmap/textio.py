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


#: encodings a CSV can be written in: UTF-8 with a BOM (the default: Excel on Chinese Windows
#: opens it as UTF-8), plain UTF-8 (for programs that choke on a BOM) or GBK (old office software)
CSV_OUTPUT_ENCODINGS = ("utf-8-sig", "utf-8", "gbk")
DEFAULT_CSV_ENCODING = "utf-8-sig"
_ALIASES = {"bom": "utf-8-sig", "utf8-bom": "utf-8-sig", "utf-8-bom": "utf-8-sig", "utf8": "utf-8",
            "utf-8-sig": "utf-8-sig", "utf-8": "utf-8", "gbk": "gbk", "cp936": "gbk", "gb18030": "gbk"}


def csv_output_encoding(name: str | None) -> str:
    """The CSV output encoding for a user's choice (None/"" = the default, UTF-8 with BOM);
    ValueError naming the choices otherwise."""
    if name is None or not str(name).strip():
        return DEFAULT_CSV_ENCODING
    enc = _ALIASES.get(str(name).strip().lower())
    if enc is None:
        raise ValueError(f"unknown CSV encoding {str(name)[:20]!r}: use utf-8-sig (UTF-8 with BOM, the default), "
                         f"utf-8 or gbk")
    return enc


def encode_csv(text: str, encoding: str | None = None) -> bytes:
    """CSV text as bytes in the chosen output encoding (a BOM added for utf-8-sig)."""
    enc = csv_output_encoding(encoding)
    return text.encode("gb18030" if enc == "gbk" else enc)
