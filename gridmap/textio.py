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


# ----------------------------------------------------------------------------- CSV
def csv_reader(lines):
    """A ``csv.reader`` for every importer: strict, so a quote opened and never closed is an error
    (``unexpected end of data``) instead of one field that swallows the rest of the file."""
    import csv

    return csv.reader(lines, strict=True)


def csv_dict_reader(lines):
    """``csv.DictReader`` over ``csv_reader``'s dialect (strict)."""
    import csv

    return csv.DictReader(lines, strict=True)


def csv_problem(start_line: int, end_line: int, error: Exception) -> str:
    """What went wrong where, for a ``csv.Error`` raised reading the record that began on
    ``start_line`` (the reader had reached ``end_line``)."""
    reason = str(error)
    span = f"line {start_line}" if end_line <= start_line else f"lines {start_line}–{end_line}"
    if "unexpected end of data" in reason or "EOF" in reason:
        return (f"line {start_line}: a quoted field opened here is never closed ({span} were read as one "
                f"record up to the end of the file); close the quote or remove it")
    return f"{span}: malformed CSV ({reason}); a quote inside a field must be doubled (\"\")"
