#!/usr/bin/env python
"""Benchmark: single-case intake through the HTTP API (POST /api/v1/cases) under concurrent load.

Loads the demo city into a fresh PostGIS database, creates a city-level user with an API token,
serves the app with gunicorn in a subprocess (``-w 2 --threads 4`` by default, 127.0.0.1 only) and
drives it with ``wrk`` on loopback: a Lua script POSTs JSON with a random point inside a random
demo cell (precomputed, inside the cell polygon), a random leaf category of data/categories.json
and a unique external_id per request, with ``Authorization: Bearer``. For each concurrency
(default 8 and 32, ~20 s each) it prints requests/s, p50/p99 latency and the non-2xx count, and
the baseline GET /healthz on the same server (the framework's ceiling: DB round trip, no work)
with the ratio. Afterwards it counts the cases in the database: every 201 must have created exactly
one case (wrk stops mid-flight, so up to <connections> requests answered after wrk stopped
listening can add cases that wrk did not count; the script says how many).

Usage:
  GRIDMAP_BENCH_DATABASE_URL=postgresql+psycopg://… python bench/intake_http.py [--duration 20]
      [--concurrency 8 --concurrency 32] [--workers 2 --threads 4]
Needs wrk (apt-get install -y wrk) and gunicorn in the venv (pip install gunicorn, or .[bench]).
The database is dropped afterwards (``--keep-db`` keeps it).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from democity import ROOT, fresh_demo_db, leaf_category_codes, loadavg  # noqa: E402

LUA_COMMON = r"""
local threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end
function init(args)
  n = 0; c2xx = 0; c4xx = 0; c5xx = 0; cother = 0; firsterr = ""
  tag = args[1] or "x"
end
function response(status, headers, body)
  if status >= 200 and status < 300 then c2xx = c2xx + 1
  elseif status >= 400 and status < 500 then c4xx = c4xx + 1
  elseif status >= 500 then c5xx = c5xx + 1
  else cother = cother + 1 end
  if (status < 200 or status >= 300) and firsterr == "" then firsterr = status .. " " .. string.sub(body, 1, 200) end
end
function done(summary, latency, requests)
  local a, b, c, d = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("c2xx"); b = b + t:get("c4xx"); c = c + t:get("c5xx"); d = d + t:get("cother")
    local e = t:get("firsterr")
    if e and e ~= "" then io.write("FIRSTERR " .. e .. "\n") end
  end
  io.write(string.format("RESULT 2xx=%d 4xx=%d 5xx=%d other=%d requests=%d duration_us=%d "
    .. "sock_connect=%d sock_read=%d sock_write=%d sock_timeout=%d p50_us=%d p99_us=%d\n",
    a, b, c, d, summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""

LUA_POST = r"""
local points = {%(points)s}
local cats = {%(cats)s}
local texts = {"路面破损，行人易绊倒", "楼道堆放杂物，存在消防隐患", "邻里因噪音发生纠纷", "垃圾未及时清运"}
local run = "%(run)s"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
request = function()
  n = n + 1
  local p = points[math.random(#points)]
  local body = string.format('{"category":"%%s","description":"%%s","location":{"lon":%%.6f,"lat":%%.6f},'
    .. '"external_id":"%%s-%%s-%%d-%%d"}', cats[math.random(#cats)], texts[math.random(#texts)], p[1], p[2],
    run, tag, tid, n)
  return wrk.format("POST", "/api/v1/cases", nil, body)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.3)
    raise SystemExit(f"the server did not answer {url} within {timeout:.0f} s")


_TAGS = iter(range(1, 10**6))


def run_wrk(base: str, script: Path, path: str, conns: int, duration: int, threads: int) -> dict:
    cmd = ["wrk", f"-t{min(threads, conns)}", f"-c{conns}", f"-d{duration}s", "--timeout", "30s",
           "-s", str(script), base + path, "--", f"r{next(_TAGS)}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    m = re.search(r"RESULT (.*)", out.stdout)
    if not m:
        raise SystemExit(f"wrk failed: {out.stdout}\n{out.stderr}")
    r = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["load"] = loadavg()
    r["firsterr"] = re.findall(r"FIRSTERR (.*)", out.stdout)[:2]
    return r


def count_cases(engine, run: str) -> tuple[int, int]:
    from sqlalchemy import text

    with engine.connect() as c:
        n = c.execute(text("SELECT count(*) FROM cases WHERE external_id LIKE :p"), {"p": f"{run}-%"}).scalar()
        d = c.execute(text("SELECT count(*) FROM (SELECT source, external_id FROM cases WHERE external_id LIKE :p "
                           "GROUP BY 1, 2 HAVING count(*) > 1) x"), {"p": f"{run}-%"}).scalar()
    return n, d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--concurrency", type=int, action="append")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--points", type=int, default=2000, help="distinct random points in the Lua script")
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args(argv)
    concs = args.concurrency or [8, 32]
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install -y wrk")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        raise SystemExit(f"no {gunicorn}: pip install gunicorn")

    print(f"HTTP intake benchmark: gunicorn -w {args.workers} --threads {args.threads}, wrk -t{args.wrk_threads} "
          f"{args.duration} s per run, concurrency {concs} ({loadavg()})", flush=True)
    url, engine, sm, drop = fresh_demo_db()
    tmp = Path(tempfile.mkdtemp(prefix="gm-intake-http-"))
    proc = None
    try:
        import numpy as np
        from pageweight import random_points_in

        from gridmap.accounts.service import create_token, create_user
        from gridmap.boundaries.lookup import get_index
        from gridmap.db import transaction

        with transaction(sm) as s:
            create_user(s, "bench_city", "city")
            token = create_token(s, "bench_city", name="intake_http")
        with sm() as s:
            geoms = get_index(s).geoms
        rng = np.random.default_rng(7)
        lon, lat = random_points_in(geoms[rng.integers(0, len(geoms), args.points)], rng)
        run = f"wrk{os.getpid()}"
        post_lua = tmp / "post.lua"
        post_lua.write_text(LUA_COMMON + LUA_POST % {
            "points": ",".join(f"{{{x!r},{y!r}}}" for x, y in zip(lon.tolist(), lat.tolist())),
            "cats": ",".join(json.dumps(c) for c in leaf_category_codes()), "run": run, "token": token},
            encoding="utf-8")
        get_lua = tmp / "get.lua"
        get_lua.write_text(LUA_COMMON, encoding="utf-8")

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = dict(os.environ, GRIDMAP_DATABASE_URL=url, GRIDMAP_SECRET_KEY="bench",
                   GRIDMAP_INSTANCE_PATH=str(tmp / "instance"))
        log = open(tmp / "gunicorn.log", "w")
        proc = subprocess.Popen([str(gunicorn), "-w", str(args.workers), "--threads", str(args.threads),
                                 "-b", f"127.0.0.1:{port}", "--timeout", "60", "gridmap:create_app()"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_http(base + "/healthz")

        # one request by hand: the body is right and the answer is 201
        body = json.dumps({"category": leaf_category_codes()[0], "description": "bench probe",
                           "location": {"lon": float(lon[0]), "lat": float(lat[0])},
                           "external_id": f"{run}-probe"}).encode()
        req = urllib.request.Request(base + "/api/v1/cases", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                probe = json.loads(r.read())
                print(f"probe: {r.status}, case {probe.get('number')}, status {probe.get('status')}, "
                      f"routed to {probe.get('assignee') or probe.get('routing')}", flush=True)
        except urllib.error.HTTPError as e:
            raise SystemExit(f"probe POST failed: {e.code} {e.read()[:500]!r}")

        # warm-up: every worker process builds its cell index and opens its pool
        run_wrk(base, post_lua, "/api/v1/cases", 4, 3, 2)
        run_wrk(base, get_lua, "/healthz", 4, 2, 2)
        before, _ = count_cases(engine, run)

        total_2xx = 0
        results = []
        for c in concs:
            h = run_wrk(base, get_lua, "/healthz", c, args.duration, args.wrk_threads)
            p = run_wrk(base, post_lua, "/api/v1/cases", c, args.duration, args.wrk_threads)
            total_2xx += p["2xx"]
            results.append((c, h, p))
            for name, r in (("GET /healthz", h), ("POST /api/v1/cases", p)):
                print(f"c={c:3d} {name:19s} {r['rps']:8.1f} req/s  p50 {r['p50_us'] / 1000:7.1f} ms  "
                      f"p99 {r['p99_us'] / 1000:7.1f} ms  non-2xx {r['4xx'] + r['5xx'] + r['other']:4d} "
                      f"(4xx {r['4xx']}, 5xx {r['5xx']})  socket errors "
                      f"{r['sock_connect'] + r['sock_read'] + r['sock_write'] + r['sock_timeout']}  "
                      f"[{r['requests']} requests; {r['load']}]", flush=True)
            for name, r in (("healthz", h), ("intake", p)):
                if r["firsterr"]:
                    print(f"      first non-2xx ({name}): {r['firsterr']}")
            print(f"      intake / healthz = {p['rps'] / h['rps']:.3f} (throughput), "
                  f"p50 {p['p50_us'] / max(h['p50_us'], 1):.1f}× healthz's", flush=True)

        time.sleep(2)  # requests wrk abandoned at its deadline finish
        after, dups = count_cases(engine, run)
        created = after - before
        in_flight = sum(c for c in concs)
        verdict = "OK" if total_2xx <= created <= total_2xx + in_flight and dups == 0 else "MISMATCH"
        print(f"\nverification: {total_2xx} responses 2xx (all 201) in the measured runs; {created} cases created "
              f"in the database with the runs' external ids; duplicates {dups}; extra cases "
              f"{created - total_2xx} (≤ {in_flight} possible: answered after wrk stopped listening) → {verdict}")
        errs = [ln for ln in (tmp / "gunicorn.log").read_text(errors="replace").splitlines()
                if "Traceback" in ln or "ERROR" in ln]
        if errs:
            print(f"gunicorn log: {len(errs)} error lines, first: {errs[:3]}")
        return 0 if verdict == "OK" else 1
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
        if args.keep_db:
            print(f"database kept: {url}")
        else:
            drop()


if __name__ == "__main__":
    sys.exit(main())
