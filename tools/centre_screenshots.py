"""Screenshots of the centre page (/centre) on the demo city, for docs/screenshots/.

    PYTHONPATH=. python tools/centre_screenshots.py [--out docs/screenshots] [--width 1440]

Builds a throw-away SpatiaLite database, loads the demo (``gridmap demo``: Zhoushan, 300 synthetic
cases of the last 20 days), adds a screenshot user of role city, and — so that the 督办 column and
the ringed case points have something to show — supervises the twelve demo cases with the oldest
deadlines as that user (a real ``supervise`` action each). Then it serves the app on 127.0.0.1 and
drives Debian's Chromium (Playwright, never a downloaded browser): the page as it opens, the tree
with a district and a street opened, and the hot-spot layer on cells.
"""
from __future__ import annotations

import argparse
import tempfile
import threading
from pathlib import Path

PASSWORD = "screenshot-pass-2026"


def build(tmp: Path):
    from sqlalchemy import select

    from gridmap import create_app
    from gridmap.accounts.service import actor_for, create_user
    from gridmap.db import transaction
    from gridmap.incidents.lifecycle import apply_action
    from gridmap.incidents.models import Case

    app = create_app({"GRIDMAP_DATABASE_URL": f"sqlite:///{tmp / 'demo.sqlite'}", "INSTANCE_PATH": str(tmp / "inst"),
                      "SECRET_KEY": "screenshots", "WTF_CSRF_ENABLED": True})
    res = app.test_cli_runner().invoke(args=["demo"])
    if res.exit_code != 0:
        raise SystemExit(f"demo failed: {res.output}\n{res.exception}")
    print(res.output.strip().splitlines()[-2:])
    sm = app.extensions["gridmap.sessionmaker"]
    with transaction(sm) as s:
        user = create_user(s, "shot", "city", password=PASSWORD, display_name="舟山市社会治理中心")
        act = actor_for(user)
        ids = list(s.scalars(select(Case.id).where(Case.status.in_(("dispatched", "in_progress")),
                                                   Case.deadline_at.isnot(None))
                             .order_by(Case.deadline_at).limit(12)))
    for cid in ids:
        with transaction(sm) as s:
            apply_action(s, cid, "supervise", act, comment="超期未办结，请加快处置")
    return app


def shoot(app, out: Path, width: int) -> list[Path]:
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    srv = make_server("127.0.0.1", 0, app, threaded=True)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    base = f"http://127.0.0.1:{srv.server_port}"
    files = []
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                   args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                                         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])
            page = b.new_context(viewport={"width": width, "height": 1000}, locale="zh-CN").new_page()
            page.goto(base + "/login")
            page.fill("#username", "shot")
            page.fill("#password", PASSWORD)
            with page.expect_navigation():
                page.click("form button[type=submit]")

            def settle():
                page.wait_for_selector("[data-gm-areas]", timeout=60000)
                page.wait_for_selector("#centre-map[data-hotspots]", timeout=120000)
                page.wait_for_timeout(1500)

            page.goto(base + "/centre")
            settle()
            files.append(out / "centre-desktop.png")
            page.screenshot(path=str(files[-1]), full_page=True)
            # open the first district and its first street: the tree with subtotals
            page.click("#indicators tr.depth-0 .tree-toggle")
            page.wait_for_selector("#indicators tr.depth-1")
            page.click("#indicators tr.depth-1 .tree-toggle")
            page.wait_for_selector("#indicators tr.depth-2")
            files.append(out / "centre-tree.png")
            page.locator("#indicator-section").screenshot(path=str(files[-1]))
            page.goto(base + "/centre?hot=cell&period=last30")
            settle()
            files.append(out / "centre-hotspots-cells.png")
            page.locator(".split-centre").screenshot(path=str(files[-1]))
            b.close()
    finally:
        srv.shutdown()
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/screenshots")
    ap.add_argument("--width", type=int, default=1440)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gm-shots-") as tmp:
        app = build(Path(tmp))
        for f in shoot(app, out, args.width):
            print("wrote", f)
        app.extensions["gridmap.engine"].dispose()


if __name__ == "__main__":
    main()
