"""Bulk geocoding of CSV files: every row gets its cell, community and street, or an error.

Owns: reading large CSVs in chunks (UTF-8, else GBK as Excel writes it in China), validating
coordinates per row (not a number, out of range, looks swapped), the vectorized lookup of each
chunk, and writing every input column plus ``cell_code, community_code, street_code, snapped,
distance_m, error``. One bad row never stops the others.
"""
from __future__ import annotations

import csv
from typing import Callable

import numpy as np
import pandas as pd

from gridmap.boundaries.lookup import CellIndex
from gridmap.geo.coords import CRS
from gridmap.textio import formula_safe_frame

OUT_COLS = ["cell_code", "community_code", "street_code", "snapped", "distance_m", "error"]


class GeocodeError(Exception):
    """The file as a whole cannot be geocoded (missing columns, unreadable)."""


def sniff_encoding(path: str, explicit: str | None = None) -> str:
    if explicit:
        return explicit
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    try:
        head.decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError as e:
        if e.start > len(head) - 4:  # cut in the middle of a character at the end of the sample
            return "utf-8-sig"
    try:
        head.decode("gb18030")
        return "gb18030"
    except UnicodeDecodeError:
        raise GeocodeError(f"{path}: text is neither UTF-8 nor GBK; give --encoding") from None


def validate_coords(lon_s: pd.Series, lat_s: pd.Series, crs: CRS):
    """Numbers and per-row error messages (None where fine)."""
    lon = np.array(pd.to_numeric(lon_s.str.strip(), errors="coerce"), dtype="float64")
    lat = np.array(pd.to_numeric(lat_s.str.strip(), errors="coerce"), dtype="float64")
    err = np.full(len(lon), None, dtype=object)
    bad_lon = ~np.isfinite(lon)
    bad_lat = ~np.isfinite(lat)
    for i in np.flatnonzero(bad_lon | bad_lat):
        what = []
        if bad_lon[i]:
            what.append(f"lon {str(lon_s.iloc[i])[:30]!r} is not a number")
        if bad_lat[i]:
            what.append(f"lat {str(lat_s.iloc[i])[:30]!r} is not a number")
        err[i] = "; ".join(what)
    if crs.kind != "epsg":
        ok = ~(bad_lon | bad_lat)
        out = ok & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
        swapped = ok & (np.abs(lat) > 90) & (np.abs(lat) <= 180) & (np.abs(lon) <= 90)
        # a China-style mix-up: lat in 73..136 and lon in 3..54 also reads as swapped even when in range
        china_swap = ok & ~out & (lat >= 73) & (lat <= 136) & (lon >= 3) & (lon <= 54)
        for i in np.flatnonzero(out | china_swap):
            msg = f"coordinates out of range: lon {lon[i]}, lat {lat[i]}"
            if swapped[i] or china_swap[i]:
                msg = f"lon {lon[i]} / lat {lat[i]} look swapped (lon is east-west, 73–136 in China)"
            err[i] = msg
    bad = np.array([e is not None for e in err], dtype=bool)
    lon[bad] = np.nan
    lat[bad] = np.nan
    return lon, lat, err


def geocode_frame(index: CellIndex, df: pd.DataFrame, lon_col: str, lat_col: str, crs: CRS,
                  snap_m: float) -> pd.DataFrame:
    lon, lat, err = validate_coords(df[lon_col].astype(str), df[lat_col].astype(str), crs)
    res = index.locate(lon, lat, crs, snap_m)
    out = df.copy()
    out["cell_code"] = index.level_codes("cell", res.cell)
    out["community_code"] = index.level_codes("community", res.cell)
    out["street_code"] = index.level_codes("street", res.cell)
    out["snapped"] = np.where(res.cell >= 0, np.where(res.snapped, "true", "false"), "")
    out["distance_m"] = np.where(res.cell >= 0, np.round(res.distance_m, 2).astype(str), "")
    ok_coords = np.array([e is None for e in err], dtype=bool)
    invalid = ok_coords & ~res.valid
    for i in np.flatnonzero(invalid):
        err[i] = "coordinates out of range after conversion"
    out["error"] = err
    return out


def geocode_csv(index: CellIndex, src: str, dst: str, *, lon_col="lon", lat_col="lat", crs: CRS,
                snap_m: float = 100.0, encoding: str | None = None, chunk_rows: int = 200_000,
                progress: Callable[[int], None] | None = None, extra: Callable | None = None,
                extra_cols: tuple[str, ...] = (), output_encoding: str | None = None) -> dict:
    """Geocode ``src`` into ``dst`` chunk by chunk. ``extra`` (a callable taking and returning a
    chunk's result frame) adds columns ``extra_cols`` computed above this domain (e.g. the
    responsible worker); ``dst`` is written in ``output_encoding`` (default UTF-8 with a BOM)."""
    from gridmap.textio import csv_output_encoding

    enc = sniff_encoding(src, encoding)
    out_enc = csv_output_encoding(output_encoding)
    if out_enc == "gbk":
        out_enc = "gb18030"
    stats = {"rows": 0, "located": 0, "snapped": 0, "outside": 0, "errors": 0}
    last = 0
    with open(src, "r", encoding=enc, newline="") as fh, open(dst, "w", encoding=out_enc, newline="") as out:
        try:
            reader = pd.read_csv(fh, dtype=str, keep_default_na=False, chunksize=chunk_rows,
                                 on_bad_lines="warn", engine="c")
            first = True
            for chunk in reader:
                missing = [c for c in (lon_col, lat_col) if c not in chunk.columns]
                if missing:
                    raise GeocodeError(f"{src}: no column {', '.join(map(repr, missing))}; columns are "
                                       f"{', '.join(chunk.columns[:20])} (use --lon-col/--lat-col)")
                clash = [c for c in [*OUT_COLS, *extra_cols] if c in chunk.columns]
                if clash:
                    raise GeocodeError(f"{src}: already has column(s) {', '.join(clash)}; rename them first")
                res = geocode_frame(index, chunk, lon_col, lat_col, crs, snap_m)
                if extra is not None:
                    res = extra(res)
                formula_safe_frame(res).to_csv(out, index=False, header=first, quoting=csv.QUOTE_MINIMAL)
                first = False
                stats["rows"] += len(res)
                has_cell = res["cell_code"].notna().to_numpy()
                stats["located"] += int(has_cell.sum())
                stats["snapped"] += int((res["snapped"] == "true").sum())
                e = res["error"].notna().to_numpy()
                stats["errors"] += int(e.sum())
                stats["outside"] += int((~has_cell & ~e).sum())
                if progress:
                    pos = fh.buffer.tell() if hasattr(fh, "buffer") else 0
                    progress(max(pos - last, 0))
                    last = pos
            if first:
                raise GeocodeError(f"{src}: no rows")
        except pd.errors.EmptyDataError:
            raise GeocodeError(f"{src}: the file is empty") from None
        except pd.errors.ParserError as e:
            raise GeocodeError(f"{src}: cannot parse as CSV: {e}") from None
    return stats
