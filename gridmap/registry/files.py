"""Reading a register file: CSV (UTF-8 or GBK, detected by :mod:`gridmap.textio`) or XLSX.

Owns: ``read_table(path)`` → the lower-cased header and an iterator of ``(line, values)`` (the
line a user sees in their editor or spreadsheet), and ``RegistryFileError`` for a file that
cannot be read at all (missing, empty, undecodable, not a spreadsheet), which is refused whole.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterator

from gridmap.textio import csv_problem, csv_reader, decode_text


class RegistryFileError(ValueError):
    """The file as a whole cannot be imported."""


def read_table(path: str | Path) -> tuple[list[str], Iterator[tuple[int, list[str]]], str, int]:
    """(header, rows, encoding or "xlsx", about how many rows) of a CSV or XLSX file.

    A row that cannot be parsed is yielded as ``(line, ValueError)`` so that it is reported by
    line while the others import."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RegistryFileError(f"{path}: {e.strerror or e}") from None
    if not data.strip():
        raise RegistryFileError(f"{path}: the file is empty")
    if data[:4] == b"PK\x03\x04" or path.suffix.lower() in (".xlsx", ".xlsm"):
        return _read_xlsx(path, data)
    try:
        text, enc = decode_text(data)
    except UnicodeDecodeError:
        raise RegistryFileError(f"{path}: the file is neither UTF-8 nor GBK text nor an XLSX workbook") from None
    if "\x00" in text[:4096]:
        raise RegistryFileError(f"{path}: the file is binary, not CSV text")
    reader = csv_reader(io.StringIO(text, newline=""))  # strict: an unclosed quote is an error
    try:
        header = next(reader)
    except StopIteration:
        raise RegistryFileError(f"{path}: the file is empty") from None
    except csv.Error as e:
        raise RegistryFileError(f"{path}: cannot read the header: {e}") from None
    return _clean_header(header), _csv_rows(reader), enc, max(text.count("\n") - 1, 0)


def _clean_header(header) -> list[str]:
    return [str(h or "").strip().lower().lstrip("\ufeff") for h in header]


def _csv_rows(reader) -> Iterator[tuple[int, list[str]]]:
    line = reader.line_num
    while True:
        start = line + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            end = reader.line_num
            yield start, ValueError(csv_problem(start, end, e))  # type: ignore[misc]
            if end <= line:  # the reader cannot get past this point
                return
            line = end
            continue
        line = reader.line_num
        if any(v.strip() for v in row):
            yield start, row


def _read_xlsx(path: Path, data: bytes):
    import zipfile

    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as e:
        raise RegistryFileError(f"{path}: not a readable XLSX workbook: {e}") from None
    ws = wb.worksheets[0]
    it = ws.iter_rows(values_only=True)
    try:
        header = next(it)
    except StopIteration:
        raise RegistryFileError(f"{path}: the first sheet is empty") from None

    def rows():
        for line, row in enumerate(it, start=2):
            vals = ["" if v is None else (v.isoformat()[:10] if hasattr(v, "isoformat") else
                                          (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)))
                    for v in row]
            if any(v.strip() for v in vals):
                yield line, vals
        wb.close()

    return _clean_header(header), rows(), "xlsx", max((ws.max_row or 1) - 1, 0)
