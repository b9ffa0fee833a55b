"""Redrawing boundaries: a change is drawn into a DRAFT, checked, previewed, then published at once,
re-routing the open cases whose cell changes.

Redrawing sits above boundaries, cases and assignment: publishing re-routes open cases and the
impact preview names the workers who gain or lose area. Nothing below this package imports it.

Modules, one concern each:

* :mod:`~gridmap.redraw.models` — the tables ``boundary_drafts`` and ``boundary_draft_areas`` and
  the draft vocabulary (statuses, actions, roles, default tolerance and household band);
* :mod:`~gridmap.redraw.problems` — what can be wrong with a draft (:class:`DraftProblem`) and the
  errors its functions raise;
* :mod:`~gridmap.redraw.state` — :class:`DraftState`, the current boundaries with a draft laid over
  them, loaded lazily;
* :mod:`~gridmap.redraw.drawing` — reading drawn input (WKT, GeoJSON, files) and refusing what
  cannot be meant;
* :mod:`~gridmap.redraw.noding` — re-noding changed areas with their neighbours into an exact
  coverage, re-allocating households and population;
* :mod:`~gridmap.redraw.editor` — the :class:`Editor` that operations use to write a draft, code
  allocation, opening or extending a draft;
* :mod:`~gridmap.redraw.operations` — split, merge, move edge, reshape, create/retire cell,
  transfer, create/retire community, replace cells from a file;
* :mod:`~gridmap.redraw.checks` — the guarantees checked on a draft's state;
* :mod:`~gridmap.redraw.impact` — the impact preview (households moved, workers, re-routed cases);
* :mod:`~gridmap.redraw.workflow` — loading, listing, scope, submit and reject;
* :mod:`~gridmap.redraw.publish` — publishing in one transaction with re-routing of open cases;
* :mod:`~gridmap.redraw.diff` — the differences between two moments;
* :mod:`~gridmap.redraw.balance` — the household balance advisor and its proposals;
* :mod:`~gridmap.redraw.cli` — the commands added to ``gridmap boundaries``.

The geometry helpers that drafts, operations and the import checks share (snapping, metric CRS
choice, sliver tests) live in :mod:`gridmap.geo.shapes`. This module re-exports the public
functions so callers can write ``from gridmap import redraw; redraw.split_cell(...)``.
"""
from gridmap.redraw.checks import check_state
from gridmap.redraw.diff import diff
from gridmap.redraw.drawing import parse_geometry
from gridmap.redraw.editor import new_draft
from gridmap.redraw.impact import draft_impact
from gridmap.redraw.models import BoundaryDraft, BoundaryDraftArea
from gridmap.redraw.operations import (create_cell, create_community, merge_cells, move_edge, replace_cells,
                                       reshape_cell, retire_cell, retire_community, split_cell, transfer_area)
from gridmap.redraw.problems import (ConflictError, DraftError, DraftNotFound, DraftPermissionError, DraftProblem,
                                     DraftProblemsError, RedrawError, problems_geojson)
from gridmap.redraw.publish import PublishReport, publish_draft
from gridmap.redraw.state import AreaRec, DraftState
from gridmap.redraw.workflow import (draft_areas, draft_problems, draft_summary, list_drafts, load_draft,
                                     reject_draft, submit_draft, visible_draft)

__all__ = [
    "AreaRec", "BoundaryDraft", "BoundaryDraftArea", "ConflictError", "DraftError", "DraftNotFound",
    "DraftPermissionError", "DraftProblem", "DraftProblemsError", "DraftState", "PublishReport", "RedrawError",
    "check_state", "create_cell", "create_community", "diff", "draft_areas", "draft_impact", "draft_problems",
    "draft_summary", "list_drafts", "load_draft", "merge_cells", "move_edge", "new_draft", "parse_geometry",
    "problems_geojson", "publish_draft", "reject_draft", "replace_cells", "reshape_cell", "retire_cell",
    "retire_community", "split_cell", "submit_draft", "transfer_area", "visible_draft",
]
