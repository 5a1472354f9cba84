#!/usr/bin/env bash
# Transcription queue under call load: C concurrent 20 s recorded calls (the load run's rtp_stream
# caller, sipp-scenarios/load/), every <Record> with transcribe="true" and the offline engine
# (Whisper, WORKERS worker processes of THREADS threads each; THREADS=0 shares the cores). Reports transcriptions finished per minute while
# the calls run (from /metrics, sampled every 5 s) and checks every recording against the
# reference call's (sample-identical data chunk), so a queue that starves the recorder shows.
#
#   scripts/asr-bench/load_transcribe.sh [C=200] [TOTAL=1200]
# Env: HARK_BIN (default ${CARGO_TARGET_DIR:-<repo>/target}/release/hark), WORKERS (1),
#      DRAIN (seconds to keep sampling after the calls end, default 60), OUT, ports as run.sh:
#      SIP_PORT 25760 (SIPp +1), SIPP_MEDIA_PORT 26700, HTTP_PORT 28780, RTP_MIN/RTP_MAX 40000-49999.
# Needs sipp (scripts/setup.sh) and the engine (scripts/install-asr.sh). Only processes started here are
# signalled, by PID.
set -uo pipefail
C="${1:-200}"
TOTAL="${2:-1200}"
RATE=$(( C / 20 > 1 ? C / 20 : 1 ))   # calls last ~20 s: C/20 per second keeps C up
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
load="$repo/sipp-scenarios/load"
WORKERS="${WORKERS:-1}"
THREADS="${THREADS:-0}"
DRAIN="${DRAIN:-60}"
SIP_PORT="${SIP_PORT:-25760}"; SIPP_PORT=$((SIP_PORT + 1))
SIPP_MEDIA_PORT="${SIPP_MEDIA_PORT:-26700}"; HTTP_PORT="${HTTP_PORT:-28780}"
RTP_MIN="${RTP_MIN:-40000}"; RTP_MAX="${RTP_MAX:-49999}"
HARK_BIN="${HARK_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/hark}"
[[ -x "$HARK_BIN" ]] || { echo "no hark binary at $HARK_BIN (cargo build --release -p hark)" >&2; exit 2; }
"$repo/scripts/install-asr.sh" || { echo "the offline engine is not installed" >&2; exit 2; }
ulimit -n 65536 2>/dev/null || true
OUT="${OUT:-$(mktemp -d "/tmp/hark-asr-load-$C.XXXX")}"
mkdir -p "$OUT/recordings" "$OUT/reference"
cat >"$OUT/hark.toml" <<TOML
[sip]
listen = "127.0.0.1:$SIP_PORT"
[rtp]
port_min = $RTP_MIN
port_max = $RTP_MAX
[http]
listen = "127.0.0.1:$HTTP_PORT"
public_url = "http://127.0.0.1:$HTTP_PORT"
[app]
twiml = '<Response><Record maxLength="120" transcribe="true"/><Hangup/></Response>'
[storage]
dir = "$OUT/recordings"
[transcription]
engine = "offline"
workers = $WORKERS
threads = $THREADS
[log]
level = "warn"
TOML
HARK_PID="" SIPP_PID="" SAMPLER_PID=""
stop_pid() { local p="$1" i; [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null; for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null; }
trap 'stop_pid "$SAMPLER_PID"; stop_pid "$SIPP_PID"; stop_pid "$HARK_PID"' EXIT
env -u HARK_BIN "$HARK_BIN" serve --config "$OUT/hark.toml" >"$OUT/hark.log" 2>&1 &
HARK_PID=$!
for ((i = 0; i < 100; i++)); do curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null && break; sleep 0.1; done
kill -0 "$HARK_PID" 2>/dev/null || { cat "$OUT/hark.log"; exit 2; }
echo "hark pid $HARK_PID, $WORKERS asr worker(s), run dir $OUT"
sipp_args=(-sf "$load/uac_speech20s_pound_rtpstream.xml" -s rec -i 127.0.0.1 -p "$SIPP_PORT"
  -mi 127.0.0.1 -mp "$SIPP_MEDIA_PORT" -nostdin -trace_err)
(cd "$load" && exec timeout -k 5 60 sipp "${sipp_args[@]}" -m 1 -timeout 50s -timeout_error \
  -error_file "$OUT/reference/sipp_errors.log" "127.0.0.1:$SIP_PORT" >"$OUT/reference/sipp.out" 2>&1) \
  || { echo "reference call failed"; tail "$OUT/hark.log"; exit 1; }
# Let the reference transcription finish (it reads the WAV) so the workers are warm and the
# queue is empty; then the reference WAV moves out of the way.
for ((i = 0; i < 240; i++)); do
  curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | grep -qE '^hark_transcriptions\{state="(done|failed)"\} 1$' && break; sleep 0.5; done
mv "$OUT"/recordings/*.wav "$OUT/reference/"
python3 "$here/loadcheck.py" sample "http://127.0.0.1:$HTTP_PORT/metrics" "$OUT/metrics.csv" "$HARK_PID" &
SAMPLER_PID=$!
start=$(date +%s.%N)
(cd "$load" && exec sipp "${sipp_args[@]}" -m "$TOTAL" -l "$C" -r "$RATE" -timeout "$(( TOTAL / RATE + 90 ))s" \
  -timeout_error -trace_stat -stf "$OUT/sipp_stat.csv" -fd 1 -error_file "$OUT/sipp_errors.log" \
  "127.0.0.1:$SIP_PORT" >"$OUT/sipp.out" 2>&1) &
SIPP_PID=$!
wait "$SIPP_PID"; sipp_rc=$?; SIPP_PID=""
end=$(date +%s.%N)
echo "SIPp exit $sipp_rc after $(awk "BEGIN{printf \"%.1f\", $end - $start}") s; sampling $DRAIN s more"
sleep "$DRAIN"
stop_pid "$SAMPLER_PID"; SAMPLER_PID=""
stop_pid "$HARK_PID"; HARK_PID=""
python3 "$here/loadcheck.py" report "$OUT" "$TOTAL" "$C" "$start" "$end" "$sipp_rc" | tee "$OUT/report.txt"
rc=${PIPESTATUS[0]}
[[ "${KEEP:-0}" == 1 ]] || rm -f "$OUT"/recordings/*.wav
exit "$rc"
