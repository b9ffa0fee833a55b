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


# ----------------------------------------------------------------------------- spreadsheets
#: a cell starting with one of these is read by Excel / LibreOffice / WPS as a formula (OWASP CSV injection)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def formula_safe(value):
    """A CSV cell that no spreadsheet runs: text starting with = + - @ (their full-width forms too),
    a tab or a line break gets the OWASP prefix ``'``; numbers, dates and other text pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def formula_safe_row(row: dict) -> dict:
    return {k: formula_safe(v) for k, v in row.items()}


def set_xlsx_cell(cell, value):
    """Put ``value`` into an openpyxl cell; text is always stored as text (openpyxl would store
    ``=HYPERLINK(…)`` as a live formula), numbers and dates keep their type."""
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"
    return cell


def formula_safe_frame(df):
    """``formula_safe`` over every text column of a pandas DataFrame (vectorised; a copy)."""
    out = df.copy()
    pattern = "^[" + "".join("\\" + c if c in "-\\]^" else c for c in FORMULA_PREFIXES) + "]"
    for col in out.columns:
        s = out[col]
        try:
            text = s.str  # text columns only (object, str, string); numbers have no .str
        except AttributeError:
            continue
        hit = text.contains(pattern, regex=True, na=False).to_numpy(dtype=bool)
        if hit.any():
            out[col] = s.where(~hit, "'" + s.astype("string"))
    return out
