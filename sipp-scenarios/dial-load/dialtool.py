#!/usr/bin/env python3
"""Report of a bridged-call load run (run.sh), stdlib only; shares loadtool.py's sampler and
helpers.

  dialtool.py report DIR N

Checks: the callers' SIPp (attempted = succeeded = N, 0 failed) and the agents' SIPp (N calls
answered and hung up by Hark); Hark's CPU (% of one core) while all N calls are up and its
peak RSS; every recording: N WAVs of 2 channels, each within 300 ms of the reference call's
length, its database row `completed`, and each channel's 100 ms RMS envelope correlating
>= 0.90 with the same channel of the reference (the caller's speech on 1, the agent's on 2).
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
from loadtool import TCK, env_similarity, load_stat, stat_epoch  # noqa: E402


def channels(path):
    """(seconds, [envelope of channel 1, envelope of channel 2]) of a 2-channel 16-bit WAV."""
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 2, f"{path}: {w.getnchannels()} channels"
        rate, n = w.getframerate(), w.getnframes()
        pcm = w.readframes(n)
    block = rate // 10 * 2
    envs = []
    for ch in (0, 1):
        mono = audioop.tomono(pcm, 2, 1 - ch, ch)
        envs.append([audioop.rms(mono[i:i + block], 2) for i in range(0, len(mono) - block + 1, block)])
    return n / rate, envs


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

    def window_cpu(lo, hi):
        idx = [i for i in range(len(t)) if lo <= t[i] <= hi]
        if len(idx) < 2:
            return None, None, 0
        per = [(hk[i] - hk[i - 1]) / TCK / (t[i] - t[i - 1]) * 100 for i in idx[1:]]
        mean = (hk[idx[-1]] - hk[idx[0]]) / TCK / (t[idx[-1]] - t[idx[0]]) * 100
        return max(per), mean, t[idx[-1]] - t[idx[0]]

    if full:
        lo, hi = min(full), max(full)
    else:
        lo, hi = meta["sipp_start"], meta["sipp_end"]
        ok = False
    hmax, hmean, span = window_cpu(lo, hi)
    rss = max(int(r["hark_rss_kb"]) for r in s if r["hark_rss_kb"]) / 1024
    fds = max(int(r["hark_fds"]) for r in s if r["hark_fds"])
    thr = max(int(r["hark_threads"]) for r in s if r["hark_threads"])
    fmt = lambda v: "n/a" if v is None else f"{v:.1f}"
    print(f"Hark CPU % of one core while all {n} calls are up ({span:.0f} s): max {fmt(hmax)}, mean {fmt(hmean)}")
    print(f"Hark peak RSS {rss:.1f} MiB, {fds} fds, {thr} threads")

    ref_dur, ref_env = channels(meta["reference_wav"])
    wavs = sorted(glob.glob(os.path.join(d, "recordings", "*.wav")))
    db = os.path.join(d, "recordings", "hark.db")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rowmap = {sid: (st, ch, src) for sid, st, ch, src in
                  con.execute("SELECT sid, status, channels, source FROM recordings")}
    finally:
        con.close()
    bad = []
    worst = [1.0, 1.0]
    for w in wavs:
        sid = os.path.basename(w)[:-4]
        try:
            dur, env = channels(w)
        except Exception as e:  # noqa: BLE001 - report any broken file
            bad.append(f"{sid}: {e}")
            continue
        st = rowmap.get(sid)
        if st is None or st[0] != "completed" or st[1] != 2 or st[2] != "DialVerb":
            bad.append(f"{sid}: row {st}")
        if abs(dur - ref_dur) > 0.3:
            bad.append(f"{sid}: {dur:.3f} s vs reference {ref_dur:.3f} s")
        for ch in (0, 1):
            sim = env_similarity(env[ch], ref_env[ch])
            worst[ch] = min(worst[ch], sim)
            if sim < 0.90:
                bad.append(f"{sid}: channel {ch + 1} envelope similarity {sim:.3f}")
    print(f"recordings: {len(wavs)} WAVs (want {n}), reference {ref_dur:.3f} s; "
          f"worst envelope similarity: channel 1 {worst[0]:.3f}, channel 2 {worst[1]:.3f}")
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
