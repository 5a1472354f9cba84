#!/usr/bin/env bash
# SIPp load run against Hark: N concurrent ~20 s recorded calls of speech ending in '#'.
#
#   sipp-scenarios/load/run.sh N [RATE]
#
# RATE (calls/s) defaults to max(10, N/10), so all N calls are up together for ~10 s.
# SCENARIO=pcap (default: uac_speech20s_pound.xml, one play_pcap_audio thread per call in SIPp)
#   or SCENARIO=rtpstream (uac_speech20s_pound_rtpstream.xml, SIPp's pooled rtp_stream player;
#   needed above ~1,000 calls on 2 cores, where per-call pcap threads starve)
#   or SCENARIO=ivr (uac_ivr_rtpstream.xml against the IVR of ivr_webhook.py: app.voice_url answers
#   <Gather><Say/></Gather>, the caller presses 1, /record answers <Record finishOnKey="#"/>, the
#   caller speaks 20 s and presses #, /done answers <Hangup/>). SIPP_EXTRA: more SIPp args.
# Env: HARK_BIN (default ${CARGO_TARGET_DIR:-<repo>/target}/release/hark, built if missing),
#      OUT (run directory, default a new /tmp/hark-load-N.XXXX), KEEP=1 keeps the WAVs,
#      SIP_PORT (Hark, default 25260; SIPp uses +1), SIPP_MEDIA_PORT (26200), HTTP_PORT (28280),
#      RTP_MIN/RTP_MAX (20000/29999), WEBHOOK_PORT (ivr only, 28290).
# FLOOD=SECONDS: once all calls are up, flood.py floods Hark for SECONDS from three strangers
#   (INVITEs from 127.0.0.2, malformed SIP and RFC 4475 torture messages from 127.0.0.3, junk
#   RTP to every port of the range from 127.0.0.4); Hark trusts only 127.0.0.1 (the caller). The
#   report then also needs every recording exact despite the flood; flood_*.json, metrics.txt.
#   FLOOD_PARSE=1 trusts the malformed sender (127.0.0.3), so its flood reaches the parser.
# Steps: start Hark (loopback, temp config) -> one reference call (its recording's duration is
# the reference) -> SIPp -m N -l N -r RATE while a 1 Hz sampler reads /proc for Hark and SIPp ->
# stop Hark -> loadtool.py report (calls, CPU, RSS, every WAV and sidecar). Exit 0 = all checks pass.
# Only processes started here are signalled, by PID.
set -uo pipefail

N="${1:?usage: run.sh N [RATE]}"
RATE="${2:-$(( N / 10 > 10 ? N / 10 : 10 ))}"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
SIP_PORT="${SIP_PORT:-25260}"
SIPP_PORT=$((SIP_PORT + 1))
SIPP_MEDIA_PORT="${SIPP_MEDIA_PORT:-26200}"
HTTP_PORT="${HTTP_PORT:-28280}"
RTP_MIN="${RTP_MIN:-20000}"
RTP_MAX="${RTP_MAX:-29999}"
WEBHOOK_PORT="${WEBHOOK_PORT:-28290}"
AUTH_TOKEN="load-run-token"
SCENARIO="${SCENARIO:-pcap}"
py() { python3 -W ignore "$here/loadtool.py" "$@"; }
# shellcheck source=lib.sh
source "$here/lib.sh"

HARK_BIN="${HARK_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/hark}"
if [[ ! -x "$HARK_BIN" ]]; then
    echo "building $HARK_BIN" >&2
    (cd "$repo" && cargo build --release -p hark) || exit 2
fi
[[ -x "$HARK_BIN" ]] || { echo "no hark binary at $HARK_BIN" >&2; exit 2; }

# Hark needs one fd per call (RTP socket) plus a few; SIPp one per pcap play thread.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "open-files limit: $(ulimit -n)"

OUT="${OUT:-$(mktemp -d "/tmp/hark-load-$N.XXXX")}"
mkdir -p "$OUT/recordings" "$OUT/reference"
if [[ -n "${FLOOD:-}" ]]; then
    SIP_EXTRA='trusted = ["127.0.0.1/32"]'
    # FLOOD_PARSE=1: the malformed sender is trusted too, so every message of it is parsed and
    # answered (400…) instead of banned: the parser under flood rather than the screen.
    [[ "${FLOOD_PARSE:-0}" == 1 ]] && SIP_EXTRA='trusted = ["127.0.0.1/32", "127.0.0.3/32"]'
fi
hark_base_config "$OUT/hark.toml"
if [[ "$SCENARIO" == ivr ]]; then
    # espeak-ng through a wrapper that logs each start, to count <Say> renders (cache misses).
    espeak="$(command -v espeak-ng)" || { echo "espeak-ng not installed" >&2; exit 2; }
    printf '#!/bin/sh\necho "$$ $*" >>"%s"\nexec "%s" "$@"\n' "$OUT/espeak_starts.log" "$espeak" >"$OUT/espeak-ng"
    chmod +x "$OUT/espeak-ng"
    cat >>"$OUT/hark.toml" <<EOF
[account]
auth_token = "$AUTH_TOKEN"
[app]
voice_url = "http://127.0.0.1:$WEBHOOK_PORT/voice"
[tts]
espeak_path = "$OUT/espeak-ng"
EOF
fi

HARK_PID="" SIPP_PID="" SAMPLER_PID="" WEBHOOK_PID="" FLOOD_PIDS=()
cleanup() {
    local p
    for p in "${FLOOD_PIDS[@]}"; do stop_pid "$p" 2; done
    stop_pid "$SAMPLER_PID" 2; stop_pid "$SIPP_PID" 2; stop_pid "$HARK_PID" 10; stop_pid "$WEBHOOK_PID" 2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ "$SCENARIO" == ivr ]]; then
    python3 -W ignore "$here/ivr_webhook.py" "$WEBHOOK_PORT" "$AUTH_TOKEN" >"$OUT/webhook.log" 2>&1 &
    WEBHOOK_PID=$!
    for ((i = 0; i < 50; i++)); do
        py webhook-stats "http://127.0.0.1:$WEBHOOK_PORT/stats" /dev/null 2>/dev/null && break
        kill -0 "$WEBHOOK_PID" 2>/dev/null || { echo "webhook server exited:"; cat "$OUT/webhook.log"; exit 2; }
        sleep 0.1
    done
    echo "IVR webhook server pid $WEBHOOK_PID on 127.0.0.1:$WEBHOOK_PORT"
fi

start_hark
echo "hark pid $HARK_PID on 127.0.0.1:$SIP_PORT, run dir $OUT"

case "$SCENARIO" in
    pcap) scenario="$here/uac_speech20s_pound.xml" ;;
    rtpstream) scenario="$here/uac_speech20s_pound_rtpstream.xml" ;;
    ivr) scenario="$here/uac_ivr_rtpstream.xml" ;;
    *) echo "SCENARIO must be pcap, rtpstream or ivr" >&2; exit 2 ;;
esac
# shellcheck disable=SC2206
sipp_common=(-sf "$scenario" -s rec -i 127.0.0.1 -p "$SIPP_PORT"
    -mi 127.0.0.1 -mp "$SIPP_MEDIA_PORT" -nostdin -trace_err ${SIPP_EXTRA:-})

# 1. Reference call: its recording is what every load call must match (±100 ms).
(cd "$here" && exec timeout -k 5 60 sipp "${sipp_common[@]}" -m 1 -timeout 50s -timeout_error \
    -error_file "$OUT/reference/sipp_errors.log" 127.0.0.1:"$SIP_PORT" >"$OUT/reference/sipp.out" 2>&1)
ref_rc=$?
ref_wav="$(ls "$OUT"/recordings/*.wav 2>/dev/null | head -1)"
if [[ $ref_rc -ne 0 || -z "$ref_wav" ]]; then
    echo "reference call failed (sipp rc $ref_rc, wav '${ref_wav}')"; tail -20 "$OUT/hark.log"; exit 1
fi
# WAVs and sidecars only: Hark's SQLite store (hark.db, from issue 4 on) stays where Hark has it open.
mv "$OUT"/recordings/*.wav "$OUT/reference/"
mv "$OUT"/recordings/*.json "$OUT/reference/" 2>/dev/null
ref_wav="$OUT/reference/$(basename "$ref_wav")"
ref_dur="$(py wav-duration "$ref_wav")"
py pcap-speech "$here/speech20s_pound.pcap"
echo "reference recording: $ref_dur s ($(basename "$ref_wav"))"
if [[ "$SCENARIO" == ivr ]]; then
    py webhook-stats "http://127.0.0.1:$WEBHOOK_PORT/stats" "$OUT/webhook_reference.json" || exit 1
fi

# 2. The load.
sipp_limit=$(( N / RATE + 60 ))
echo "SIPp: $(basename "$scenario"), $N calls, $RATE calls/s, limit $N concurrent, global timeout ${sipp_limit}s"
sipp_start="$(date +%s.%N)"
(cd "$here" && exec sipp "${sipp_common[@]}" -m "$N" -l "$N" -r "$RATE" \
    -timeout "${sipp_limit}s" -timeout_error -trace_stat -stf "$OUT/sipp_stat.csv" -fd 1 \
    -error_file "$OUT/sipp_errors.log" 127.0.0.1:"$SIP_PORT" >"$OUT/sipp.out" 2>&1) &
SIPP_PID=$!
python3 -W ignore "$here/loadtool.py" sample "$OUT/samples.csv" "$HARK_PID" "$SIPP_PID" $WEBHOOK_PID &
SAMPLER_PID=$!
if [[ -n "${FLOOD:-}" ]]; then
    # Every call is up after N/RATE s; the 20 s calls leave room for FLOOD ≤ ~15 s.
    sleep $(( N / RATE + 2 ))
    for kind in invite junk rtp; do
        python3 -W ignore "$here/flood.py" "$kind" "127.0.0.1:$SIP_PORT" "$FLOOD" "$RTP_MIN" "$RTP_MAX" \
            "$OUT/flood_$kind.json" >>"$OUT/flood.log" 2>&1 &
        FLOOD_PIDS+=($!)
    done
    for p in "${FLOOD_PIDS[@]}"; do wait "$p"; done
    FLOOD_PIDS=()
    cat "$OUT/flood.log"
    curl -s "http://127.0.0.1:$HTTP_PORT/metrics" >"$OUT/metrics_after_flood.txt"
fi
# The subshell execs sipp, so SIPP_PID is SIPp itself. Watchdog: global timeout + 30 s.
deadline=$(( $(date +%s) + sipp_limit + 30 ))
while kill -0 "$SIPP_PID" 2>/dev/null && (( $(date +%s) < deadline )); do sleep 0.5; done
stop_pid "$SIPP_PID" 2
wait "$SIPP_PID"; sipp_rc=$?
SIPP_PID=""
sipp_end="$(date +%s.%N)"
echo "SIPp exit $sipp_rc after $(awk "BEGIN{printf \"%.1f\", $sipp_end - $sipp_start}") s"

# Sidecars are written before Hark's BYE, so they should be final already; allow a few seconds.
for ((i = 0; i < 20; i++)); do
    pending=$(grep -L '"completed"' "$OUT"/recordings/*.json 2>/dev/null | wc -l)
    [[ $pending -eq 0 ]] && break
    sleep 0.5
done
sleep 2
curl -s "http://127.0.0.1:$HTTP_PORT/metrics" >"$OUT/metrics.txt"
if [[ -n "${FLOOD:-}" ]]; then
    echo "hark during the flood: $(grep -E '^hark_sip_(refused_total|bans_total)' "$OUT/metrics.txt" | tr '\n' ' ')"
    echo "hark log: $(wc -l <"$OUT/hark.log") lines, $(wc -c <"$OUT/hark.log") bytes"
fi
stop_pid "$SAMPLER_PID" 2; SAMPLER_PID=""
stop_pid "$HARK_PID" 10; wait "$HARK_PID" 2>/dev/null; HARK_PID=""
if [[ -n "$WEBHOOK_PID" ]]; then
    py webhook-stats "http://127.0.0.1:$WEBHOOK_PORT/stats" "$OUT/webhook_end.json"
    stop_pid "$WEBHOOK_PID" 2; WEBHOOK_PID=""
fi

cat >"$OUT/run.json" <<EOF
{"n": $N, "rate": $RATE, "scenario": "$SCENARIO", "sipp_rc": $sipp_rc, "sipp_start": $sipp_start, "sipp_end": $sipp_end,
 "reference_duration": $ref_dur, "reference_wav": "$ref_wav", "pcap": "$here/speech20s_pound.pcap",
 "hark_errors": $(grep -c ERROR "$OUT/hark.log"), "hark_warnings": $(grep -c WARN "$OUT/hark.log"),
 "espeak_renders": $(grep -v -- '--version' "$OUT/espeak_starts.log" 2>/dev/null | wc -l)}
EOF
echo "hark log: $(grep -c WARN "$OUT/hark.log") WARN, $(grep -c ERROR "$OUT/hark.log") ERROR lines; first ones:"
grep -E 'WARN|ERROR' "$OUT/hark.log" | head -5 | cut -c1-400
py report "$OUT" "$N" | tee "$OUT/report.txt"
rc=${PIPESTATUS[0]}
[[ "${KEEP:-0}" == 1 ]] || rm -f "$OUT"/recordings/*.wav
if [[ "${KEEP:-0}" == 1 ]]; then echo "run dir: $OUT (WAVs kept)"; else echo "run dir: $OUT (WAVs removed; KEEP=1 keeps them)"; fi
exit "$rc"
