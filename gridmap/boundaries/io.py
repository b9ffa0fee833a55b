"""Reading boundary files (district, street, community or cell polygons).

Owns: turning a Shapefile (plain or zipped), GeoJSON, GeoPackage or KML into a clean
:class:`BoundaryLayer` (a GeoDataFrame of code, name, parent code, kind, household figures
and a MultiPolygon in EPSG:4326, plus the list of :class:`Problem` found on the way), the
DBF text-encoding detection Chinese shapefiles need (.cpg, then the DBF language-driver
byte, then the ``encoding`` option, then UTF-8 with a GBK fallback), coordinate-system
handling (the file's own CRS, or ``crs`` naming wgs84/cgcs2000/gcj02/bd09/EPSG:<n>). Writing a
layer back out lives in :mod:`gridmap.boundaries.export`.

Everything here is pure: files in, GeoDataFrames and problem reports out. A bad feature
never raises; it becomes a Problem and the rest of the file is kept. Only a file that
cannot be read at all raises :class:`BoundaryFileError`. Hierarchy checks (overlaps, gaps,
children outside their parent) live in :mod:`gridmap.boundaries.checks`.
"""
from __future__ import annotations

import codecs
import re
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridmap.geo import coords, measure

__all__ = [
    "LEVELS",
    "Problem",
    "BoundaryLayer",
    "BoundaryFileError",
    "read_boundary_file",
    "detect_dbf_encoding",
    "FEATURE_COLUMNS",
]

LEVELS = ("district", "street", "community", "cell")
FEATURE_COLUMNS = ["row", "code", "name", "parent_code", "kind", "households", "population", "geometry"]

#: file suffix -> format
FORMATS = {
    ".shp": "shapefile",
    ".zip": "zip",
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".kml": "kml",
}
_FORMAT_NAMES = {"shapefile": "Shapefile", "geojson": "GeoJSON", "gpkg": "GeoPackage", "kml": "KML"}

#: candidate source field names per target column, matched case-insensitively, in priority order
FIELD_CANDIDATES: dict[str, tuple[str, ...]] = {
    "code": ("code", "area_code", "grid_code", "编码", "代码", "网格编码", "区划代码", "adcode"),
    "name": ("name", "area_name", "grid_name", "名称", "网格名称", "mc"),
    "parent_code": ("parent_code", "parent", "parent_cod", "parentcode", "上级编码", "pcode"),
    "kind": ("kind", "type", "类型"),
    "households": ("households", "hh", "户数"),
    "population": ("population", "pop", "人口"),
}

#: DBF header byte 29 (language driver id) -> Python codec; anything else is "unknown".
#: Western code pages (0x01, 0x03, 0x57 "ANSI", ...) are deliberately not trusted: Chinese
#: data tagged with them is common and would come out garbled.
LDID_ENCODINGS = {
    0x4D: "GBK",  # 936 PRC GBK
    0x7A: "GBK",  # ESRI's id for 936 PRC GBK
    0x4E: "CP949",  # Korean
    0x79: "CP949",
    0x4F: "BIG5",  # 950 Traditional Chinese
    0x78: "BIG5",
    0x13: "CP932",  # Japanese Shift-JIS
    0x7B: "CP932",
}

_CPG_NUMERIC = {
    "65001": "UTF-8",
    "936": "GBK",
    "20936": "GBK",
    "54936": "GB18030",
    "950": "BIG5",
    "949": "CP949",
    "932": "CP932",
    "88591": "ISO-8859-1",
    "28591": "ISO-8859-1",
}
_CPG_NAMES = {
    "UTF8": "UTF-8",
    "UTF-8": "UTF-8",
    "GBK": "GBK",
    "CP936": "GBK",
    "MS936": "GBK",
    "GB2312": "GBK",  # GBK is a superset; files labelled GB2312 often hold GBK-only characters
    "EUC-CN": "GBK",
    "GB18030": "GB18030",
    "BIG5": "BIG5",
    "8859_1": "ISO-8859-1",
    "ISO88591": "ISO-8859-1",
    "ISO-8859-1": "ISO-8859-1",
    "LATIN1": "ISO-8859-1",
}
_FALLBACK_ENCODING = "GBK"

_REASON_LOCATION = re.compile(r"^(?P<reason>.*?)\s*\[(?P<x>[-+\d.eE]+)\s+(?P<y>[-+\d.eE]+)\]\s*$")
# rough extent of China and its seas, for the "is the CRS right?" warning
_CHINA_BOUNDS = (73.0, 3.0, 136.0, 54.0)


# --------------------------------------------------------------------------- data types


@dataclass
class Problem:
    """One finding about a boundary file or layer.

    ``severity`` is "error" (blocks the import), "warning", or "repair" (what ``fix``
    changed). ``message`` is one line naming the file, the feature and the reason (English);
    ``params`` holds its values where a page renders the message per language from ``kind``.
    """

    severity: str
    kind: str
    message: str
    codes: tuple[str, ...] = ()
    row: int | None = None
    lon: float | None = None
    lat: float | None = None
    #: the numbers and names of the message, for rendering it in another language (kind + params)
    params: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["codes"] = list(self.codes)
        return d

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


@dataclass
class BoundaryLayer:
    """A boundary file read into memory.

    ``features`` holds every feature that has a code and a polygonal geometry (invalid
    geometries included, unless repaired); features without either are left out and
    named in ``problems``.
    """

    path: str
    level: str
    features: gpd.GeoDataFrame
    encoding: str | None
    encoding_source: str
    source_crs: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def repairs(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "repair"]


class BoundaryFileError(Exception):
    """A file that cannot be read at all (missing, no CRS and no --crs, unknown format, no
    polygon features); message names the file and the reason."""


# --------------------------------------------------------------------------- encodings


def _normalize_encoding(label: str) -> str | None:
    """Python codec name for a .cpg / user encoding label, or None if unknown."""
    s = label.strip().lstrip("\ufeff").strip().upper()
    s = re.sub(r"^ANSI[\s_-]*", "", s)
    if not s:
        return None
    if s.isdigit():
        name = _CPG_NUMERIC.get(s, f"CP{s}")
    else:
        name = _CPG_NAMES.get(s.replace(" ", ""), s)
    try:
        codecs.lookup(name)
    except LookupError:
        return None
    return name


def _sidecar(path: Path, suffix: str) -> Path | None:
    """The file next to ``path`` with the same stem and ``suffix`` (case-insensitive)."""
    exact = path.with_suffix(suffix)
    if exact.exists():
        return exact
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return None
    stem = path.stem.lower()
    for f in siblings:
        if f.stem.lower() == stem and f.suffix.lower() == suffix:
            return f
    return None


def _detect(path: Path) -> tuple[str | None, str, str | None]:
    """(encoding, source, note): note explains a .cpg that could not be used."""
    note = None
    cpg = _sidecar(path, ".cpg")
    if cpg is not None:
        try:
            text = cpg.read_bytes().decode("utf-8-sig", errors="replace").strip()
        except OSError:
            text = ""
        enc = _normalize_encoding(text)
        if enc:
            return enc, "cpg", None
        note = f"{cpg.name} names an unknown encoding {text!r}"
    dbf = _sidecar(path, ".dbf")
    if dbf is not None:
        try:
            with open(dbf, "rb") as fh:
                header = fh.read(32)
        except OSError:
            header = b""
        if len(header) > 29 and header[29] in LDID_ENCODINGS:
            return LDID_ENCODINGS[header[29]], "dbf-language-driver", note
    return None, "none", note


def detect_dbf_encoding(shp_or_dbf_path: str | Path) -> tuple[str | None, str]:
    """Text encoding of a shapefile's DBF from its .cpg or its language-driver byte.

    Returns (Python codec name, source) with source "cpg" or "dbf-language-driver", or
    (None, "none") when neither says anything usable.
    """
    enc, source, _ = _detect(Path(shp_or_dbf_path))
    return enc, source


# --------------------------------------------------------------------------- helpers


def _feature_label(label: str, row: int, code: str = "", name: str = "") -> str:
    ident = " ".join(x for x in (code, name) if x)
    return f"{label} row {row} ({ident})" if ident else f"{label} row {row}"


def _fmt_point(lon: float | None, lat: float | None) -> str:
    if lon is None or lat is None or not np.isfinite(lon) or not np.isfinite(lat):
        return ""
    return f" at {lon:.6f} {lat:.6f}"


def _where(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A representative lon, lat per geometry (point on surface when valid, else the centre
    of its bounding box; NaN for missing/empty)."""
    n = len(geoms)
    pts = np.full(n, None, dtype=object)
    present = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    valid = present & shapely.is_valid(geoms)
    pts[valid] = shapely.point_on_surface(geoms[valid])
    other = present & ~valid
    pts[other] = shapely.centroid(shapely.envelope(geoms[other]))
    return shapely.get_x(pts), shapely.get_y(pts)


def _opt(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def _code_strings(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes as strings ("" when missing) and a mask of non-integral numeric codes.

    A numeric field read as float (330902001.0) becomes "330902001"; string fields keep
    their leading zeros (and lose a spreadsheet's trailing ".0").
    """
    n = len(s)
    bad = np.zeros(n, dtype=bool)
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("string").fillna("").to_numpy(dtype=object), bad
    if pd.api.types.is_integer_dtype(s.dtype):
        return s.astype("string").fillna("").to_numpy(dtype=object), bad
    if pd.api.types.is_float_dtype(s.dtype):
        v = s.to_numpy(dtype="float64", na_value=np.nan)
        fin = np.isfinite(v)
        integral = fin & (v == np.trunc(v)) & (np.abs(v) < 2**53)
        out = np.full(n, "", dtype=object)
        out[integral] = v[integral].astype(np.int64).astype(str)
        other = fin & ~integral
        out[other] = v[other].astype(str)
        bad[other] = True
        return out, bad
    text = s.astype("string").str.strip()
    text = text.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    return text.fillna("").to_numpy(dtype=object), bad


def _text(s: pd.Series) -> np.ndarray:
    return s.astype("string").str.strip().fillna("").to_numpy(dtype=object)


def _match_fields(columns: list[str], label: str, explicit: dict[str, str | None]) -> dict[str, str | None]:
    """Map target columns to source fields: explicit names (case-insensitive) or candidates."""
    lower = {}
    for c in columns:
        lower.setdefault(c.lower(), c)
    out: dict[str, str | None] = {}
    for target, cands in FIELD_CANDIDATES.items():
        given = explicit.get(target)
        if given:
            src = given if given in columns else lower.get(given.lower())
            if src is None:
                raise BoundaryFileError(
                    f"{label}: no field {given!r} for the {target.replace('_', ' ')}; "
                    f"fields: {', '.join(columns) or '(none)'}"
                )
            out[target] = src
            continue
        out[target] = next((lower[c.lower()] for c in cands if c.lower() in lower), None)
    missing = [t for t in ("code", "name") if out[t] is None]
    if missing:
        opts = " and ".join(f"--{t}-field" for t in missing)
        raise BoundaryFileError(
            f"{label}: no {' or '.join(missing)} field found (looked for "
            + "; ".join(f"{t}: {', '.join(FIELD_CANDIDATES[t])}" for t in missing)
            + f"); fields: {', '.join(columns) or '(none)'}; name them with {opts}"
        )
    return out


# --------------------------------------------------------------------------- opening files


def _extract_zip(path: Path, dest: Path, label: str) -> None:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BoundaryFileError(f"{label}: not a readable zip file ({exc})") from exc
    with zf:
        for info in zf.infolist():
            name = info.filename
            if not info.flag_bits & 0x800:  # not flagged UTF-8: Chinese Windows zips use GBK
                try:
                    name = name.encode("cp437").decode("gbk")
                except (UnicodeEncodeError, UnicodeDecodeError):
                    pass
            parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".", "..", "/")]
            if info.is_dir() or not parts or parts[0] == "__MACOSX":
                continue
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)


def _pick_in_zip(root: Path, label: str, layer: str | int | None) -> tuple[Path, str]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    shps = [p for p in files if p.suffix.lower() == ".shp"]
    found = shps or [p for p in files if p.suffix.lower() in (".geojson", ".json", ".gpkg", ".kml")]
    if not found:
        raise BoundaryFileError(
            f"{label}: the zip holds no .shp (or GeoJSON, GeoPackage, KML) file; "
            f"it holds: {', '.join(p.name for p in files) or 'nothing'}"
        )
    if len(found) > 1 and shps:
        if isinstance(layer, str):
            pick = [p for p in found if p.stem.lower() == layer.lower() or p.name.lower() == layer.lower()]
            if pick:
                return pick[0], FORMATS[pick[0].suffix.lower()]
        raise BoundaryFileError(
            f"{label}: the zip holds {len(found)} shapefiles ({', '.join(p.name for p in found)}); "
            "pick one with --layer"
        )
    return found[0], FORMATS[found[0].suffix.lower()]


def _pick_layer(src: Path, label: str, layer: str | int | None, problems: list[Problem]) -> str | int | None:
    try:
        layers = pyogrio.list_layers(src)
    except Exception as exc:  # pyogrio.errors.DataSourceError and friends
        raise BoundaryFileError(f"{label}: cannot open: {exc}") from exc
    names = [str(n) for n in layers[:, 0]] if len(layers) else []
    types = [str(t) for t in layers[:, 1]] if len(layers) else []
    listing = ", ".join(f"{n} ({t})" for n, t in zip(names, types)) or "none"
    if layer is not None:
        if isinstance(layer, int) and 0 <= layer < len(names):
            return names[layer]
        if str(layer) in names:
            return str(layer)
        raise BoundaryFileError(f"{label}: no layer {layer!r}; layers: {listing}")
    if not names:
        raise BoundaryFileError(f"{label}: the file has no layers")
    if len(names) == 1:
        return names[0]
    candidates = []  # in file order: polygon layers, and untyped layers (KML folders) holding polygons
    for n, t in zip(names, types):
        t = t.lower()
        if "polygon" in t:
            candidates.append(n)
        elif t in ("unknown", "geometry", "geometrycollection"):
            try:
                g = pyogrio.read_dataframe(src, layer=n, columns=[], on_invalid="ignore").geometry.values
            except Exception:  # an unreadable side layer does not make the file unreadable
                continue
            if np.isin(shapely.get_type_id(np.asarray(g, dtype=object)), (3, 6, 7)).any():
                candidates.append(n)
    if not candidates:
        raise BoundaryFileError(f"{label}: no layer holds polygons; layers: {listing}")
    if len(candidates) > 1:
        problems.append(Problem(
            "warning", "file",
            f"{label}: {len(candidates)} polygon layers ({', '.join(candidates)}); read the first, "
            f"{candidates[0]!r}; pick another with --layer",
        ))
    return candidates[0]


def _read_frame(src: Path, layer: str | int | None, encoding: str | None) -> gpd.GeoDataFrame:
    kwargs: dict[str, Any] = {"layer": layer, "on_invalid": "ignore", "use_arrow": False}
    if encoding:
        kwargs["encoding"] = encoding
    return pyogrio.read_dataframe(src, **kwargs)


def _has_replacement_chars(df: pd.DataFrame) -> bool:
    names = "".join(str(c) for c in df.columns)
    if "\ufffd" in names:
        return True
    for c in df.columns:
        if c == "geometry" or (df[c].dtype.kind not in "OSU" and not isinstance(df[c].dtype, pd.StringDtype)):
            continue
        if df[c].astype("string").str.contains("\ufffd", regex=False).any():
            return True
    return False


def _read_shapefile(
    src: Path, label: str, encoding: str | None, problems: list[Problem]
) -> tuple[gpd.GeoDataFrame, str, str]:
    """Read a shapefile decoding its DBF right: returns (frame, encoding, source)."""
    if encoding:
        enc = _normalize_encoding(encoding)
        if enc is None:
            raise BoundaryFileError(f"{label}: unknown text encoding {encoding!r} (try GBK or UTF-8)")
        source = "option"
    else:
        enc, source, note = _detect(src)
        if note:
            problems.append(Problem("warning", "encoding", f"{label}: {note}; ignoring it"))
        if enc is None:
            enc, source = "UTF-8", "default"
    try:
        df = _read_frame(src, None, enc)
        garbled = _has_replacement_chars(df)
        failure = "contains undecodable characters" if garbled else ""
    except UnicodeDecodeError as exc:
        df, failure = None, f"is not valid {enc} ({exc.reason} at byte {exc.start})"
    except Exception as exc:
        raise BoundaryFileError(f"{label}: cannot read: {exc}") from exc
    if not failure:
        return df, enc, source
    if source == "option":
        raise BoundaryFileError(f"{label}: the attribute text {failure} as the given encoding {enc}")
    if enc.upper() == _FALLBACK_ENCODING:
        raise BoundaryFileError(
            f"{label}: the attribute text {failure} ({source}); give the encoding with --encoding"
        )
    try:
        df2 = _read_frame(src, None, _FALLBACK_ENCODING)
    except UnicodeDecodeError as exc:
        raise BoundaryFileError(
            f"{label}: the attribute text is neither {enc} nor {_FALLBACK_ENCODING}; "
            "give the encoding with --encoding"
        ) from exc
    except Exception as exc:
        raise BoundaryFileError(f"{label}: cannot read: {exc}") from exc
    said = {"cpg": "the .cpg says", "dbf-language-driver": "the DBF header says", "default": "no .cpg; tried"}[source]
    problems.append(Problem(
        "warning", "encoding",
        f"{label}: {said} {enc} but the attribute text {failure}; read it as {_FALLBACK_ENCODING} instead "
        "(check the names; give --encoding to override)",
    ))
    return df2, _FALLBACK_ENCODING, "default" if source == "default" else source


# --------------------------------------------------------------------------- coordinates


def _crs_label(pcrs) -> str:
    epsg = pcrs.to_epsg()
    return f"EPSG:{epsg} ({pcrs.name})" if epsg else pcrs.name


def _apply_xy(geoms: np.ndarray, fn) -> np.ndarray:
    def f(xy: np.ndarray) -> np.ndarray:
        x, y = fn(xy[:, 0], xy[:, 1])
        return np.column_stack([np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")])

    return shapely.transform(geoms, f)


def _to_wgs84(
    geoms: np.ndarray, file_crs, crs_opt: str | int | None, label: str, problems: list[Problem]
) -> tuple[np.ndarray, str]:
    """Convert a geometry array to EPSG:4326; returns (geoms, human-readable source CRS)."""
    if crs_opt is not None and str(crs_opt).strip() != "":
        try:
            c = coords.parse_crs(crs_opt)
        except coords.CRSError as exc:
            raise BoundaryFileError(f"{label}: {exc}") from exc
        described = f"{c} (given by --crs)"
        if file_crs is not None:
            fepsg = file_crs.to_epsg()
            geographic_ok = c.kind in ("wgs84", "cgcs2000", "gcj02", "bd09") and fepsg in (4326, 4490)
            if not geographic_ok and not (c.kind == "epsg" and fepsg == c.epsg):
                problems.append(Problem(
                    "warning", "crs",
                    f"{label}: the file says {_crs_label(file_crs)} but --crs {c} was given; using {c}",
                ))
        if c.kind in ("wgs84", "cgcs2000"):
            return geoms, described
        if c.kind == "gcj02":
            return _apply_xy(geoms, coords.gcj02_to_wgs84), described
        if c.kind == "bd09":
            return _apply_xy(geoms, coords.bd09_to_wgs84), described
        return _apply_xy(geoms, coords.transformer(c.epsg, 4326).transform), described
    if file_crs is None:
        raise BoundaryFileError(
            f"{label}: the file has no coordinate system{' (no .prj)' if label.lower().endswith('.shp') else ''}; "
            "give it with --crs "
            "(wgs84, cgcs2000, gcj02, bd09 or EPSG:<code>, e.g. --crs EPSG:4550)"
        )
    described = f"{_crs_label(file_crs)} (from the file)"
    epsg = file_crs.to_epsg()
    if epsg in (4326, 4490):
        return geoms, described
    src = epsg if epsg else file_crs.to_wkt()
    return _apply_xy(geoms, coords.transformer(src, 4326).transform), described


# --------------------------------------------------------------------------- reading


def read_boundary_file(
    path: str | Path,
    level: str,
    *,
    code_field: str | None = None,
    name_field: str | None = None,
    parent_field: str | None = None,
    crs: str | int | None = None,
    encoding: str | None = None,
    fix: bool = False,
    layer: str | int | None = None,
) -> BoundaryLayer:
    """Read a boundary file of one ``level`` into a :class:`BoundaryLayer`.

    ``crs`` overrides the file's coordinate system (wgs84, cgcs2000, gcj02, bd09,
    EPSG:<n>); ``encoding`` overrides the detected DBF encoding; ``fix`` repairs invalid
    geometries (reported as "repair" problems) instead of reporting them as errors;
    ``layer`` picks a GeoPackage/KML layer or a shapefile inside a zip.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}: use one of {', '.join(LEVELS)}")
    p = Path(path)
    label = p.name
    if not p.exists():
        raise BoundaryFileError(f"{path}: no such file")
    if p.is_dir():
        raise BoundaryFileError(f"{path}: is a directory, not a boundary file")
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise BoundaryFileError(
            f"{label}: unknown format {p.suffix or '(no extension)'!r}; "
            "use .shp, .zip (zipped shapefile), .geojson/.json, .gpkg or .kml"
        )
    if fmt == "zip":
        with tempfile.TemporaryDirectory(prefix="gridmap-zip-") as tmp:
            _extract_zip(p, Path(tmp), label)
            inner, inner_fmt = _pick_in_zip(Path(tmp), label, layer)
            return _read_source(
                inner, inner_fmt, str(path), f"{label}/{inner.relative_to(tmp).as_posix()}", level,
                code_field=code_field, name_field=name_field, parent_field=parent_field,
                crs=crs, encoding=encoding, fix=fix, layer=None if inner_fmt == "shapefile" else layer,
            )
    return _read_source(
        p, fmt, str(path), label, level, code_field=code_field, name_field=name_field,
        parent_field=parent_field, crs=crs, encoding=encoding, fix=fix, layer=layer,
    )


def _read_source(
    src: Path, fmt: str, path: str, label: str, level: str, *, code_field, name_field,
    parent_field, crs, encoding, fix: bool, layer,
) -> BoundaryLayer:
    problems: list[Problem] = []

    # 1. raw frame, text decoded right
    if fmt == "shapefile":
        if _sidecar(src, ".dbf") is None:
            raise BoundaryFileError(f"{label}: the shapefile has no .dbf (attribute table) next to it")
        df, used_enc, enc_source = _read_shapefile(src, label, encoding, problems)
    else:
        if encoding:
            problems.append(Problem(
                "warning", "encoding",
                f"{label}: --encoding {encoding} ignored: {_FORMAT_NAMES[fmt]} text is always Unicode",
            ))
        chosen = _pick_layer(src, label, layer, problems)
        try:
            df = _read_frame(src, chosen, None)
        except Exception as exc:
            raise BoundaryFileError(f"{label}: cannot read: {exc}") from exc
        used_enc, enc_source = None, "n/a"
    if not isinstance(df, gpd.GeoDataFrame) or "geometry" not in df:
        raise BoundaryFileError(f"{label}: the file has no geometries")
    n = len(df)
    if n == 0:
        raise BoundaryFileError(f"{label}: the file has no features")
    rows = np.arange(1, n + 1)

    # 2. geometry types (before any CRS work, so a points file fails for the right reason)
    geoms = shapely.force_2d(np.asarray(df.geometry.values, dtype=object))
    type_ids = shapely.get_type_id(geoms)  # -1 for None
    empty = (type_ids < 0) | shapely.is_empty(geoms)
    polygonal = np.isin(type_ids, (3, 6)) & ~empty
    collection = (type_ids == 7) & ~empty
    if collection.any():  # keep the polygonal members of geometry collections
        idx = np.flatnonzero(collection)
        parts, owner = shapely.get_parts(geoms[idx], return_index=True)
        parts, owner2 = shapely.get_parts(parts, return_index=True)  # flatten nested multis
        owner = owner[owner2]
        keep = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)
        has_poly = np.zeros(len(idx), dtype=bool)
        if keep.any():
            got, inv = np.unique(owner[keep], return_inverse=True)
            geoms[idx[got]] = shapely.multipolygons(parts[keep], indices=inv)
            has_poly[got] = True
        polygonal[idx[has_poly]] = True
        collection[idx[has_poly]] = False
        for i in idx[has_poly]:
            problems.append(Problem(
                "warning", "not_polygon",
                f"{_feature_label(label, int(rows[i]))}: a geometry collection; kept its polygons, dropped the rest",
                row=int(rows[i]),
            ))
    if not polygonal.any():
        found = pd.Series(shapely.get_type_id(geoms[~empty])).map(
            {0: "Point", 1: "LineString", 2: "LinearRing", 4: "MultiPoint", 5: "MultiLineString", 7: "GeometryCollection"}
        ).value_counts()
        what = ", ".join(f"{k} ×{v}" for k, v in found.items()) or "only empty geometries"
        raise BoundaryFileError(f"{label}: no polygon features (found {what}); boundaries must be polygons")

    # 3. coordinates -> WGS84
    geoms, source_crs = _to_wgs84(geoms, df.crs, crs, label, problems)
    b = shapely.bounds(geoms)
    with np.errstate(invalid="ignore"):
        out_of_range = polygonal & ~(
            (b[:, 0] >= -180) & (b[:, 2] <= 180) & (b[:, 1] >= -90) & (b[:, 3] <= 90)
        )
    if out_of_range[polygonal].all():
        raise BoundaryFileError(
            f"{label}: the coordinates ({b[polygonal, 0].min():.1f} {b[polygonal, 1].min():.1f} … "
            f"{b[polygonal, 2].max():.1f} {b[polygonal, 3].max():.1f}) are not longitude/latitude when read "
            f"as {source_crs}; the coordinate system is wrong: give the right one with --crs "
            "(e.g. EPSG:4550 for CGCS2000 Gauss-Krüger CM 123°E)"
        )
    ok = polygonal & ~out_of_range
    tb = shapely.total_bounds(geoms[ok])
    if tb[0] < _CHINA_BOUNDS[0] or tb[1] < _CHINA_BOUNDS[1] or tb[2] > _CHINA_BOUNDS[2] or tb[3] > _CHINA_BOUNDS[3]:
        problems.append(Problem(
            "warning", "crs",
            f"{label}: features lie outside China ({tb[0]:.4f} {tb[1]:.4f} … {tb[2]:.4f} {tb[3]:.4f} read as "
            f"{source_crs}); is the coordinate system right?",
        ))

    # 4. attributes
    columns = [str(c) for c in df.columns if c != "geometry"]
    fields = _match_fields(
        columns, label, {"code": code_field, "name": name_field, "parent_code": parent_field}
    )
    codes, code_not_int = _code_strings(df[fields["code"]])
    names = _text(df[fields["name"]])
    if fields["parent_code"]:
        parents, _ = _code_strings(df[fields["parent_code"]])
        parents = np.where(parents == "", None, parents)
    else:
        parents = np.full(n, None, dtype=object)
    if fields["kind"]:
        kinds = _text(df[fields["kind"]])
        kinds = np.where(kinds == "", None, kinds)
    else:
        kinds = np.full(n, None, dtype=object)

    def ident(i: int) -> str:
        return _feature_label(label, int(rows[i]), codes[i], names[i])

    lon, lat = _where(geoms)

    def prob(severity: str, kind: str, i: int, reason: str, *, at: bool = True, plon=None, plat=None) -> None:
        x = _opt(lon[i] if plon is None else plon)
        y = _opt(lat[i] if plat is None else plat)
        problems.append(Problem(
            severity, kind, f"{ident(i)}: {reason}{_fmt_point(x, y) if at else ''}",
            codes=(codes[i],) if codes[i] else (), row=int(rows[i]), lon=x, lat=y,
        ))

    for i in np.flatnonzero(empty):
        prob("error", "empty_geometry", i, "empty or unreadable geometry", at=False)
    for i in np.flatnonzero(~empty & ~polygonal):
        tname = shapely.get_type_id(geoms[i])
        gname = {0: "a Point", 1: "a LineString", 2: "a LinearRing", 4: "a MultiPoint",
                 5: "a MultiLineString", 7: "a GeometryCollection without polygons"}.get(int(tname), "not a polygon")
        prob("error", "not_polygon", i, f"geometry is {gname}, not a polygon")
    for i in np.flatnonzero(out_of_range):
        prob("error", "crs", i, f"coordinates out of longitude/latitude range when read as {source_crs}", at=False)
    for i in np.flatnonzero(codes == ""):
        prob("error", "missing_field", i, f"empty code (field {fields['code']})")
    for i in np.flatnonzero(code_not_int):
        prob("error", "bad_value", i, f"code {codes[i]} is not a whole number (field {fields['code']})")
    for i in np.flatnonzero(names == ""):
        prob("error", "missing_field", i, f"empty name (field {fields['name']})")

    counts: dict[str, pd.Series] = {}
    for target in ("households", "population"):
        fname = fields[target]
        if fname is None:
            counts[target] = pd.Series(pd.array([pd.NA] * n, dtype="Int64"))
            continue
        raw = df[fname]
        text = raw.astype("string").str.strip()
        isnull = raw.isna().to_numpy() | (text.fillna("") == "").to_numpy()
        num = pd.to_numeric(text.where(~isnull), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad = ~isnull & ~(np.isfinite(num) & (num == np.round(num)) & (num >= 0))
        for i in np.flatnonzero(bad):
            prob("error", "bad_value", i, f"{target} must be a whole number ≥ 0, not {text.iloc[i]!r} (field {fname})",
                 at=False)
        good = ~isnull & ~bad
        vals = pd.array([pd.NA] * n, dtype="Int64")
        vals[good] = num[good].astype(np.int64)
        counts[target] = pd.Series(vals)

    # 5. polygons: multi, valid (or repaired)
    keep = ok & (codes != "")
    geoms = geoms.copy()
    single = keep & (shapely.get_type_id(geoms) == 3)
    if single.any():
        geoms[single] = shapely.multipolygons(geoms[single], indices=np.arange(int(single.sum())))
    valid = shapely.is_valid(geoms)
    invalid = np.flatnonzero(keep & ~valid)
    if len(invalid):
        reasons = shapely.is_valid_reason(geoms[invalid])
        parsed = [_REASON_LOCATION.match(r or "") for r in reasons]
        rlon = np.array([float(m["x"]) if m else np.nan for m in parsed])
        rlat = np.array([float(m["y"]) if m else np.nan for m in parsed])
        rtext = [m["reason"] if m else (r or "invalid") for m, r in zip(parsed, reasons)]
        if not fix:
            for k, i in enumerate(invalid):
                prob("error", "invalid", i, f"invalid geometry: {rtext[k]}", plon=rlon[k], plat=rlat[k])
        else:
            repaired = shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False)
            parts, owner = shapely.get_parts(repaired, return_index=True)
            parts, owner2 = shapely.get_parts(parts, return_index=True)
            owner = owner[owner2]
            is_poly = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)
            fixed = np.full(len(invalid), None, dtype=object)
            if is_poly.any():
                got, inv = np.unique(owner[is_poly], return_inverse=True)
                fixed[got] = shapely.multipolygons(parts[is_poly], indices=inv)
            epsg = measure.metric_crs_for(geoms[invalid])
            before = measure.areas_m2(geoms[invalid], epsg=epsg)
            after = np.where(shapely.is_missing(fixed), 0.0, measure.areas_m2(fixed, epsg=epsg))
            for k, i in enumerate(invalid):
                if fixed[k] is None or not shapely.is_valid(fixed[k]):
                    prob("error", "invalid", i,
                         f"invalid geometry: {rtext[k]}; repair left no valid polygon", plon=rlon[k], plat=rlat[k])
                    keep[i] = False
                    continue
                geoms[i] = fixed[k]
                prob("repair", "repaired", i,
                     f"repaired invalid geometry ({rtext[k]}{_fmt_point(_opt(rlon[k]), _opt(rlat[k]))}): "
                     f"area {before[k]:.1f} m² before, {after[k]:.1f} m² after, "
                     f"{int(shapely.get_num_geometries(fixed[k]))} polygon(s)",
                     at=False, plon=rlon[k], plat=rlat[k])

    # 6. duplicate codes among the kept features
    kept_idx = np.flatnonzero(keep)
    kc = pd.Series(codes[kept_idx], index=kept_idx)
    dup = kc[kc.duplicated(keep=False)]
    for code, group in dup.groupby(dup, sort=False):
        idx = group.index.to_numpy()
        rl = [str(int(rows[i])) for i in idx]
        which = " and ".join([", ".join(rl[:-1]), rl[-1]]) if len(rl) > 1 else rl[0]
        nm = "; ".join(dict.fromkeys(str(names[i]) for i in idx))
        problems.append(Problem(
            "error", "duplicate_code",
            f"{label} rows {which}: duplicate code {code} ({nm})",
            codes=(str(code),), row=int(rows[idx[0]]), lon=_opt(lon[idx[0]]), lat=_opt(lat[idx[0]]),
        ))

    features = gpd.GeoDataFrame(
        {
            "row": rows[keep].astype("int64"),
            "code": pd.array(codes[keep], dtype=object),
            "name": pd.array(names[keep], dtype=object),
            "parent_code": pd.array(parents[keep], dtype=object),
            "kind": pd.array(kinds[keep], dtype=object),
            "households": counts["households"][keep].reset_index(drop=True),
            "population": counts["population"][keep].reset_index(drop=True),
        },
        geometry=gpd.GeoSeries(geoms[keep], crs="EPSG:4326"),
        crs="EPSG:4326",
    )
    problems.sort(key=lambda pr: (pr.row is not None, pr.row or 0))
    return BoundaryLayer(
        path=path, level=level, features=features, encoding=used_enc,
        encoding_source=enc_source, source_crs=source_crs, problems=problems,
    )
