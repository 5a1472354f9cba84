#!/usr/bin/env bash
# Bridged-call load run: N concurrent calls, each bridged by Hark's <Dial> to a SIPp agent and
# recorded dual-channel (G.711 both legs): 2N legs.
#
#   sipp-scenarios/dial-load/run.sh N [RATE]
#
# RATE (calls/s) defaults to max(10, N/10). Env: HARK_BIN (default <target>/release/hark, built
# if missing), OUT (run dir), KEEP=1 keeps the WAVs, SIP_PORT (Hark, 25360; the callers' SIPp
# +1, the agents' SIPp +2), MEDIA_PORT (SIPp media base, 26300; agents +4000), HTTP_PORT (28380),
# RTP_MIN/RTP_MAX (20000/39999).
# Steps: start the agents' SIPp (UAS, answers N+1 calls) -> start Hark (loopback, temp config,
# [app] twiml = <Dial record="record-from-answer-dual"><Sip>agent</Sip></Dial>) -> one reference
# call -> the callers' SIPp -m N -l N -r RATE while a 1 Hz sampler reads /proc -> stop Hark ->
# dialtool.py report. Exit 0 = every check passes. Only processes started here are signalled.
set -uo pipefail

N="${1:?usage: run.sh N [RATE]}"
RATE="${2:-$(( N / 10 > 10 ? N / 10 : 10 ))}"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=../load/lib.sh
source "$here/../load/lib.sh"
SIP_PORT="${SIP_PORT:-25360}"
CALLER_PORT=$((SIP_PORT + 1))
AGENT_PORT=$((SIP_PORT + 2))
MEDIA_PORT="${MEDIA_PORT:-26300}"
AGENT_MEDIA_PORT=$((MEDIA_PORT + 4000))
HTTP_PORT="${HTTP_PORT:-28380}"
RTP_MIN="${RTP_MIN:-20000}"
RTP_MAX="${RTP_MAX:-39999}"

HARK_BIN="${HARK_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/hark}"
if [[ ! -x "$HARK_BIN" ]]; then
    echo "building $HARK_BIN" >&2
    (cd "$repo" && cargo build --release -p hark) || exit 2
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "open-files limit: $(ulimit -n)"

OUT="${OUT:-$(mktemp -d "/tmp/hark-dial-load-$N.XXXX")}"
mkdir -p "$OUT/recordings" "$OUT/reference"
hark_base_config "$OUT/hark.toml"
cat >>"$OUT/hark.toml" <<CONF
[app]
twiml = '<Response><Dial record="record-from-answer-dual" timeout="20"><Sip>sip:agent@127.0.0.1:$AGENT_PORT</Sip></Dial></Response>'
CONF

HARK_PID="" CALLER_PID="" AGENT_PID="" SAMPLER_PID=""
cleanup() { stop_pid "$SAMPLER_PID" 2; stop_pid "$CALLER_PID" 2; stop_pid "$AGENT_PID" 2; stop_pid "$HARK_PID" 10; }
trap cleanup EXIT
trap 'exit 130' INT TERM

limit=$(( N / RATE + 90 ))
(cd "$here" && exec sipp -sf "$here/uas_agent_rtpstream.xml" -i 127.0.0.1 -p "$AGENT_PORT" \
    -mi 127.0.0.1 -mp "$AGENT_MEDIA_PORT" -nostdin -m $((N + 1)) -trace_err \
    -error_file "$OUT/agent_errors.log" -trace_stat -stf "$OUT/agent_stat.csv" -fd 1 \
    -timeout "$((limit + 60))s" >"$OUT/agent.out" 2>&1) &
AGENT_PID=$!

start_hark
echo "hark pid $HARK_PID on 127.0.0.1:$SIP_PORT, agents' SIPp pid $AGENT_PID on $AGENT_PORT, run dir $OUT"

caller=(-sf "$here/uac_caller_rtpstream.xml" -s support -i 127.0.0.1 -p "$CALLER_PORT"
    -mi 127.0.0.1 -mp "$MEDIA_PORT" -nostdin -trace_err)
# 1. Reference call.
(cd "$here" && exec timeout -k 5 60 sipp "${caller[@]}" -m 1 -timeout 50s -timeout_error \
    -error_file "$OUT/reference/sipp_errors.log" 127.0.0.1:"$SIP_PORT" >"$OUT/reference/sipp.out" 2>&1)
ref_rc=$?
sleep 1
ref_wav="$(ls "$OUT"/recordings/*.wav 2>/dev/null | head -1)"
if [[ $ref_rc -ne 0 || -z "$ref_wav" ]]; then
    echo "reference call failed (sipp rc $ref_rc, wav '${ref_wav}')"; tail -20 "$OUT/hark.log"; exit 1
fi
mv "$ref_wav" "$OUT/reference/"
ref_wav="$OUT/reference/$(basename "$ref_wav")"
echo "reference recording: $ref_wav"

# 2. The load.
echo "callers: $N calls, $RATE calls/s, global timeout ${limit}s"
sipp_start="$(date +%s.%N)"
(cd "$here" && exec sipp "${caller[@]}" -m "$N" -l "$N" -r "$RATE" -timeout "${limit}s" \
    -timeout_error -trace_stat -stf "$OUT/caller_stat.csv" -fd 1 \
    -error_file "$OUT/caller_errors.log" 127.0.0.1:"$SIP_PORT" >"$OUT/caller.out" 2>&1) &
CALLER_PID=$!
python3 -W ignore "$here/../load/loadtool.py" sample "$OUT/samples.csv" "$HARK_PID" "$CALLER_PID" &
SAMPLER_PID=$!
deadline=$(( $(date +%s) + limit + 30 ))
while kill -0 "$CALLER_PID" 2>/dev/null && (( $(date +%s) < deadline )); do sleep 0.5; done
stop_pid "$CALLER_PID" 2
wait "$CALLER_PID"; caller_rc=$?
CALLER_PID=""
sipp_end="$(date +%s.%N)"
echo "callers' SIPp exit $caller_rc after $(awk "BEGIN{printf \"%.1f\", $sipp_end - $sipp_start}") s"
# The agents' SIPp ends once it has seen N+1 calls through.
for ((i = 0; i < 60; i++)); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.5; done
stop_pid "$AGENT_PID" 2
wait "$AGENT_PID"; agent_rc=$?
AGENT_PID=""
sleep 2
stop_pid "$SAMPLER_PID" 2; SAMPLER_PID=""
stop_pid "$HARK_PID" 10; wait "$HARK_PID" 2>/dev/null; HARK_PID=""

cat >"$OUT/run.json" <<JSON
{"n": $N, "rate": $RATE, "caller_rc": $caller_rc, "agent_rc": $agent_rc, "sipp_start": $sipp_start, "sipp_end": $sipp_end,
 "reference_wav": "$ref_wav", "hark_errors": $(grep -c ERROR "$OUT/hark.log"), "hark_warnings": $(grep -c WARN "$OUT/hark.log")}
JSON
echo "hark log: $(grep -c WARN "$OUT/hark.log") WARN, $(grep -c ERROR "$OUT/hark.log") ERROR lines; first ones:"
grep -E 'WARN|ERROR' "$OUT/hark.log" | head -5 | cut -c1-400
python3 -W ignore "$here/dialtool.py" report "$OUT" "$N" | tee "$OUT/report.txt"
rc=${PIPESTATUS[0]}
[[ "${KEEP:-0}" == 1 ]] || rm -f "$OUT"/recordings/*.wav
echo "run dir: $OUT"
exit "$rc"
