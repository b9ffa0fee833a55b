#!/usr/bin/env python3
"""Fetch the browser libraries folium's maps use and put the needed files under gridmap/static/vendor/.

Why: folium 0.20 loads Leaflet, jQuery, Bootstrap, Font Awesome, Leaflet.awesome-markers and its
plugins' scripts from public CDNs. Offices that run gridmap often have no internet, and a page
must not leak requests to third parties, so the app serves these files itself
(``gridmap.web.maps`` points folium at ``/static/vendor/...``).

How: each package is fetched from the npm registry with ``npm pack NAME@VERSION`` into a
temporary folder and extracted; only the files a page needs are copied (minified js/css, images,
woff2 fonts) plus the package's licence. leaflet.heat comes from the installed folium wheel
(folium/templates/leaflet_heat.min.js, the exact file folium uses). Two small stylesheets folium
takes from elsewhere are derived here: the Glyphicons subset of Bootstrap 3.3.7 (folium.Icon's
default prefix) and the ``fa-rotate-N`` classes folium.Icon(angle=N) uses.

Small, documented edits to the copied files: ``sourceMappingURL`` comments are removed (the maps
are not shipped) and Font Awesome's TrueType fallbacks are dropped (every supported browser reads
woff2). The result is committed; ``VERSIONS.json`` records each tarball's integrity hash.

Usage (re-runnable; replaces gridmap/static/vendor/ as a whole):
    python tools/vendor_assets.py            # fetch and write
    python tools/vendor_assets.py --check    # verify the committed files against VERSIONS.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "gridmap" / "static" / "vendor"

MIT_TEXT = """Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES
OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""

#: (target folder, npm spec, [(file in the tarball's package/, file under the target folder)], licence)
#: licence is a file in the tarball, or ("MIT", copyright line) when the tarball ships none.
PACKAGES = [
    ("leaflet", "leaflet@1.9.3", [
        ("dist/leaflet.js", "leaflet.js"),
        ("dist/leaflet.css", "leaflet.css"),
        *[(f"dist/images/{n}", f"images/{n}") for n in
          ("layers.png", "layers-2x.png", "marker-icon.png", "marker-icon-2x.png", "marker-shadow.png")],
    ], "LICENSE"),
    ("jquery", "jquery@3.7.1", [("dist/jquery.min.js", "jquery.min.js")], "LICENSE.txt"),
    ("bootstrap", "bootstrap@5.2.2", [
        ("dist/css/bootstrap.min.css", "bootstrap.min.css"),
        ("dist/js/bootstrap.bundle.min.js", "bootstrap.bundle.min.js"),
    ], "LICENSE"),
    ("fontawesome", "@fortawesome/fontawesome-free@6.2.0", [
        ("css/all.min.css", "css/all.min.css"),
        *[(f"webfonts/{n}.woff2", f"webfonts/{n}.woff2") for n in
          ("fa-brands-400", "fa-regular-400", "fa-solid-900", "fa-v4compatibility")],
    ], "LICENSE.txt"),
    ("awesome-markers", "drmonty-leaflet-awesome-markers@2.0.2", [
        ("js/leaflet.awesome-markers.min.js", "leaflet.awesome-markers.min.js"),
        ("css/leaflet.awesome-markers.css", "leaflet.awesome-markers.css"),
        *[(f"css/images/{n}", f"images/{n}") for n in
          ("markers-soft.png", "markers-soft@2x.png", "markers-shadow.png", "markers-shadow@2x.png")],
    ], ("MIT", "Copyright (c) 2012-2013 Lennard Voogdt (Leaflet.awesome-markers)")),
    ("markercluster", "leaflet.markercluster@1.1.0", [
        ("dist/leaflet.markercluster.js", "leaflet.markercluster.js"),
        ("dist/MarkerCluster.css", "MarkerCluster.css"),
        ("dist/MarkerCluster.Default.css", "MarkerCluster.Default.css"),
    ], "MIT-LICENCE.txt"),
    ("leaflet-draw", "leaflet-draw@1.0.2", [
        ("dist/leaflet.draw.js", "leaflet.draw.js"),
        ("dist/leaflet.draw.css", "leaflet.draw.css"),
        *[(f"dist/images/{n}", f"images/{n}") for n in
          ("spritesheet.png", "spritesheet-2x.png", "spritesheet.svg", "layers.png", "layers-2x.png",
           "marker-icon.png", "marker-icon-2x.png", "marker-shadow.png")],
    ], ("MIT", "Copyright (c) 2012-2017 Jacob Toye, Jon West, Smartrak, Leaflet (Leaflet.draw)")),
    # only for its licence file: the script itself is the one inside the folium wheel
    ("leaflet-heat", "leaflet.heat@0.2.0", [], "LICENSE"),
    # only for the Glyphicons font and rules (derived below)
    ("glyphicons", "bootstrap@3.3.7", [
        ("dist/fonts/glyphicons-halflings-regular.woff2", "fonts/glyphicons-halflings-regular.woff2"),
    ], "LICENSE"),
]


def npm_pack(spec: str, dest: Path) -> tuple[Path, dict]:
    out = subprocess.run(["npm", "pack", "--json", "--pack-destination", str(dest), spec],
                         check=True, capture_output=True, text=True, cwd=dest)
    info = json.loads(out.stdout)[0]
    return dest / info["filename"], {"integrity": info.get("integrity"), "shasum": info.get("shasum")}


def _strip_sourcemaps(text: str) -> str:
    text = re.sub(r"\n?//# sourceMappingURL=\S+\s*$", "\n", text)
    return re.sub(r"/\*# sourceMappingURL=\S+ \*/\s*$", "\n", text)


def _clean(path: Path) -> None:
    if path.suffix in (".js", ".css"):
        text = path.read_text(encoding="utf-8")
        new = _strip_sourcemaps(text)
        if path.name == "all.min.css":  # drop the TrueType fallbacks we do not ship
            new = re.sub(r',url\(\.\./webfonts/[\w-]+\.ttf\) format\("truetype"\)', "", new)
        if new != text:
            path.write_text(new, encoding="utf-8")


def _glyphicons_css(bootstrap3_css: str) -> str:
    """The @font-face and .glyphicon rules of Bootstrap 3's stylesheet (woff2 only)."""
    rules = re.findall(r"(?ms)^(?:@font-face \{[^}]*Glyphicons[^}]*\}|\.glyphicon[^{]*\{[^}]*\})", bootstrap3_css)
    face = ("@font-face{font-family:'Glyphicons Halflings';"
            "src:url(fonts/glyphicons-halflings-regular.woff2) format('woff2')}")
    body = "\n".join(r for r in rules if not r.startswith("@font-face"))
    return ("/* Glyphicons rules extracted from Bootstrap 3.3.7 (MIT) by tools/vendor_assets.py */\n"
            + face + "\n" + body + "\n")


def _rotate_css() -> str:
    """fa-rotate-N for N in 0..359: folium.Icon(angle=N) adds that class to the marker's icon."""
    rules = [f".awesome-marker i.fa-rotate-{a}{{transform:rotate({a}deg)}}" for a in range(360)]
    return ("/* generated by tools/vendor_assets.py: the classes folium.Icon(angle=N) uses */\n"
            + "\n".join(rules) + "\n")


def build(dest: Path = VENDOR) -> dict:
    import folium

    manifest: dict = {"generated_by": "tools/vendor_assets.py", "packages": {}}
    with tempfile.TemporaryDirectory(prefix="gm-vendor-") as tmp:
        tmp = Path(tmp)
        staging = tmp / "vendor"
        for folder, spec, files, licence in PACKAGES:
            tgz, info = npm_pack(spec, tmp)
            x = tmp / ("x-" + folder)
            with tarfile.open(tgz) as tf:
                tf.extractall(x, filter="data")
            pkg = x / "package"
            out = staging / folder
            out.mkdir(parents=True, exist_ok=True)
            for src, dst in files:
                (out / dst).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(pkg / src, out / dst)
                _clean(out / dst)
            if isinstance(licence, tuple):
                kind, holder = licence
                (out / "LICENSE").write_text(
                    f"{kind} License\n\n{holder}\n\n{MIT_TEXT}\n(The npm package {spec} ships no licence file; "
                    f"its package.json declares {kind}. Text added by tools/vendor_assets.py.)\n",
                    encoding="utf-8")
            else:
                shutil.copyfile(pkg / licence, out / Path(licence).name)
            if folder == "glyphicons":
                css = (pkg / "dist/css/bootstrap.css").read_text(encoding="utf-8")
                (out / "glyphicons.css").write_text(_glyphicons_css(css), encoding="utf-8")
            manifest["packages"][folder] = {"npm": spec, **info}
        heat = Path(folium.__file__).parent / "templates" / "leaflet_heat.min.js"
        shutil.copyfile(heat, staging / "leaflet-heat" / "leaflet_heat.min.js")
        manifest["packages"]["leaflet-heat"]["script_from"] = f"folium {folium.__version__} wheel"
        (staging / "awesome-markers" / "leaflet.awesome.rotate.css").write_text(_rotate_css(), encoding="utf-8")
        manifest["files"] = {str(p.relative_to(staging)): hashlib.sha256(p.read_bytes()).hexdigest()
                             for p in sorted(staging.rglob("*")) if p.is_file()}
        (staging / "VERSIONS.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(staging, dest)
    return manifest


def check(dest: Path = VENDOR) -> list[str]:
    manifest = json.loads((dest / "VERSIONS.json").read_text())
    problems = []
    for rel, digest in manifest["files"].items():
        p = dest / rel
        if not p.is_file():
            problems.append(f"missing {rel}")
        elif hashlib.sha256(p.read_bytes()).hexdigest() != digest:
            problems.append(f"changed {rel}")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="verify committed files against VERSIONS.json")
    ap.add_argument("--dest", type=Path, default=VENDOR)
    args = ap.parse_args(argv)
    if args.check:
        problems = check(args.dest)
        for p in problems:
            print(p, file=sys.stderr)
        print("vendor assets OK" if not problems else f"{len(problems)} problems")
        return 1 if problems else 0
    m = build(args.dest)
    total = sum((args.dest / f).stat().st_size for f in m["files"])
    print(f"wrote {len(m['files'])} files, {total / 1024:.0f} KiB, to {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
