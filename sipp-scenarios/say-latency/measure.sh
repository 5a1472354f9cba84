#!/usr/bin/env bash
# <Say> latency: verb start -> first RTP packet, cold (TTS cache miss: espeak-ng runs) and cached.
#
#   sipp-scenarios/say-latency/measure.sh [RUNS] [CACHED]
#
# For each of two variants and RUNS times (default 20): start Hark with the static TwiML
# <Response><Say>SENTENCE</Say><Hangup/></Response>, place 1 call (cold: first call after start,
# the TTS cache is empty), then CACHED calls (default 1; the rendered audio is cached), stop Hark.
#   same      SENTENCE is always "Thank you for calling, please leave a message after the tone."
#   distinct  SENTENCE names a different person each run ("Thank you for calling Alice, ...")
# The caller is uac.py (stdlib Python): latency = kernel receive time of the first RTP packet
# minus that of the 200 OK (Hark answers right before the verb starts). For reference it also
# times espeak-ng alone on each sentence (same voice and rate as Hark: en-us, 150 wpm, WAV to stdout).
# Env: HARK_BIN (default ${CARGO_TARGET_DIR:-<repo>/target}/release/hark), OUT (default a new
#      /tmp/hark-say-latency.XXXX), SIP_PORT (25360), HTTP_PORT (28380), RTP_MIN/RTP_MAX (30000/30199).
# Loopback only; only processes started here are signalled, by PID. Exit 0 = every call ok.
set -uo pipefail

RUNS="${1:-20}"
CACHED="${2:-1}"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
SIP_PORT="${SIP_PORT:-25360}"
HTTP_PORT="${HTTP_PORT:-28380}"
RTP_MIN="${RTP_MIN:-30000}"
RTP_MAX="${RTP_MAX:-30199}"
HARK_BIN="${HARK_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/hark}"
[[ -x "$HARK_BIN" ]] || { echo "no hark binary at $HARK_BIN (cargo build --release -p hark)" >&2; exit 2; }
OUT="${OUT:-$(mktemp -d /tmp/hark-say-latency.XXXX)}"
mkdir -p "$OUT/recordings"
results="$OUT/results.jsonl"
: >"$results"
SENTENCE="Thank you for calling, please leave a message after the tone."
NAMES=(Alice Bob Carol David Erin Frank Grace Henry Irene Jack Karen Louis Maria Nathan Olivia Peter Quinn Rachel Simon Tina
       Ursula Victor Wendy Xavier Yvonne Zachary)

HARK_PID=""
stop_hark() {
    local i
    [[ -n "$HARK_PID" ]] && kill -0 "$HARK_PID" 2>/dev/null || { HARK_PID=""; return 0; }
    kill -TERM "$HARK_PID"
    for ((i = 0; i < 100; i++)); do kill -0 "$HARK_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$HARK_PID" 2>/dev/null && kill -KILL "$HARK_PID"
    wait "$HARK_PID" 2>/dev/null
    HARK_PID=""
}
trap stop_hark EXIT
trap 'exit 130' INT TERM

load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
rc=0
for variant in same distinct; do
    for ((r = 0; r < RUNS; r++)); do
        if [[ $variant == same ]]; then
            sentence="$SENTENCE"
        else
            sentence="Thank you for calling ${NAMES[r % ${#NAMES[@]}]}, please leave a message after the tone."
        fi
        cat >"$OUT/hark.toml" <<EOF
[sip]
listen = "127.0.0.1:$SIP_PORT"
[rtp]
port_min = $RTP_MIN
port_max = $RTP_MAX
[http]
listen = "127.0.0.1:$HTTP_PORT"
public_url = "http://127.0.0.1:$HTTP_PORT"
[storage]
dir = "$OUT/recordings"
[app]
twiml = '<Response><Say>$sentence</Say><Hangup/></Response>'
[log]
level = "warn"
EOF
        env -u HARK_BIN "$HARK_BIN" serve --config "$OUT/hark.toml" >>"$OUT/hark.log" 2>&1 &
        HARK_PID=$!
        for ((i = 0; i < 100; i++)); do
            ss -Hlun "sport = :$SIP_PORT" 2>/dev/null | grep -q . && break
            kill -0 "$HARK_PID" 2>/dev/null || { echo "hark exited:"; tail "$OUT/hark.log"; exit 2; }
            sleep 0.1
        done
        sleep 0.5 # let start-up (espeak-ng --version) finish
        timeout 60 python3 -W ignore "$here/uac.py" "127.0.0.1:$SIP_PORT" 1 --label "$variant cold" --out "$results" >/dev/null || rc=1
        if ((CACHED > 0)); then
            timeout $((60 * CACHED)) python3 -W ignore "$here/uac.py" "127.0.0.1:$SIP_PORT" "$CACHED" \
                --label "$variant cached" --out "$results" >/dev/null || rc=1
        fi
        stop_hark
        # espeak-ng alone, same arguments as Hark (text on stdin, WAV on stdout).
        python3 - "$sentence" "$variant" >>"$OUT/espeak.jsonl" <<'PYEOF'
import json, subprocess, sys, time
t = time.perf_counter()
out = subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-b", "1", "--stdout", "--stdin"],
                     input=sys.argv[1].encode(), capture_output=True, check=True).stdout
print(json.dumps({"label": sys.argv[2] + " espeak-ng alone", "ms": round((time.perf_counter() - t) * 1000, 3),
                  "audio_s": round((len(out) - 44) / 2 / 22050, 3)}))
PYEOF
    done
done
if grep -q ERROR "$OUT/hark.log"; then echo "Hark logged ERROR lines:"; grep ERROR "$OUT/hark.log" | head; rc=1; fi
{
    echo "binary: $HARK_BIN; $RUNS runs per variant, 1 cold + $CACHED cached calls each;" \
        "load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)"
    python3 "$here/summarize.py" "$results" "$OUT/espeak.jsonl"
} | tee "$OUT/summary.txt"
echo "results: $OUT"
exit "$rc"
