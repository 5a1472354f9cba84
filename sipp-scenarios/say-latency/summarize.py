#!/usr/bin/env python3
"""Tables of measure.sh's results: summarize.py results.jsonl [espeak.jsonl]"""
import json
import statistics
import sys
from collections import defaultdict


def stats(values):
    if not values:
        return "n/a"
    return f"{min(values):.2f} | {statistics.median(values):.2f} | {max(values):.2f}"


def main(argv):
    groups = defaultdict(list)
    for line in open(argv[1]):
        r = json.loads(line)
        groups[r["label"]].append(r)
    print("| calls (label) | n | failed | 200 OK -> first RTP ms: min | median | max | INVITE -> 200 OK ms: median "
          "| Say audio received s | first PT |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, rs in groups.items():
        ok = [r for r in rs if r["ok"]]
        say = [r["say_ms"] for r in ok]
        setup = [r["setup_ms"] for r in ok]
        audio = sorted({r["audio_s"] for r in ok})
        pts = sorted({r.get("first_pt") for r in ok})
        audio_s = f"{audio[0]:.2f}" if len(audio) == 1 else (f"{audio[0]:.2f}-{audio[-1]:.2f}" if audio else "n/a")
        print(f"| {label} | {len(rs)} | {len(rs) - len(ok)} | {stats(say)} | "
              f"{statistics.median(setup) if setup else float('nan'):.1f} | {audio_s} | {pts} |")
        for r in rs:
            if not r["ok"]:
                print(f"    failed: {r}")
    if len(argv) > 2:
        eg = defaultdict(list)
        for line in open(argv[2]):
            r = json.loads(line)
            eg[r["label"]].append(r)
        print()
        print("| espeak-ng alone | n | wall ms: min | median | max | audio s |")
        print("|---|---|---|---|---|---|")
        for label, rs in eg.items():
            audio = [r["audio_s"] for r in rs]
            print(f"| {label} | {len(rs)} | {stats([r['ms'] for r in rs])} | {min(audio):.2f}-{max(audio):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
