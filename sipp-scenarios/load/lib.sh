# Shared by load/run.sh and dial-load/run.sh (sourced, not run): the run's Hark config,
# starting Hark, and stopping what the run started.

# stop_pid PID [GRACE_SECONDS]: TERM, then KILL after the grace (default 5 s). Only the PID given.
stop_pid() {
    local pid="$1" grace="${2:-5}" i
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < grace * 10; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
}

# hark_base_config FILE: Hark on loopback only (SIP $SIP_PORT, HTTP $HTTP_PORT, RTP
# $RTP_MIN..$RTP_MAX), recordings in $OUT/recordings, log level warn; $SIP_EXTRA (lines) goes into
# its [sip] table. Callers append [app] etc.
hark_base_config() {
    cat >"$1" <<CONF
[sip]
listen = "127.0.0.1:$SIP_PORT"
${SIP_EXTRA:-}
[rtp]
port_min = $RTP_MIN
port_max = $RTP_MAX
[http]
listen = "127.0.0.1:$HTTP_PORT"
public_url = "http://127.0.0.1:$HTTP_PORT"
[storage]
dir = "$OUT/recordings"
[log]
level = "warn"
CONF
}

# start_hark: runs $HARK_BIN with $OUT/hark.toml (log $OUT/hark.log), sets HARK_PID and waits
# (at most 10 s) until it listens on $SIP_PORT; exits 2 if it does not.
start_hark() {
    local i
    # Hark reads every HARK_* variable as a config override and rejects unknown ones, HARK_BIN too.
    env -u HARK_BIN "$HARK_BIN" serve --config "$OUT/hark.toml" >"$OUT/hark.log" 2>&1 &
    HARK_PID=$!
    for ((i = 0; i < 100; i++)); do
        ss -Hlun "sport = :$SIP_PORT" 2>/dev/null | grep -q . && return 0
        kill -0 "$HARK_PID" 2>/dev/null || { echo "hark exited:"; cat "$OUT/hark.log"; exit 2; }
        sleep 0.1
    done
    echo "hark not listening on $SIP_PORT"
    exit 2
}
