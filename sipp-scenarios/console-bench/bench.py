#!/usr/bin/env python3
"""The console's lists at 100,000 rows (issue 16): server time of the first page of each list
the console shows, with and without its filters.

Seeds `hark.db` (SQLite, written with Python's sqlite3 after hark created and migrated it)
with N calls, N completed recordings (one per call) and N callback deliveries, one per second
going back from now; 1 % of the calls are `busy`, 2 % of the deliveries `failed`, the calls
come from 1,000 numbers. Then starts a release `hark serve`, signs in to the console
(`POST /console/api/session`, the session cookie from then on, as the page does) and measures
over keep-alive HTTP/1.1 each list's first page, PageSize=25 as the console asks:

* Calls.json: no filter, Status=completed, Status=busy, From=…, StartTime>=… (a day), a
  From=… with StartTime bounds;
* Recordings.json: no filter, Status=completed, From=… (the recorded call's number),
  DateCreated>=…;
* /console/api/webhooks: no filter, State=failed;
* /console/api/live.json and the page itself (/console/ and app.js).

Latencies are client-side (request sent → body read), ~50 µs over the server's time.

  CARGO_TARGET_DIR=/work/target-load cargo build --release -p hark
  python3 sipp-scenarios/console-bench/bench.py --rows 100000 [--json out.json]
"""

import argparse
import http.client
import json
import os
import random
import shutil
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api-bench"))
from bench import (  # noqa: E402
    ACCOUNT, COLUMNS as REC_COLUMNS, TOKEN, Client, Hark, free_ports, recording_rows, sid, summary,
    write_config,
)

# crates/store/src/schema.rs (V1, V5, V6 for calls; V1, V6, V7 for the outbox).
CALL_COLUMNS = [
    "sid", "account_sid", "from_addr", "to_addr", "direction", "status", "date_created",
    "date_updated", "start_time", "end_time", "duration", "request_id", "parent_call_sid",
    "node_id",
]
OUTBOX_COLUMNS = [
    "id", "idempotency_key", "group_key", "url", "method", "params", "attempts",
    "next_attempt_ms", "state", "lease_owner", "lease_until", "created_ms", "last_attempt_ms",
    "last_status", "last_error", "last_duration_ms",
]


def number(i):
    return f"+1555{i % 1000:07d}"


def check_columns(con, table, want):
    cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
    if cols != want:
        sys.exit(f"schema changed: {table} columns are {cols}; update bench.py")


def seed(db, rows, now_ms):
    con = sqlite3.connect(db)
    for table, cols in (("calls", CALL_COLUMNS), ("recordings", REC_COLUMNS), ("outbox", OUTBOX_COLUMNS)):
        check_columns(con, table, cols)
    (version,) = con.execute("PRAGMA user_version").fetchone()
    t0 = time.monotonic()

    def calls():
        for i in range(rows):
            created = now_ms - (rows - i) * 1000
            status = "busy" if i % 100 == 7 else "completed"
            yield (sid("CA", i), ACCOUNT, number(i), "+15559990000", "inbound", status, created,
                   created + 61000, created, created + 60000, 60, None, None, None)

    def outbox():
        for i in range(rows):
            created = now_ms - (rows - i) * 1000
            failed = i % 50 == 3
            params = json.dumps([["RecordingSid", sid("RE", i)], ["RecordingStatus", "completed"]])
            yield (i + 1, f"key-{i}", sid("RE", i), "https://app.example.com/status", "POST", params,
                   6 if failed else 1, created, "failed" if failed else "delivered", None, 0, created,
                   created + 5, 503 if failed else 200, "status 503" if failed else None, 12)

    with con:
        for table, cols, gen in (("calls", CALL_COLUMNS, calls),
                                 ("recordings", REC_COLUMNS, lambda: recording_rows(rows, now_ms)),
                                 ("outbox", OUTBOX_COLUMNS, outbox)):
            con.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", gen())
    con.execute("ANALYZE")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return version, time.monotonic() - t0


def signed_in(port):
    """api-bench's timed client, authenticated as the page is: the console's session cookie."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"username": ACCOUNT, "password": TOKEN})
    c.request("POST", "/console/api/session", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"sign-in: {r.status}")
    return Client(port, auth={"Cookie": r.getheader("Set-Cookie").split(";")[0]})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hark", default="/work/target-load/release/hark")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dir", default="/tmp/hark-console-bench")
    ap.add_argument("--n", type=int, default=300, help="requests per measurement")
    ap.add_argument("--json")
    a = ap.parse_args()
    res = {"rows": a.rows}
    shutil.rmtree(a.dir, ignore_errors=True)
    storage = os.path.join(a.dir, "recordings")
    os.makedirs(storage)
    sip, http_port, rtp = free_ports(3)
    cfg = os.path.join(a.dir, "hark.toml")
    write_config(cfg, storage, sip, http_port, rtp)
    log = os.path.join(a.dir, "hark.log")
    Hark(a.hark, cfg, log, http_port).stop()
    now_ms = int(time.time() * 1000)
    db = os.path.join(storage, "hark.db")
    res["schema_version"], seed_s = seed(db, a.rows, now_ms)
    res["seed_s"] = round(seed_s, 2)
    res["db_bytes"] = os.path.getsize(db)

    h = Hark(a.hark, cfg, log, http_port)
    s = signed_in(http_port)
    base = f"/2010-04-01/Accounts/{ACCOUNT}"
    rnd = random.Random(16)
    day = time.strftime("%Y-%m-%d", time.gmtime((now_ms - a.rows * 500) / 1000))
    next_day = time.strftime("%Y-%m-%d", time.gmtime((now_ms - a.rows * 500) / 1000 + 86400))
    lists = [
        ("Calls.json first page", lambda: f"{base}/Calls.json?PageSize=25", "calls"),
        ("Calls.json Status=completed", lambda: f"{base}/Calls.json?PageSize=25&Status=completed", "calls"),
        ("Calls.json Status=busy (1 %)", lambda: f"{base}/Calls.json?PageSize=25&Status=busy", "calls"),
        ("Calls.json From=… (1 of 1,000 numbers)",
         lambda: f"{base}/Calls.json?PageSize=25&From=%2B1555{rnd.randrange(1000):07d}", "calls"),
        ("Calls.json StartTime>=day", lambda: f"{base}/Calls.json?PageSize=25&StartTime%3E={day}", "calls"),
        ("Calls.json From=… and one day",
         lambda: f"{base}/Calls.json?PageSize=25&From=%2B1555{rnd.randrange(1000):07d}&StartTime%3E={day}&StartTime%3C={next_day}",
         "calls"),
        ("Recordings.json first page", lambda: f"{base}/Recordings.json?PageSize=25", "recordings"),
        ("Recordings.json Status=completed", lambda: f"{base}/Recordings.json?PageSize=25&Status=completed", "recordings"),
        ("Recordings.json From=… (call's number)",
         lambda: f"{base}/Recordings.json?PageSize=25&From=%2B1555{rnd.randrange(1000):07d}", "recordings"),
        ("Recordings.json DateCreated>=day", lambda: f"{base}/Recordings.json?PageSize=25&DateCreated%3E={day}", "recordings"),
        ("console webhooks first page", lambda: "/console/api/webhooks?PageSize=25", "deliveries"),
        ("console webhooks State=failed (2 %)", lambda: "/console/api/webhooks?PageSize=25&State=failed", "deliveries"),
        ("console live.json", lambda: "/console/api/live.json", "calls"),
        ("console page /console/", lambda: "/console/", None),
        ("console app.js", lambda: "/console/assets/app.js", None),
    ]
    for _ in range(20):
        for _, path, _ in lists:
            s.get(path())
    lat = []
    for name, path, key in lists:
        xs = []
        for _ in range(a.n):
            dt, body = s.get(path())
            if key:
                items = json.loads(body)[key]
                if key != "calls" or "live" not in name:
                    assert items or "busy" in name, f"{name}: empty page"
            xs.append(dt)
        lat.append(summary(name, xs))
    res["latency"] = lat
    res["mem_end_kib"] = h.mem()
    h.stop()
    res["loadavg"] = open("/proc/loadavg").read().split()[:3]
    print(json.dumps(res, indent=2))
    print("| list (first page, PageSize=25) | p50 | p99 |\n|---|---|---|", file=sys.stderr)
    for l in lat:
        print(f"| {l['name']} (n={l['n']}) | {l['p50_ms']:.2f} ms | {l['p99_ms']:.2f} ms |", file=sys.stderr)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
