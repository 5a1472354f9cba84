#!/usr/bin/env python3
"""Helpers for run.sh (stdlib only).

  loadtool.py sample OUT.csv HARK_PID SIPP_PID [WEBHOOK_PID]
                                                   1 Hz /proc sampler, until HARK_PID exits or SIGTERM
  loadtool.py pcap-speech PCAP                     speech span of the pcap's PT0 audio (RMS gate)
  loadtool.py report DIR N                         summary of a finished run in DIR
  loadtool.py webhook-stats URL OUT.json           saves ivr_webhook.py's GET /stats (exit 1 if unreachable)

CPU% is "% of one core": delta(utime+stime) / CLK_TCK / delta(wall) * 100.
"""
import audioop
import csv
import glob
import json
import os
import signal
import sqlite3
import struct
import sys
import time
import urllib.request
import wave

TCK = os.sysconf("SC_CLK_TCK")


def proc_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return None


def proc_status(pid):
    rss, threads = None, None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
    except OSError:
        pass
    return rss, threads


def count_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def sample(out, hark, sipp, webhook=None):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t", "hark_ticks", "hark_rss_kb", "hark_threads", "hark_fds", "sipp_ticks", "sipp_rss_kb", "sipp_threads",
                    "webhook_ticks", "webhook_rss_kb"])
        nxt = time.time()
        while not stop:
            ht = proc_ticks(hark)
            if ht is None:
                break
            hr, hth = proc_status(hark)
            st = proc_ticks(sipp)
            sr, sth = proc_status(sipp)
            wt = proc_ticks(webhook) if webhook else None
            wr = proc_status(webhook)[0] if webhook else None
            w.writerow([f"{time.time():.3f}", ht, hr, hth, count_fds(hark), st if st is not None else "", sr or "", sth or "",
                        wt if wt is not None else "", wr or ""])
            f.flush()
            nxt += 1.0
            time.sleep(max(0.0, nxt - time.time()))


def read_pcap_pt0(path):
    """Concatenated PT0 payloads (u-law bytes) of an Ethernet/IPv4/UDP/RTP pcap."""
    data = open(path, "rb").read()
    off, out = 24, bytearray()
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ihl = (pkt[14] & 0x0F) * 4
        rtp = pkt[14 + ihl + 8:]
        if len(rtp) > 12 and (rtp[1] & 0x7F) == 0:
            out += rtp[12:]
    return bytes(out)


def speech_span(pcm16, rate=8000, gate_dbfs=-45.0):
    """(first, last) sample of 20 ms frames louder than the gate."""
    frame = rate // 50
    gate = 32768 * 10 ** (gate_dbfs / 20)
    loud = [i for i in range(0, len(pcm16) // 2 - frame + 1, frame)
            if audioop.rms(pcm16[2 * i:2 * (i + frame)], 2) > gate]
    if not loud:
        return None
    return loud[0], loud[-1] + frame


def pcap_expected(path, padding_s=0.2):
    """Expected trimmed length: speech span of the pcap plus trim padding on both sides."""
    span = speech_span(audioop.ulaw2lin(read_pcap_pt0(path), 2))
    return None if span is None else (span[1] - span[0]) / 8000 + 2 * padding_s


def pcap_speech(path):
    pcm = audioop.ulaw2lin(read_pcap_pt0(path), 2)
    span = speech_span(pcm)
    total = len(pcm) / 2 / 8000
    if span is None:
        print(f"{path}: {total:.3f} s of audio, no speech above the gate")
        return
    a, b = span[0] / 8000, span[1] / 8000
    print(f"{path}: {total:.3f} s of PT0 audio; speech {a:.3f}-{b:.3f} s = {b - a:.3f} s "
          f"(+2x200 ms trim padding = {b - a + 0.4:.3f} s)")


def wav_info(path, with_pcm=False):
    """(seconds, 100 ms RMS envelope[, pcm bytes]) or raises."""
    with wave.open(path, "rb") as w:
        rate, n = w.getframerate(), w.getnframes()
        pcm = w.readframes(n)
    block = rate // 10 * 2
    env = [audioop.rms(pcm[i:i + block], 2) for i in range(0, len(pcm) - block + 1, block)]
    return (n / rate, env, pcm) if with_pcm else (n / rate, env)


def env_similarity(a, b, max_shift=3):
    """Best normalised correlation of two envelopes over small shifts (in 100 ms blocks)."""
    best = -1.0
    for s in range(-max_shift, max_shift + 1):
        x = a[max(0, s):]
        y = b[max(0, -s):]
        m = min(len(x), len(y))
        if m < 10:
            continue
        x, y = x[:m], y[:m]
        mx, my = sum(x) / m, sum(y) / m
        sxy = sum((p - mx) * (q - my) for p, q in zip(x, y))
        sxx = sum((p - mx) ** 2 for p in x)
        syy = sum((q - my) ** 2 for q in y)
        if sxx > 0 and syy > 0:
            best = max(best, sxy / (sxx * syy) ** 0.5)
    return best


def cpu_in_window(t, ticks, lo, hi):
    """CPU % of one core from 1 Hz samples (times `t`, cumulative `ticks`) within [lo, hi]:
    (max per second, mean over the window, window seconds); (None, None, 0) without 2 samples."""
    idx = [i for i in range(len(t)) if lo <= t[i] <= hi and ticks[i] is not None]
    per = [(ticks[i] - ticks[i - 1]) / TCK / (t[i] - t[i - 1]) * 100
           for i in idx[1:] if ticks[i - 1] is not None]
    if len(idx) < 2:
        return None, None, 0
    mean = (ticks[idx[-1]] - ticks[idx[0]]) / TCK / (t[idx[-1]] - t[idx[0]]) * 100
    return max(per) if per else None, mean, t[idx[-1]] - t[idx[0]]


def load_stat(path):
    """SIPp -trace_stat rows as dicts (';'-separated, one header line)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    if not rows:
        return []
    head = rows[0]
    return [dict(zip(head, r)) for r in rows[1:] if len(r) >= len(head) - 1]


def stat_epoch(row):
    # CurrentTime looks like "2025-11-21\t02:30:01.123456\t1763692201.123456"
    return float(row["CurrentTime"].split()[-1])


def recording_metadata(d, sidecars, wavs):
    """[(name, wav path, status, duration)] from JSON sidecars (Hark up to issue 3) or, when there
    are none, from the recordings table of {storage.dir}/hark.db (SQLite store, issue 4)."""
    out = []
    if sidecars:
        for j in sidecars:
            try:
                m = json.load(open(j))
                st, dur = m.get("status"), m.get("duration")
            except Exception as e:  # noqa: BLE001 - report any broken file
                st, dur = f"unreadable: {e}", None
            out.append((os.path.basename(j), j[:-5] + ".wav", st, dur))
        return out, "sidecars"
    db = os.path.join(d, "recordings", "hark.db")
    if not os.path.exists(db):
        return out, "sidecars"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = {sid: (st, dur) for sid, st, dur in con.execute("SELECT sid, status, duration FROM recordings")}
    finally:
        con.close()
    # Only this run's recordings: the reference call's row is in the same database.
    for w in wavs:
        sid = os.path.basename(w)[:-4]
        if sid in rows:
            out.append((sid, w, rows[sid][0], rows[sid][1]))
    return out, "database rows"


def report(d, n):
    n = int(n)
    ok = True
    meta = json.load(open(os.path.join(d, "run.json")))
    print(f"== Hark load run: N={n} rate={meta['rate']}/s, scenario {meta.get('scenario', 'pcap')}, dir {d}")

    # --- SIPp calls
    rows = load_stat(os.path.join(d, "sipp_stat.csv"))
    last = rows[-1] if rows else {}
    created = int(last.get("TotalCallCreated", 0) or 0)
    succ = int(last.get("SuccessfulCall(C)", 0) or 0)
    failed = int(last.get("FailedCall(C)", 0) or 0)
    err_lines = 0
    if os.path.exists(os.path.join(d, "sipp_errors.log")):
        err_lines = sum(1 for _ in open(os.path.join(d, "sipp_errors.log"), errors="replace"))
    print(f"calls: attempted {created}, succeeded {succ}, failed {failed} "
          f"(SIPp exit {meta['sipp_rc']}, {err_lines} lines in sipp_errors.log)")
    if created != n or succ != n or failed != 0:
        ok = False
    peak = max((int(r.get("CurrentCall", 0) or 0) for r in rows), default=0)
    full = [stat_epoch(r) for r in rows if int(r.get("CurrentCall", 0) or 0) >= n]
    print(f"SIPp peak concurrent calls: {peak}")

    # --- CPU / RSS
    with open(os.path.join(d, "samples.csv"), newline="") as f:
        s = [r for r in csv.DictReader(f)]
    t = [float(r["t"]) for r in s]
    hk = [int(r["hark_ticks"]) for r in s]
    sk = [int(r["sipp_ticks"]) if r["sipp_ticks"] else None for r in s]
    wk = [int(r["webhook_ticks"]) if r.get("webhook_ticks") else None for r in s]

    def window_cpu(lo, hi, ticks):
        return cpu_in_window(t, ticks, lo, hi)

    if full:
        lo, hi = min(full), max(full)
        label = "all N calls up (SIPp CurrentCall == N)"
    else:
        lo, hi = (meta["sipp_start"], meta["sipp_end"])
        label = "whole SIPp run (N never all up at once)"
        ok = False
    hmax, hmean, span = window_cpu(lo, hi, hk)
    smax, smean, _ = window_cpu(lo, hi, sk)
    wmax, wmean, _ = window_cpu(meta["sipp_start"], meta["sipp_end"], wk)
    whole_max, whole_mean, _ = window_cpu(meta["sipp_start"], meta["sipp_end"], hk)
    rss = max(int(r["hark_rss_kb"]) for r in s if r["hark_rss_kb"]) / 1024
    rss0 = int(s[0]["hark_rss_kb"]) / 1024 if s and s[0]["hark_rss_kb"] else 0
    thr = max(int(r["hark_threads"]) for r in s if r["hark_threads"])
    fds = max(int(r["hark_fds"]) for r in s if r["hark_fds"])
    srss = max((int(r["sipp_rss_kb"]) for r in s if r["sipp_rss_kb"]), default=0) / 1024
    sthr = max((int(r["sipp_threads"]) for r in s if r["sipp_threads"]), default=0)
    fmt = lambda v: "n/a" if v is None else f"{v:.1f}"
    print(f"steady window: {label}: {span:.0f} s")
    print(f"Hark CPU % of one core in window: max {fmt(hmax)}, mean {fmt(hmean)}  "
          f"(whole run: max {fmt(whole_max)}, mean {fmt(whole_mean)})")
    print(f"Hark RSS: max {rss:.1f} MiB (idle at start {rss0:.1f} MiB); threads max {thr}; fds max {fds}")
    print(f"SIPp CPU % of one core in window: max {fmt(smax)}, mean {fmt(smean)}; "
          f"SIPp RSS max {srss:.0f} MiB, threads max {sthr}")
    if any(v is not None for v in wk):
        print(f"webhook server CPU % of one core over the SIPp run: max {fmt(wmax)}, mean {fmt(wmean)}")

    # --- IVR webhooks: every call must have run /voice -> /record -> /done, correctly signed
    hooks = None
    if os.path.exists(os.path.join(d, "webhook_end.json")):
        end = json.load(open(os.path.join(d, "webhook_end.json")))
        ref0 = json.load(open(os.path.join(d, "webhook_reference.json")))
        counts = {k: end["counts"].get(k, 0) - ref0["counts"].get(k, 0) for k in ("/voice", "/record", "/done")}
        other = {k: v for k, v in end["counts"].items() if k not in counts}
        bad_sig = sum(end["bad_signature"].values())
        flows = end["complete_flows"] - ref0["complete_flows"]
        digits1 = end["record_digits"].get("1", 0) - ref0["record_digits"].get("1", 0)
        pound = end["done_digits"].get("#", 0) - ref0["done_digits"].get("#", 0)
        hooks = counts
        print(f"webhooks (load calls only): /voice {counts['/voice']}, /record {counts['/record']}, "
              f"/done {counts['/done']} (expected {n} each); other paths {other or 'none'}; "
              f"bad X-Twilio-Signature {bad_sig} (all requests incl. reference)")
        print(f"  complete /voice->/record->/done flows by CallSid: {flows}; /record with Digits=1: {digits1}; "
              f"/done with Digits=#: {pound}; RecordingDuration values {end['recording_durations']}")
        for sid, paths in list(end["incomplete_flows"].items())[:5]:
            print(f"    incomplete {sid}: {paths}")
        if any(v != n for v in counts.values()) or other or bad_sig or flows != n or digits1 != n or pound != n:
            ok = False
        # The prompt is rendered once, by the reference call; every load call must hit the TTS cache.
        renders = meta.get("espeak_renders")
        print(f"  <Say> renders (espeak-ng starts, reference + load calls): {renders} (expected 1)")
        if renders != 1:
            ok = False

    # --- recordings
    ref = meta.get("reference_duration")
    ref_env = ref_pcm = None
    if meta.get("reference_wav"):
        _, ref_env, ref_pcm = wav_info(meta["reference_wav"], True)
    identical = 0
    wavs = sorted(glob.glob(os.path.join(d, "recordings", "*.wav")))
    sidecars = sorted(glob.glob(os.path.join(d, "recordings", "*.json")))
    durs, bad_dur, bad_status, bad_env, unreadable, bad_meta = [], [], [], [], [], []
    min_sim = None
    for w in wavs:
        try:
            sec, env, pcm = wav_info(w, True)
            identical += pcm == ref_pcm
        except Exception as e:  # noqa: BLE001 - report any broken file
            unreadable.append((w, str(e)))
            continue
        durs.append(sec)
        if ref is not None and abs(sec - ref) > 0.100:
            bad_dur.append((os.path.basename(w), sec))
        if ref_env is not None:
            sim = env_similarity(env, ref_env)
            min_sim = sim if min_sim is None else min(min_sim, sim)
            if sim < 0.95:
                bad_env.append((os.path.basename(w), sim))
    metas, meta_kind = recording_metadata(d, sidecars, wavs)
    for name, wav, st, dur in metas:
        if st != "completed":
            bad_status.append((name, st))
            continue
        # Twilio's RecordingDuration: whole seconds of the file.
        try:
            secs = wav_info(wav)[0] if os.path.exists(wav) else None
        except Exception:  # noqa: BLE001 - counted as unreadable above
            secs = None
        if dur is None or secs is None or abs(dur - secs) > 1.0:
            bad_meta.append((name, f"metadata duration {dur}, wav {secs}"))
    expected = pcap_expected(meta["pcap"])
    ref_ok = ref is not None and expected is not None and abs(ref - expected) <= 0.3
    print(f"recordings: {len(wavs)} WAVs (expected {n}), {len(metas)} {meta_kind}; "
          f"reference duration {fmt(ref) if ref is None else f'{ref:.3f}'} s, pcap speech + 2x200 ms "
          f"padding = {fmt(expected) if expected is None else f'{expected:.3f}'} s -> "
          f"{'OK' if ref_ok else 'MISMATCH (reference not trimmed to the speech?)'} (±300 ms)")
    if not ref_ok:
        ok = False
    if durs:
        print(f"  durations: min {min(durs):.3f} s, max {max(durs):.3f} s; "
              f"outside reference ±100 ms: {len(bad_dur)}")
    print(f"  {meta_kind} not 'completed': {len(bad_status)}; duration missing/wrong: {len(bad_meta)}; "
          f"unreadable WAVs: {len(unreadable)}; "
          f"envelope similarity to reference: min {fmt(min_sim) if min_sim is None else f'{min_sim:.3f}'}, "
          f"below 0.95: {len(bad_env)}; sample-identical to reference: {identical}/{len(wavs)}")
    for name, v in (bad_dur[:5] + bad_status[:5] + bad_meta[:5] + bad_env[:5] + unreadable[:5]):
        print(f"    {name}: {v}")
    if len(wavs) != n or len(metas) != n or bad_dur or bad_status or bad_meta or bad_env or unreadable:
        ok = False
    print(f"Hark log: {meta.get('hark_errors', 0)} ERROR, {meta.get('hark_warnings', 0)} WARN lines")
    if meta.get("hark_errors", 0):
        ok = False
    # The targets: under 60% of one core (steady-window mean) and under 100 MiB RSS.
    holds = ok and hmean is not None and hmean < 60.0 and rss < 100.0
    print(f"targets (Hark mean CPU < 60% of a core, RSS < 100 MiB, all checks pass): "
          f"{'HOLD' if holds else 'NOT MET'}")
    hooks_col = "" if hooks is None else f"{hooks['/voice']}/{hooks['/record']}/{hooks['/done']} | {fmt(wmean)} | "
    print(f"TABLE | {meta.get('scenario', 'pcap')} | {n} | {meta['rate']} | {created} | {succ} | {failed} | {peak} | "
          f"{fmt(hmean)} | {fmt(hmax)} | {rss:.1f} | {fmt(smean)} | {hooks_col}{len(wavs)} | "
          f"{len(bad_dur)} | {len(bad_status) + len(bad_meta)} | {'PASS' if ok else 'FAIL'} | {'yes' if holds else 'no'} |")
    return 0 if ok else 1


def main(argv):
    if len(argv) >= 2 and argv[1] == "sample" and len(argv) in (5, 6):
        sample(argv[2], int(argv[3]), int(argv[4]), int(argv[5]) if len(argv) == 6 else None)
        return 0
    if len(argv) == 4 and argv[1] == "webhook-stats":
        try:
            with urllib.request.urlopen(argv[2], timeout=5) as r:
                data = r.read()
        except OSError as e:
            print(f"webhook stats {argv[2]}: {e}", file=sys.stderr)
            return 1
        with open(argv[3], "wb") as f:
            f.write(data)
        return 0
    if len(argv) == 3 and argv[1] == "pcap-speech":
        pcap_speech(argv[2])
        return 0
    if len(argv) == 3 and argv[1] == "wav-duration":
        print(f"{wav_info(argv[2])[0]:.3f}")
        return 0
    if len(argv) == 4 and argv[1] == "report":
        return report(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
