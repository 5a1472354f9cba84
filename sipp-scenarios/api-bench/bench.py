#!/usr/bin/env python3
"""REST API figures with a large store (issue 4): seeds N recordings into hark.db (columns as
crates/store/src/schema.rs), starts a release `hark serve` on that storage dir and measures

  * list latency (Recordings.json?PageSize=50): page 0, a PageToken walk through every page
    (next_page_uri), deep pages by number (Page=N, offset paging), a CallSid-filtered list;
  * fetch latency (Recordings/{Sid}.json);
  * media download throughput: 8 concurrent clients fetching a 60 s WAV over and over;
  * MP3 encode time per minute of audio: first .mp3 request of a 60 s recording vs cached,
    and 4 concurrent first requests sharing one encode;
  * the daemon's RSS (VmRSS, VmHWM) at start and after the run, and the database size.

With --postgres (issue 15) the same store is a PostgreSQL database instead: a private server
(Debian's initdb/postgres, as the `postgres` user when run as root) that hark reaches through
storage.database_url, seeded with psql (INSERT … SELECT FROM generate_series) after hark created
its tables.

Stdlib only (sqlite3, http.client, threads) plus `curl` for the throughput clients (and `psql`
with --postgres).
Usage: bench.py [--hark PATH] [--rows 100000] [--dir /tmp/hark-api-bench] [--json out.json]
                [--postgres]
"""

import argparse
import base64
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import wave

ACCOUNT = "AC0123456789abcdef0123456789abcdef"
TOKEN = "bench-auth-token"
AUTH = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SPEECH = os.path.join(REPO, "crates/hark/tests/data/speech_8k_ulaw.wav")

# crates/store/src/schema.rs, table `recordings` (migrations V1, V4, V6).
COLUMNS = [
    "sid", "account_sid", "call_sid", "status", "source", "channels", "date_created",
    "date_updated", "start_time", "duration", "error_code", "media_file", "transcribe",
    "transcribe_callback", "sc_url", "sc_method", "sc_in_progress", "sc_completed", "sc_absent",
    "deleted_at", "sample_rate", "node_id",
]


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def write_config(path, storage, sip, http_port, rtp, database_url=""):
    path_toml = f"""[sip]
listen = "127.0.0.1:{sip}"

[rtp]
port_min = {rtp}
port_max = {rtp + 19}

[http]
listen = "127.0.0.1:{http_port}"
public_url = "http://127.0.0.1:{http_port}"

[account]
sid = "{ACCOUNT}"
auth_token = "{TOKEN}"

[storage]
dir = "{storage}"
database_url = "{database_url}"

[log]
level = "warn"

[app]
twiml = "<Response><Hangup/></Response>"
voice_url = ""
"""
    with open(path, "w") as f:
        f.write(path_toml)


class Hark:
    def __init__(self, binary, config, log, http_port):
        env = {k: v for k, v in os.environ.items() if not k.startswith("HARK_")}
        self.log = open(log, "a")
        self.proc = subprocess.Popen([binary, "serve", "--config", config], env=env,
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        self.port = http_port
        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"hark exited with {self.proc.returncode}; see {log}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() - t0 > 60:
                sys.exit("hark did not become healthy in 60 s")
            time.sleep(0.05)
        self.ready_s = time.monotonic() - t0

    def mem(self):
        out = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":")
                    out[k] = int(v.split()[0])  # KiB
        return out

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def sid(prefix, i):
    return prefix + f"{i:032x}"


def recording_rows(rows, now_ms):
    """`rows` completed 60 s recordings in COLUMNS order, one per second going back from now
    (newest first in the API = highest i), recording i of call i."""
    for i in range(rows):
        created = now_ms - (rows - i) * 1000
        s = sid("RE", i)
        yield (s, ACCOUNT, sid("CA", i), "completed", "RecordVerb", 1, created, created + 61000,
               created - 60000, 60, None, f"{s}.wav", 0, None, None, None, None, None, None, None,
               8000, None)


def seed(db, rows, now_ms):
    con = sqlite3.connect(db)
    cols = [r[1] for r in con.execute("PRAGMA table_info(recordings)")]
    if cols != COLUMNS:
        sys.exit(f"schema changed: recordings columns are {cols}; update COLUMNS in bench.py")
    (version,) = con.execute("PRAGMA user_version").fetchone()
    t0 = time.monotonic()
    with con:
        con.executemany(f"INSERT INTO recordings ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                        recording_rows(rows, now_ms))
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return version, time.monotonic() - t0


class Postgres:
    """A private PostgreSQL server on 127.0.0.1 (trust auth, superuser `hark`)."""

    def __init__(self, root):
        bins = sorted(d for d in os.listdir("/usr/lib/postgresql") if d.isdigit())
        if not bins:
            sys.exit("PostgreSQL is not installed; run scripts/setup.sh")
        self.bin = f"/usr/lib/postgresql/{bins[-1]}/bin"
        self.root = root
        self.as_pg = (["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
                      if os.geteuid() == 0 else [])
        os.makedirs(root)
        if self.as_pg:
            shutil.chown(root, "postgres", "postgres")
        data = os.path.join(root, "data")
        subprocess.run(self.as_pg + [f"{self.bin}/initdb", "-U", "hark", "--auth=trust",
                                     "-E", "UTF8", "--no-sync", "-D", data],
                       check=True, stdout=subprocess.DEVNULL)
        (self.port,) = free_ports(1)
        self.log = open(os.path.join(os.path.dirname(root), "postgres.log"), "a")
        self.proc = subprocess.Popen(
            self.as_pg + [f"{self.bin}/postgres", "-D", data, "-h", "127.0.0.1",
                          "-p", str(self.port), "-k", root, "-c", "fsync=off"],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        t0 = time.monotonic()
        while self.psql("SELECT 1", check=False).returncode != 0:
            if time.monotonic() - t0 > 30 or self.proc.poll() is not None:
                sys.exit("PostgreSQL did not start")
            time.sleep(0.1)
        self.url = f"postgres://hark@127.0.0.1:{self.port}/postgres"

    def psql(self, sql, check=True):
        return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "hark",
                               "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
                              capture_output=True, text=True, check=check)

    def seed(self, rows, now_ms):
        cols = self.psql("SELECT string_agg(column_name, ',' ORDER BY ordinal_position) "
                         "FROM information_schema.columns WHERE table_name = 'recordings'").stdout.strip()
        if cols.split(",") != COLUMNS:
            sys.exit(f"schema changed: recordings columns are {cols}; update COLUMNS in bench.py")
        version = int(self.psql("SELECT version FROM hark_schema").stdout.strip())
        t0 = time.monotonic()
        sid_of = lambda p: f"'{p}' || lpad(to_hex(i), 32, '0')"
        created = f"({now_ms} - ({rows} - i) * 1000::bigint)"
        self.psql(
            f"INSERT INTO recordings ({', '.join(COLUMNS)}) SELECT {sid_of('RE')}, '{ACCOUNT}', "
            f"{sid_of('CA')}, 'completed', 'RecordVerb', 1, {created}, {created} + 61000, "
            f"{created} - 60000, 60, NULL, {sid_of('RE')} || '.wav', 0, NULL, NULL, NULL, NULL, "
            f"NULL, NULL, NULL, 8000, NULL FROM generate_series(0, {rows - 1}) AS i")
        self.psql("VACUUM ANALYZE recordings")
        size = int(self.psql("SELECT pg_total_relation_size('recordings')").stdout.strip())
        return version, time.monotonic() - t0, size

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def write_60s_wav(path):
    """60 s of 16-bit PCM 8 kHz mono: the speech fixture (µ-law) decoded and looped."""
    with open(SPEECH, "rb") as f:  # µ-law WAV: the `wave` module reads PCM only
        raw = f.read()
    i = raw.index(b"data") + 8
    ulaw = raw[i:]
    pcm = bytearray()
    for u in ulaw:
        u = ~u & 0xFF
        sign, exp, man = u & 0x80, (u >> 4) & 7, u & 0x0F
        mag = (((man << 3) + 0x84) << exp) - 0x84
        v = -mag if sign else mag
        pcm += int(v).to_bytes(2, "little", signed=True)
    out = bytearray()
    while len(out) < 60 * 8000 * 2:
        out += pcm
    out = bytes(out[: 60 * 8000 * 2])
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(out)


class Client:
    """Keep-alive GETs, timed; `auth`: the headers that authenticate (Basic by default)."""

    def __init__(self, port, auth=None):
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.auth = auth if auth is not None else {"Authorization": AUTH}

    def get(self, path, headers=None):
        h = dict(self.auth)
        h.update(headers or {})
        t0 = time.perf_counter()
        self.c.request("GET", path, headers=h)
        r = self.c.getresponse()
        body = r.read()
        dt = time.perf_counter() - t0
        if r.status != 200:
            raise RuntimeError(f"GET {path}: {r.status} {body[:200]!r}")
        return dt, body


def pct(xs, p):
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


def summary(name, xs):
    ms = [x * 1000 for x in xs]
    return {"name": name, "n": len(ms), "p50_ms": round(pct(ms, 50), 3), "p99_ms": round(pct(ms, 99), 3),
            "max_ms": round(max(ms), 3), "mean_ms": round(statistics.mean(ms), 3)}


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    for line in c.getresponse().read().decode().splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    return None


def markdown(r):
    """The README's table."""
    out = ["| measurement | p50 | p99 |", "|---|---|---|"]
    for l in r["latency"]:
        out.append(f"| {l['name']} (n={l['n']}) | {l['p50_ms']:.2f} ms | {l['p99_ms']:.2f} ms |")
    m, p = r["media"], r["mp3"]
    out += [
        "",
        f"* media: {m['clients']} clients × {m['downloads'] // m['clients']} downloads of a 60 s WAV "
        f"({m['file_bytes']} B): {m['MB_per_s']} MB/s ({m['downloads_per_s']} downloads/s); "
        f"one client alone {m['single_client_MB_per_s']} MB/s",
        f"* MP3, 60 s of audio: first request {p['first_median_ms']} ms (median of {p['first_request_ms']}), "
        f"cached {p['cached_median_ms']} ms; {p['mp3_bytes']} B; 4 concurrent first requests: "
        f"{p['concurrent_first']['encodes']} encode, {p['concurrent_first']['wall_ms']} ms",
        f"* RSS: {r['mem_start_kib']['VmRSS'] / 1024:.1f} MiB after start, {r['mem_end_kib']['VmRSS'] / 1024:.1f} MiB "
        f"after the run (peak {r['mem_end_kib']['VmHWM'] / 1024:.1f} MiB); {r['database']} recordings {r['db_bytes'] / 1e6:.1f} MB; "
        f"healthy {r['ready_s'] * 1000:.0f} ms after exec",
        f"* load average during the run: {' '.join(r['loadavg'])} on {r['cpus']} CPUs",
    ]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hark", default="/work/target-load/release/hark")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dir", default="/tmp/hark-api-bench")
    ap.add_argument("--json")
    ap.add_argument("--postgres", action="store_true",
                    help="the store in a private PostgreSQL server instead of hark.db")
    a = ap.parse_args()
    res = {"rows": a.rows, "database": "postgres" if a.postgres else "sqlite"}

    shutil.rmtree(a.dir, ignore_errors=True)
    storage = os.path.join(a.dir, "recordings")
    os.makedirs(storage)
    sip, http_port, rtp = free_ports(3)
    cfg = os.path.join(a.dir, "hark.toml")
    pg = Postgres(os.path.join(a.dir, "pg")) if a.postgres else None
    write_config(cfg, storage, sip, http_port, rtp, pg.url if pg else "")
    log = os.path.join(a.dir, "hark.log")

    # First start creates and migrates the database; then seed it while hark is down.
    Hark(a.hark, cfg, log, http_port).stop()
    now_ms = int(time.time() * 1000)
    if pg:
        version, seed_s, db_bytes = pg.seed(a.rows, now_ms)
    else:
        db = os.path.join(storage, "hark.db")
        version, seed_s = seed(db, a.rows, now_ms)
        db_bytes = os.path.getsize(db)
    res["schema_version"] = version
    res["seed_s"] = round(seed_s, 2)
    res["db_bytes"] = db_bytes
    newest = [sid("RE", i) for i in range(a.rows - 1, a.rows - 8, -1)]
    for s in newest:
        write_60s_wav(os.path.join(storage, f"{s}.wav"))

    h = Hark(a.hark, cfg, log, http_port)
    res["ready_s"] = round(h.ready_s, 3)
    res["mem_start_kib"] = h.mem()
    base = f"/2010-04-01/Accounts/{ACCOUNT}"
    cl = Client(http_port)
    for _ in range(20):  # warm-up: connection, statement cache, page cache
        cl.get(f"{base}/Recordings.json?PageSize=50")

    lat = []
    page0 = [cl.get(f"{base}/Recordings.json?PageSize=50")[0] for _ in range(500)]
    lat.append(summary("list page 0 (PageSize=50)", page0))

    # The helper's walk: follow next_page_uri (keyset PageToken) to the end.
    walk, uri, items = [], f"{base}/Recordings.json?PageSize=50", 0
    t_walk = time.perf_counter()
    while uri:
        dt, body = cl.get(uri)
        walk.append(dt)
        page = json.loads(body)
        items += len(page["recordings"])
        uri = page["next_page_uri"]
    t_walk = time.perf_counter() - t_walk
    if items != a.rows:
        sys.exit(f"walk saw {items} recordings, seeded {a.rows}")
    lat.append(summary(f"list, every page via next_page_uri ({len(walk)} pages)", walk))
    lat.append(summary("list, last 100 pages of that walk", walk[-100:]))
    res["walk_total_s"] = round(t_walk, 2)

    last_page = (a.rows - 1) // 50
    for n in (100, last_page // 2, last_page):
        xs = [cl.get(f"{base}/Recordings.json?PageSize=50&Page={n}")[0] for _ in range(50)]
        lat.append(summary(f"list Page={n} by number (OFFSET {n * 50})", xs))

    call = sid("CA", a.rows // 3)
    xs = [cl.get(f"{base}/Recordings.json?CallSid={call}")[0] for _ in range(300)]
    lat.append(summary("list CallSid=… (1 match)", xs))

    rnd = random.Random(7)
    xs = [cl.get(f"{base}/Recordings/{sid('RE', rnd.randrange(a.rows))}.json")[0] for _ in range(2000)]
    lat.append(summary("fetch Recordings/{Sid}.json (random)", xs))
    res["latency"] = lat

    # Media throughput: 8 curl clients, each fetching the same 60 s WAV `per` times on one
    # connection.
    wav_url = f"http://127.0.0.1:{http_port}{base}/Recordings/{newest[0]}.wav"
    size = os.path.getsize(os.path.join(storage, f"{newest[0]}.wav"))
    per, clients = 100, 8
    cmd = ["curl", "-s", "-u", f"{ACCOUNT}:{TOKEN}"]
    for _ in range(per):
        cmd += ["-o", "/dev/null", wav_url]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd) for _ in range(clients)]
    codes = [p.wait() for p in procs]
    dt = time.perf_counter() - t0
    if any(codes):
        sys.exit(f"curl failed: {codes}")
    total = size * per * clients
    res["media"] = {"file_bytes": size, "clients": clients, "downloads": per * clients,
                    "seconds": round(dt, 2), "MB_per_s": round(total / dt / 1e6, 1),
                    "downloads_per_s": round(per * clients / dt, 1)}
    # Single client, for comparison.
    one = [Client(http_port).get(f"{base}/Recordings/{newest[0]}.wav")[0] for _ in range(20)]
    res["media"]["single_client_MB_per_s"] = round(size / statistics.median(one) / 1e6, 1)

    # MP3: first request encodes (60 s of audio), the next is served from the cache.
    mp3 = []
    for s in newest[1:6]:
        first, body = Client(http_port).get(f"{base}/Recordings/{s}.mp3")
        cached, body2 = Client(http_port).get(f"{base}/Recordings/{s}.mp3")
        assert body == body2 and body[:1] == b"\xff", "MP3 body"
        mp3.append({"first_s": first, "cached_s": cached, "mp3_bytes": len(body)})
    res["mp3"] = {
        "audio_s": 60,
        "first_request_ms": [round(m["first_s"] * 1000, 1) for m in mp3],
        "cached_request_ms": [round(m["cached_s"] * 1000, 2) for m in mp3],
        "first_median_ms": round(statistics.median(m["first_s"] for m in mp3) * 1000, 1),
        "cached_median_ms": round(statistics.median(m["cached_s"] for m in mp3) * 1000, 2),
        "mp3_bytes": mp3[0]["mp3_bytes"],
    }
    # Four concurrent first requests for one recording: one encode.
    before = metric(http_port, "hark_mp3_encodes_total")
    s = newest[6]
    out = [None] * 4
    def grab(k):
        out[k] = Client(http_port).get(f"{base}/Recordings/{s}.mp3")
    ts = [threading.Thread(target=grab, args=(k,)) for k in range(4)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    res["mp3"]["concurrent_first"] = {
        "requests": 4, "wall_ms": round((time.perf_counter() - t0) * 1000, 1),
        "encodes": metric(http_port, "hark_mp3_encodes_total") - before,
        "identical": len({o[1] for o in out}) == 1,
    }
    res["mem_end_kib"] = h.mem()
    h.stop()
    if pg:
        pg.stop()
    res["loadavg"] = open("/proc/loadavg").read().split()[:3]
    res["cpus"] = os.cpu_count()

    print(json.dumps(res, indent=2))
    print(markdown(res), file=sys.stderr)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
