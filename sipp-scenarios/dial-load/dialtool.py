#!/usr/bin/env python3
"""Report of a bridged-call load run (run.sh), stdlib only; shares loadtool.py's sampler and
helpers.

  dialtool.py report DIR N

Checks: the callers' SIPp (attempted = succeeded = N, 0 failed) and the agents' SIPp (N calls
answered and hung up by Hark); Hark's CPU (% of one core) while all N calls are up and its
peak RSS; every recording: N WAVs of 2 channels, each within 300 ms of the reference call's
length, its database row `completed` (2 channels, DialVerb), and each channel complete and
exact: from its first to its last 20 ms frame above the gate, a sample-identical copy of what
that side sent (channel 1: ../load/speech20s.ulaw, the callers; channel 2: agent20s.ulaw, the
agents), as long as the reference call's span (within 40 ms).
"""
import audioop
import csv
import glob
import json
import os
import sqlite3
import sys
import wave

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "load"))
from loadtool import cpu_in_window, load_stat, stat_epoch  # noqa: E402


HERE = os.path.dirname(os.path.abspath(__file__))
# What each side sent, as 16-bit PCM (G.711 decodes the same everywhere).
SOURCES = [
    audioop.ulaw2lin(open(os.path.join(HERE, "..", "load", "speech20s.ulaw"), "rb").read(), 2),
    audioop.ulaw2lin(open(os.path.join(HERE, "agent20s.ulaw"), "rb").read(), 2),
]
GATE = 300


def channels(path):
    """(seconds, [channel 1 PCM, channel 2 PCM]) of a 2-channel 16-bit WAV."""
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 2, f"{path}: {w.getnchannels()} channels"
        rate, n = w.getframerate(), w.getnframes()
        pcm = w.readframes(n)
    return n / rate, [audioop.tomono(pcm, 2, 1, 0), audioop.tomono(pcm, 2, 0, 1)]


def speech(pcm):
    """The bytes from the first to the last 20 ms frame above the gate."""
    fr = 320
    loud = [i for i in range(0, len(pcm) - fr + 1, fr) if audioop.rms(pcm[i:i + fr], 2) > GATE]
    return pcm[loud[0]:loud[-1] + fr] if loud else b""


def report(d, n):
    n = int(n)
    ok = True
    meta = json.load(open(os.path.join(d, "run.json")))
    print(f"== Hark bridged-call load: N={n} rate={meta['rate']}/s, dir {d}")
    rows = load_stat(os.path.join(d, "caller_stat.csv"))
    last = rows[-1] if rows else {}
    created = int(last.get("TotalCallCreated", 0) or 0)
    succ = int(last.get("SuccessfulCall(C)", 0) or 0)
    failed = int(last.get("FailedCall(C)", 0) or 0)
    print(f"caller calls: attempted {created}, succeeded {succ}, failed {failed} (SIPp exit {meta['caller_rc']})")
    if created != n or succ != n or failed != 0:
        ok = False
    arows = load_stat(os.path.join(d, "agent_stat.csv"))
    alast = arows[-1] if arows else {}
    asucc = int(alast.get("SuccessfulCall(C)", 0) or 0)
    afail = int(alast.get("FailedCall(C)", 0) or 0)
    print(f"agent legs: succeeded {asucc}, failed {afail} (reference included; SIPp exit {meta['agent_rc']})")
    if asucc < n or afail != 0:
        ok = False
    peak = max((int(r.get("CurrentCall", 0) or 0) for r in rows), default=0)
    full = [stat_epoch(r) for r in rows if int(r.get("CurrentCall", 0) or 0) >= n]
    print(f"peak concurrent bridged calls: {peak} ({2 * peak} legs)")

    with open(os.path.join(d, "samples.csv"), newline="") as f:
        s = [r for r in csv.DictReader(f)]
    t = [float(r["t"]) for r in s]
    hk = [int(r["hark_ticks"]) for r in s]

    if full:
        lo, hi = min(full), max(full)
    else:
        lo, hi = meta["sipp_start"], meta["sipp_end"]
        ok = False
    hmax, hmean, span = cpu_in_window(t, hk, lo, hi)
    rss = max(int(r["hark_rss_kb"]) for r in s if r["hark_rss_kb"]) / 1024
    fds = max(int(r["hark_fds"]) for r in s if r["hark_fds"])
    thr = max(int(r["hark_threads"]) for r in s if r["hark_threads"])
    fmt = lambda v: "n/a" if v is None else f"{v:.1f}"
    print(f"Hark CPU % of one core while all {n} calls are up ({span:.0f} s): max {fmt(hmax)}, mean {fmt(hmean)}")
    print(f"Hark peak RSS {rss:.1f} MiB, {fds} fds, {thr} threads")

    ref_dur, ref_pcm = channels(meta["reference_wav"])
    ref_span = [len(speech(p)) / 16000 for p in ref_pcm]
    wavs = sorted(glob.glob(os.path.join(d, "recordings", "*.wav")))
    db = os.path.join(d, "recordings", "hark.db")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rowmap = {sid: (st, ch, src) for sid, st, ch, src in
                  con.execute("SELECT sid, status, channels, source FROM recordings")}
    finally:
        con.close()
    bad = []
    exact = [0, 0]
    for w in wavs:
        sid = os.path.basename(w)[:-4]
        try:
            dur, pcm = channels(w)
        except Exception as e:  # noqa: BLE001 - report any broken file
            bad.append(f"{sid}: {e}")
            continue
        st = rowmap.get(sid)
        if st is None or st[0] != "completed" or st[1] != 2 or st[2] != "DialVerb":
            bad.append(f"{sid}: row {st}")
        if abs(dur - ref_dur) > 0.3:
            bad.append(f"{sid}: {dur:.3f} s vs reference {ref_dur:.3f} s")
        for ch in (0, 1):
            part = speech(pcm[ch])
            secs = len(part) / 16000
            if abs(secs - ref_span[ch]) > 0.04:
                bad.append(f"{sid}: channel {ch + 1} speech lasts {secs:.3f} s, reference {ref_span[ch]:.3f} s")
            elif SOURCES[ch].find(part) < 0:
                bad.append(f"{sid}: channel {ch + 1} is not an exact copy of what was sent")
            else:
                exact[ch] += 1
    print(f"recordings: {len(wavs)} WAVs (want {n}), reference {ref_dur:.3f} s, speech "
          f"{ref_span[0]:.2f} s (caller) / {ref_span[1]:.2f} s (agent); complete and sample-exact: "
          f"channel 1 {exact[0]}/{n}, channel 2 {exact[1]}/{n}")
    if len(wavs) != n or bad:
        ok = False
    for b in bad[:10]:
        print("  BAD", b)
    if meta["hark_errors"]:
        print(f"Hark logged {meta['hark_errors']} ERROR lines")
        ok = False
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "report":
        sys.exit(report(sys.argv[2], sys.argv[3]))
    print(__doc__)
    sys.exit(2)
