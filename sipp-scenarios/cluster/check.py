#!/usr/bin/env python3
"""Checks and figures of a cluster run (run.sh writes RUN_DIR/run.json, then runs this).

    check.py RUN_DIR/run.json

Reads the shared PostgreSQL (psql), the bucket directory of s3s-fs, the webhook receiver's log,
each node's REST API and disk. Prints PASS/FAIL lines with numbers and the figures; exit 0 only
if every check passed.
"""
import base64
import collections
import json
import os
import re
import struct
import subprocess
import sys
import urllib.request

RUN = json.load(open(sys.argv[1]))
RESULTS = []


def check(name, ok, detail):
    RESULTS.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")


def info(text):
    print(f"      {text}")


def sql(query):
    """Rows of `query` as dicts (json_agg through psql)."""
    wrapped = f"SELECT coalesce(json_agg(t), '[]') FROM ({query}) t"
    out = subprocess.run(
        ["psql", RUN["pg_url"], "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", wrapped],
        capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(out)


def pct(values, p):
    """Nearest-rank percentile."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def wav_info(path):
    """(sample_rate, frames) of a PCM/µ-law WAV whose chunks add up, else raises."""
    data = open(path, "rb").read()
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not RIFF/WAVE")
    riff_size = struct.unpack("<I", data[4:8])[0]
    if riff_size + 8 != len(data):
        raise ValueError(f"RIFF size {riff_size + 8} != file size {len(data)}")
    pos, fmt, frames = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            tag, ch, rate, _bps, align, bits = struct.unpack("<HHIIHH", body[:16])
            fmt = (tag, ch, rate, align, bits)
        elif cid == b"data":
            if fmt is None:
                raise ValueError("data before fmt")
            if pos + 8 + size != len(data):
                raise ValueError(f"data chunk {size} B does not end the file")
            frames = size // fmt[3]
        pos += 8 + size + (size & 1)
    if fmt is None or frames is None:
        raise ValueError("no fmt or data chunk")
    if fmt[0] not in (1, 7) or fmt[1] != 1:
        raise ValueError(f"unexpected format {fmt}")
    return fmt[2], frames


def service_of(to_addr):
    m = re.search(r"(?:^|[:<])([^:@<>;]+)@", to_addr or "")
    return m.group(1) if m else (to_addr or "")


def http_get(port, path):
    auth = base64.b64encode(f"{RUN['account']}:{RUN['token']}".encode()).decode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Basic {auth}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.read()


def split(csv):
    return [s for s in (csv or "").split(",") if s]


nodes = [n["id"] for n in RUN["nodes"]]
victim = RUN["victim"]
inflight = set(split(RUN["victim_inflight"]))
victim_tr = split(RUN["victim_tr"])
bucket = RUN["bucket_dir"]
sent = RUN["sent_audio_s"]
B = RUN["batches"]

calls = sql("SELECT sid, status, node_id, to_addr, date_created FROM calls")
batch_of = {c["sid"]: service_of(c["to_addr"]) for c in calls}
recs = sql("SELECT sid, call_sid, status, duration, media_file, node_id, sc_url, sc_completed, sample_rate, transcribe "
           "FROM recordings WHERE deleted_at IS NULL")
for r in recs:
    r["batch"] = batch_of.get(r["call_sid"], "?")
uploads = {u["key"]: u for u in sql("SELECT key, node_id, state, attempts, queued_ms, done_ms FROM uploads")}
outbox = sql("SELECT id, idempotency_key, group_key, url, state, attempts, lease_owner FROM outbox")
trs = sql("SELECT sid, recording_sid, status, lease_owner, transcribe_callback, error FROM transcriptions")
hooks = [json.loads(line) for line in open(RUN["webhooks"]) if line.strip()]


def by_node(rows):
    c = collections.Counter(r["node_id"] for r in rows)
    return ", ".join(f"{n} {c.get(n, 0)}" for n in nodes)


# ---------------------------------------------------------------- 1. phase 1
print(f"== checks ({len(nodes)} nodes, {RUN['calls']} calls in phase 1; victim {victim})")
b1 = B["b1"]
b1_recs = [r for r in recs if r["batch"] == "b1"]
b1_count = collections.Counter(r["node_id"] for r in b1_recs)
check("1a phase 1 SIPp", b1["failed"] == 0 and b1["ok"] == RUN["calls"] and b1["rc"] == 0,
      f"{b1['ok']}/{RUN['calls']} successful, {b1['failed']} failed (sipp rc {b1['rc']})")
check("1b phase 1 calls on every node", len(b1_recs) == RUN["calls"] and all(b1_count.get(n, 0) > 0 for n in nodes),
      f"{len(b1_recs)} recordings: {by_node(b1_recs)}")

# ---------------------------------------------------------------- 2. bucket
statuses = collections.Counter(r["status"] for r in recs)
bad, too_far, checked = [], [], 0
for r in recs:
    if r["status"] != "completed":
        continue
    path = os.path.join(bucket, r["media_file"])
    try:
        rate, frames = wav_info(path)
    except (OSError, ValueError) as e:
        bad.append(f"{r['sid']}: {e}")
        continue
    checked += 1
    secs = frames / rate
    if r["duration"] is None or abs(secs - r["duration"]) > 1.0:
        bad.append(f"{r['sid']}: {secs:.2f} s of samples, row says {r['duration']}")
    elif r["sid"] not in inflight and abs(secs - sent) > 1.0:
        too_far.append(f"{r['sid']} ({r['node_id']}): {secs:.2f} s, sent {sent} s")
unexpected = [r["sid"] for r in recs if r["status"] != "completed" and not (r["sid"] in inflight and r["status"] == "absent")]
check("2a every recording finished", not unexpected,
      f"{len(recs)} recordings: {dict(statuses)}" + (f"; unexpected: {unexpected[:5]}" if unexpected else ""))
check("2b every completed recording in the bucket, a valid WAV, samples == duration (±1 s) and == sent audio (±1 s)",
      not bad and not too_far and checked == statuses.get("completed", 0),
      f"{checked} objects checked in {bucket}; {len(bad)} bad, {len(too_far)} off the sent {sent} s"
      + "".join(f"\n        {x}" for x in (bad + too_far)[:8]))
ustates = collections.Counter(u["state"] for u in uploads.values())
missing_up = [r["sid"] for r in recs if r["status"] == "completed" and uploads.get(r["media_file"], {}).get("state") != "done"]
check("2c uploads all done", not missing_up and set(ustates) <= {"done"},
      f"uploads: {dict(ustates)}; completed recordings without a done upload: {len(missing_up)}")
local, stale = {}, {}
for n in RUN["nodes"]:
    names = os.listdir(n["dir"]) if os.path.isdir(n["dir"]) else []
    local[n["id"]] = sorted(f for f in names if f.startswith("RE") and f.endswith(".wav") and not f.endswith(".fetched.wav"))
    stale[n["id"]] = sorted(f for f in names if f.endswith((".fetched.wav", ".download")))
check("2d no local copies of recordings left", all(not v for v in local.values()),
      ", ".join(f"{k}: {len(v)} WAVs" for k, v in local.items()))
# Temporary copies fetched from the bucket (a transcription job's, an MP3 encode's): removed
# when the job ends, and at start-up for a node killed mid-job.
check("2e no temporary copies of recordings left", not any(stale.values()),
      ", ".join(f"{k}: {v}" for k, v in stale.items() if v) or "none")

# ---------------------------------------------------------------- 3. callbacks
status_hooks = [h for h in hooks if h["path"] == "/status"]
per_rec = collections.Counter(h["params"].get("RecordingSid") for h in status_hooks)
tokens = collections.Counter(h["token"] for h in status_hooks)
want = [r for r in recs if r["status"] == "completed" and r["sc_url"] and r["sc_completed"]]
want_sids = {r["sid"] for r in want}
not_once = [s for s in want_sids if per_rec.get(s, 0) != 1]
strays = [s for s in per_rec if s not in want_sids]
dup_tokens = [t for t, n in tokens.items() if n != 1 or not t]
wrong_status = [h for h in status_hooks if h["params"].get("RecordingStatus") != "completed" or h["status"] != 200]
check("3a one /status per completed recording", not not_once and not strays and not wrong_status,
      f"{len(want_sids)} recordings, {len(status_hooks)} /status requests; not exactly once: {len(not_once)}, "
      f"unknown recording: {len(strays)}, not completed/200: {len(wrong_status)}")
check("3b each idempotency token exactly once", not dup_tokens,
      f"{len(tokens)} distinct tokens in {len(status_hooks)} requests; repeated or missing: {len(dup_tokens)}")
ostates = collections.Counter(o["state"] for o in outbox)
status_rows = [o for o in outbox if o["url"].endswith("/status")]
check("3c outbox all delivered", set(ostates) <= {"delivered"} and len(status_rows) == len(want_sids),
      f"outbox: {dict(ostates)}; /status rows {len(status_rows)} for {len(want_sids)} recordings")
tr_hooks = [h for h in hooks if h["path"] == "/transcribe"]
tr_per = collections.Counter(h["params"].get("TranscriptionSid") for h in tr_hooks)
tr_tokens = collections.Counter(h["token"] for h in tr_hooks)
tr_done = [t for t in trs if t["status"] in ("completed", "failed") and t["transcribe_callback"]]
tr_bad = [t["sid"] for t in tr_done if tr_per.get(t["sid"], 0) != 1]
check("3d one transcribeCallback per transcription, tokens once",
      not tr_bad and len(tr_hooks) == len(tr_done) and all(n == 1 and t for t, n in tr_tokens.items()),
      f"{len(tr_done)} transcriptions, {len(tr_hooks)} /transcribe requests, not exactly once: {len(tr_bad)}")

# ---------------------------------------------------------------- 4. REST
db_sids = {r["sid"] for r in recs}
for n in RUN["nodes"]:
    listed, pages, err = [], 0, None
    path = f"/2010-04-01/Accounts/{RUN['account']}/Recordings.json?PageSize=1000"
    try:
        while path and pages < 100:
            status, body = http_get(n["http"], path)
            page = json.loads(body)
            pages += 1
            listed += [x["sid"] for x in page.get("recordings", [])]
            path = page.get("next_page_uri")
    except Exception as e:  # noqa: BLE001 - reported as a failure
        err = str(e)
    check(f"4  {n['id']} REST lists every recording", err is None and len(listed) == len(db_sids) and set(listed) == db_sids,
          f"{len(listed)} listed in {pages} page(s), {len(db_sids)} in the database" + (f"; error {err}" if err else ""))
# Media from a node that did not record it: served from the bucket.
media_ok, media_n = 0, 0
for r in [r for r in recs if r["status"] == "completed"][:: max(1, len(recs) // 12)][:12]:
    other = next(n for n in RUN["nodes"] if n["id"] != r["node_id"])
    media_n += 1
    try:
        status, body = http_get(other["http"], f"/2010-04-01/Accounts/{RUN['account']}/Recordings/{r['sid']}.wav")
        if status == 200 and body == open(os.path.join(bucket, r["media_file"]), "rb").read():
            media_ok += 1
    except Exception:  # noqa: BLE001
        pass
check("4m media served by another node == bucket object", media_ok == media_n, f"{media_ok}/{media_n} recordings")

# ---------------------------------------------------------------- 5. failover
b2, b3, tr = B["b2"], B["b3"], B["tr"]
b3_recs = [r for r in recs if r["batch"] == "b3"]
check("5a batch 3 (after the kill): 0 failed, none on the dead node",
      b3["failed"] == 0 and b3["ok"] == RUN["b3_calls"] and len(b3_recs) == RUN["b3_calls"]
      and all(r["node_id"] != victim for r in b3_recs),
      f"{b3['ok']}/{RUN['b3_calls']} successful, {b3['failed']} failed; recordings: {by_node(b3_recs)}")
b2_recs = [r for r in recs if r["batch"] == "b2"]
b2_victim = sum(1 for r in b2_recs if r["node_id"] == victim)
check("5b batch 2 (up at the kill): only the dead node's calls failed",
      b2["ok"] == len(b2_recs) - b2_victim and b2["failed"] == b2_victim,
      f"{b2['ok']} successful, {b2['failed']} failed; recordings: {by_node(b2_recs)}")
vrec = [r for r in recs if r["sid"] in inflight]
v_ok = [r for r in vrec if r["status"] in ("completed", "absent")]
v_up = [r for r in vrec if r["status"] == "completed" and uploads.get(r["media_file"], {}).get("state") == "done"
        and os.path.exists(os.path.join(bucket, r["media_file"]))]
v_cb = [r for r in vrec if r["status"] == "completed" and per_rec.get(r["sid"], 0) == 1]
n_completed = sum(1 for r in vrec if r["status"] == "completed")
check("5c dead node's in-flight recordings repaired, uploaded, called back once",
      len(inflight) > 0 and len(v_ok) == len(inflight) and len(v_up) == n_completed and len(v_cb) == n_completed,
      f"{len(inflight)} in progress at the kill: {len(v_ok)} repaired ({n_completed} completed, "
      f"{len(vrec) - n_completed} absent), {len(v_up)} in the bucket, {len(v_cb)} callbacks once; "
      f"durations {sorted(r['duration'] for r in vrec if r['duration'] is not None)}")
if victim_tr:
    tr_rows = {t["sid"]: t for t in trs}
    done_by = [tr_rows.get(s, {}).get("lease_owner") for s in victim_tr]
    ok = all(tr_rows.get(s, {}).get("status") == "completed" and tr_rows[s].get("lease_owner") not in (None, victim)
             for s in victim_tr)
    took = sum(open(n["log"]).read().count("took over transcription jobs") for n in RUN["nodes"] if n["id"] != victim)
    check("5d dead node's transcription jobs finished by the other nodes", ok,
          f"{len(victim_tr)} job(s) held at the kill -> {[tr_rows.get(s, {}).get('status') for s in victim_tr]} "
          f"by {done_by}; 'took over' log lines on the others: {took}")
else:
    check("5d dead node's transcription jobs finished by the other nodes", False,
          "NOT EXERCISED: no node held a claimed transcription job while batch 2 was up")
tr_status = collections.Counter(t["status"] for t in trs)
check("5e every transcription completed", tr_status.get("completed", 0) == len(trs) and len(trs) > 0,
      f"{len(trs)} transcriptions: {dict(tr_status)}" +
      "".join(f"\n        {t['sid']}: {t['error']}" for t in trs if t["status"] != "completed")[:600])
tr_recs = {t["recording_sid"] for t in trs}
untranscribed = [r["sid"] for r in recs if r["transcribe"] and r["status"] == "completed" and r["sid"] not in tr_recs]
# A <Record transcribe="true"> cut by the crash: start-up recovery completes it, queues its
# status callback and its transcription.
check("5f every recording with transcribe=\"true\" was transcribed", not untranscribed,
      f"untranscribed: {untranscribed} (in flight on the dead node: {[s for s in untranscribed if s in inflight]})"
      if untranscribed else "all")
info(f"transcribed batch: {tr['ok']} successful, {tr['failed']} failed "
     f"(its calls on the dead node when it died fail in SIPp); claimed callbacks of the dead node at the kill: {RUN['victim_outbox']}")
kam = open(RUN["kamailio_log"], errors="replace").read()
info("kamailio: " + "; ".join(f"{k}: {kam.count(k)}" for k in ("failover to", "node down:", "node up:")))

# ---------------------------------------------------------------- 6. figures
print("== figures")
b1_calls = sorted(c["date_created"] for c in calls if batch_of[c["sid"]] == "b1")
wall = b1["end"] - b1["start"]
if len(b1_calls) > 1:
    span = (b1_calls[-1] - b1_calls[0]) / 1000
    print(f"phase 1: {RUN['calls']} calls offered at {RUN['rate']}/s through kamailio to {len(nodes)} nodes: "
          f"achieved {(len(b1_calls) - 1) / span:.1f} calls/s (first to last call set up in {span:.1f} s), "
          f"{b1['failed']} failed; batch wall time {wall:.1f} s")
b1_keys = {r["media_file"] for r in b1_recs}
lat1 = [u["done_ms"] - u["queued_ms"] for k, u in uploads.items() if k in b1_keys and u["state"] == "done"]
lat_all = [u["done_ms"] - u["queued_ms"] for u in uploads.values() if u["state"] == "done"]
if lat1:
    print(f"upload latency after hangup (uploads.done_ms - queued_ms), phase 1: p50 {pct(lat1, 50)} ms, "
          f"p99 {pct(lat1, 99)} ms, max {max(lat1)} ms ({len(lat1)} uploads)")
if lat_all:
    print(f"upload latency, whole run: p50 {pct(lat_all, 50)} ms, p99 {pct(lat_all, 99)} ms, max {max(lat_all)} ms "
          f"({len(lat_all)} uploads)")
print(f"calls per node, phase 1: {by_node(b1_recs)}")
print(f"calls per node, whole run: {by_node(recs)}")
passed = sum(RESULTS)
print(f"== {passed}/{len(RESULTS)} checks passed")
sys.exit(0 if passed == len(RESULTS) else 1)
