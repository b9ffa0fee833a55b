"""The house's rooms, checked from the code's own imports (no database): boundaries at the bottom,
redrawing in a package of its own, modules of a readable size, the CLI assembled in one place."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "gridmap"
#: infrastructure every domain may use: geometry, the database, settings, the shared command helpers
INFRASTRUCTURE = {"geo", "db", "config", "migrate", "textio", "cliutil"}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, gridmap module) for every import in the file, at any depth (inside functions too)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "gridmap":
                out += [(node.lineno, f"gridmap.{a.name}") for a in node.names]
            elif node.module.startswith("gridmap."):
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("gridmap.")]
    return out


def _room(module: str) -> str:
    return module.split(".")[1]


def test_the_scan_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from gridmap.incidents.models import Case\n    import gridmap.assign.router\n")
    assert [m for _, m in _imports(f)] == ["gridmap.incidents.models", "gridmap.assign.router"]


def test_boundaries_import_no_other_domain():
    bad = [f"{p.relative_to(PKG.parent)}:{line} imports {mod}"
           for p in sorted((PKG / "boundaries").rglob("*.py")) for line, mod in _imports(p)
           if _room(mod) not in INFRASTRUCTURE | {"boundaries"}]
    assert bad == []


def test_geometry_helpers_import_nothing_but_geometry():
    bad = [f"{p.name}:{line} imports {mod}" for p in sorted((PKG / "geo").glob("*.py"))
           for line, mod in _imports(p) if _room(mod) != "geo"]
    assert bad == []


def test_nothing_below_redrawing_imports_it():
    above = {"redraw", "web", "cli", "models", "demo"}
    bad = [f"{p.relative_to(PKG.parent)}:{line}" for p in sorted(PKG.rglob("*.py"))
           if p.relative_to(PKG).parts[0].removesuffix(".py") not in above
           for line, mod in _imports(p) if _room(mod) == "redraw"]
    assert bad == []


@pytest.mark.parametrize("package", ["redraw", "boundaries"])
def test_no_module_of_the_package_over_900_lines(package):
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in (PKG / package).glob("*.py")}
    assert sizes, package
    assert {k: v for k, v in sizes.items() if v > 900} == {}


def test_command_modules_never_import_the_assembler():
    """Each domain exposes its own click group; only gridmap/cli.py assembles them (no circle).
    The app factory (gridmap/__init__.py) is the one caller of the assembler."""
    bad = [f"{p.relative_to(PKG.parent)}:{line}" for p in sorted(PKG.rglob("*.py"))
           if p not in (PKG / "cli.py", PKG / "__init__.py")
           for line, mod in _imports(p) if mod == "gridmap.cli"]
    assert bad == []


def test_every_domain_group_is_registered(app):
    names = set(app.cli.list_commands(None))
    assert {"db", "boundaries", "locate", "geocode", "demo", "users", "tokens", "workers", "calendar",
            "categories", "cases", "hazards", "analysis", "ledger"} <= names
    boundaries = app.cli.get_command(None, "boundaries")
    assert {"import", "check", "export", "split", "merge", "publish", "diff", "balance", "draft"} <= set(
        boundaries.list_commands(None))
