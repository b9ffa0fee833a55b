"""What can be wrong with a draft, and the errors redrawing raises.

Owns: :class:`DraftProblem` (severity, kind, message, the codes involved, a place and a geometry
to draw on the editor's map; stored on the draft as JSON), :func:`problems_geojson`, and the
exceptions: :class:`DraftError` (400), :class:`DraftPermissionError` (403), :class:`DraftNotFound`
(404), :class:`ConflictError` (409, with the differences), :class:`DraftProblemsError` (422,
with the problems) and :class:`RedrawError` (drawn input or an operation that cannot be done).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import shapely
import shapely.errors
import shapely.ops



class DraftError(ValueError):
    """A draft operation cannot be done; the message says why (codes, coordinates)."""

    status = 400

    def __init__(self, message: str, problems: list["DraftProblem"] | None = None):
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class DraftPermissionError(DraftError):
    status = 403


class DraftNotFound(DraftError):
    status = 404


class DraftProblemsError(DraftError):
    """The draft's resulting boundaries break a rule: publishing is blocked."""

    status = 422


class ConflictError(DraftError):
    """Another change won: the draft was based on versions that are no longer current."""

    status = 409

    def __init__(self, message: str, differences: list[dict] | None = None):
        super().__init__(message)
        self.differences = differences or []


class RedrawError(DraftError):
    """Drawn input or an operation that cannot be done; says why and where."""


@dataclass
class DraftProblem:
    severity: str  # error, warning
    kind: str  # invalid, coverage, overlap, gap, outside_parent, sliver, stale, duplicate_code, needs_worker, size …
    message: str
    codes: tuple = ()
    lon: float | None = None
    lat: float | None = None
    geometry: Any = None  # shapely, EPSG:4326: what to draw on the editor's map

    def as_dict(self) -> dict:
        return {"severity": self.severity, "kind": self.kind, "message": self.message, "codes": list(self.codes),
                "lon": self.lon, "lat": self.lat,
                "geometry": shapely.geometry.mapping(self.geometry) if self.geometry is not None else None}

    @classmethod
    def from_dict(cls, d: dict) -> "DraftProblem":
        g = d.get("geometry")
        return cls(d["severity"], d["kind"], d["message"], tuple(d.get("codes") or ()), d.get("lon"), d.get("lat"),
                   shapely.geometry.shape(g) if g else None)

    def feature(self) -> dict:
        g = self.geometry
        if g is None and self.lon is not None and self.lat is not None:
            g = shapely.Point(self.lon, self.lat)
        return {"type": "Feature", "geometry": shapely.geometry.mapping(g) if g is not None else None,
                "properties": {"severity": self.severity, "kind": self.kind, "message": self.message,
                               "codes": list(self.codes)}}

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


def problems_geojson(problems: Iterable[DraftProblem]) -> dict:
    return {"type": "FeatureCollection", "features": [p.feature() for p in problems]}
