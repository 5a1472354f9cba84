#!/usr/bin/env python3
"""Sampler and report for load_transcribe.sh (stdlib only).

  loadcheck.py sample METRICS_URL OUT.csv HARK_PID      # every 5 s until killed
  loadcheck.py report RUN_DIR TOTAL C START END SIPP_RC

The sample rows: unix time, hark_transcriptions{state=done|failed|queued|running},
hark_transcription_rtf, CPU seconds of Hark and of its child processes (the ASR workers).
"""
import csv, glob, os, sqlite3, struct, sys, time, urllib.request

TICK = os.sysconf("SC_CLK_TCK")


def cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK, int(fields[1])
    except (OSError, IndexError, ValueError):
        return 0.0, -1


def children_cpu(ppid):
    total = 0.0
    for d in os.listdir("/proc"):
        if d.isdigit():
            c, parent = cpu(d)
            if parent == ppid:
                total += c
    return total


def metrics(url):
    out = {}
    try:
        text = urllib.request.urlopen(url, timeout=4).read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("hark_transcription"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def sample(url, path, pid):
    pid = int(pid)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t", "done", "failed", "queued", "running", "rtf", "hark_cpu_s", "workers_cpu_s"])
        while True:
            m = metrics(url)
            st = lambda s: m.get(f'hark_transcriptions{{state="{s}"}}', -1)
            w.writerow([f"{time.time():.2f}", st("done"), st("failed"), st("queued"), st("running"),
                        m.get("hark_transcription_rtf", -1), cpu(pid)[0], children_cpu(pid)])
            f.flush()
            time.sleep(5)


def wav_data(path):
    with open(path, "rb") as f:
        b = f.read()
    pos = 12
    while pos + 8 <= len(b):
        cid, size = b[pos:pos + 4], struct.unpack_from("<I", b, pos + 4)[0]
        if cid == b"data":
            return b[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    return b""


def rate_between(rows, t0, t1):
    """(done per minute, failed per minute, hark cpu %, workers cpu %) between the samples
    nearest to t0 and t1."""
    inside = [r for r in rows if t0 <= r["t"] <= t1]
    if len(inside) < 2:
        return None
    a, b = inside[0], inside[-1]
    dt = b["t"] - a["t"]
    return ((b["done"] - a["done"]) * 60 / dt, (b["failed"] - a["failed"]) * 60 / dt,
            100 * (b["hark_cpu_s"] - a["hark_cpu_s"]) / dt,
            100 * (b["workers_cpu_s"] - a["workers_cpu_s"]) / dt, dt, a, b)


def report(run, total, c, start, end, sipp_rc):
    total, c, start, end = int(total), int(c), float(start), float(end)
    ok = True
    rows = []
    with open(f"{run}/metrics.csv") as f:
        for r in csv.DictReader(f):
            rows.append({k: float(v) for k, v in r.items()})
    print(f"== transcription under load: {total} calls, {c} concurrent, SIPp exit {sipp_rc}, "
          f"{end - start:.0f} s of calls")
    # All C calls are up from ~C/rate = 20 s after the start until the last ones end.
    for name, t0, t1 in [("while all calls record (start+25 s .. end-20 s)", start + 25, end - 20),
                         ("after the calls (queue only)", end + 1, end + 10_000)]:
        r = rate_between(rows, t0, t1)
        if r:
            done, failed, hcpu, wcpu, dt, a, b = r
            print(f"{name}: {done:.1f} transcriptions/min finished ({failed:.1f} failed/min) over "
                  f"{dt:.0f} s; queue {a['queued']:.0f} -> {b['queued']:.0f}; Hark CPU {hcpu:.0f} %, "
                  f"ASR workers CPU {wcpu:.0f} % of one core; cumulative RTF {b['rtf']:.3f}")
    last = rows[-1] if rows else {}
    print(f"at the end: done {last.get('done')}, failed {last.get('failed')}, queued "
          f"{last.get('queued')}, running {last.get('running')}")
    ref = glob.glob(f"{run}/reference/*.wav")
    refdata = wav_data(ref[0]) if ref else b""
    wavs = sorted(glob.glob(f"{run}/recordings/*.wav"))
    same = sum(1 for w in wavs if wav_data(w) == refdata)
    print(f"recordings: {len(wavs)} WAVs (expected {total}); {same} sample-identical to the "
          f"reference ({len(refdata) / 16000:.3f} s)")
    ok &= len(wavs) == total and same == total and str(sipp_rc) == "0"
    db = sqlite3.connect(f"{run}/recordings/hark.db")
    recs = dict(db.execute("SELECT status, COUNT(*) FROM recordings GROUP BY status").fetchall())
    trs = dict(db.execute("SELECT status, COUNT(*) FROM transcriptions GROUP BY status").fetchall())
    print(f"database: recordings {recs}; transcriptions {trs} (the reference call included)")
    ok &= recs.get("completed", 0) == total + 1 and trs.get("failed", 0) == 0
    errors = sum(1 for l in open(f"{run}/hark.log", errors="replace") if "ERROR" in l)
    print(f"hark log: {errors} ERROR lines")
    ok &= errors == 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1] == "sample":
        sample(*sys.argv[2:5])
    else:
        sys.exit(report(*sys.argv[2:8]))
