#!/usr/bin/env bash
# Cluster run on loopback: NODES Hark nodes behind Kamailio, sharing one PostgreSQL and one S3
# bucket, driven by SIPp; a node is killed mid-call and restarted. Exit 0 only if every check passes.
#
#   sipp-scenarios/cluster/run.sh NODES CALLS
#
# Starts (all on 127.0.0.1, all stopped by PID on exit): a private PostgreSQL (initdb in $OUT,
# trust auth, fsync off), s3s-fs (bucket = a directory), the webhook receiver (webhook.py),
# NODES Hark nodes ($HARK_BIN serve --config $OUT/nodeN.toml), Kamailio (kamailio.cfg, round
# robin over the nodes), SIPp callers (uac_lb_record.xml: 8.18 s of speech, then '#').
#   Phase 1  CALLS calls at RATE calls/s (all up together) through Kamailio.
#   Phase 2  TR_CALLS calls with transcription (dialled user "transcribe"), then B2_CALLS calls;
#            while those are up, `kill -9` of a node that holds both live calls and a claimed
#            transcription job; B3_CALLS new calls at once; wait until the other nodes took
#            over its transcription jobs (cluster.lease_secs + transcription.timeout_secs);
#            restart it with the same config (it repairs and uploads its recordings).
#   Checks   check.py: calls per node, every recording in the bucket and complete, no local
#            copies, every status callback exactly once, every node's REST API lists all
#            recordings, the failover; figures (rate, upload latency p50/p99, calls per node).
# Env: HARK_BIN (default ${CARGO_TARGET_DIR:-<repo>/target}/release/hark), OUT (run dir, default
#   mktemp -d /tmp/hark-cluster.XXXX), RATE (30), TR_CALLS (6), B2_CALLS / B3_CALLS
#   (max(10*NODES, CALLS/10)), LEASE_SECS (5), TR_TIMEOUT (30), PG_BIN (newest
#   /usr/lib/postgresql/*/bin). Ports: LB_PORT (25560), NODE_SIP_BASE (25561: node i gets
#   base+i-1), UAC_PORT (25580..25583, one per SIPp batch), UAC_MEDIA_PORT (26580, +100 per
#   batch), NODE_HTTP_BASE (28581), WH_PORT (28590), S3_PORT (28591), PG_PORT (25590),
#   RTP_BASE (11000: node i gets RTP_BASE+(i-1)*1000 .. +998).
set -uo pipefail

NODES="${1:?usage: run.sh NODES CALLS}"
CALLS="${2:?usage: run.sh NODES CALLS}"
[[ "$NODES" =~ ^[0-9]+$ && "$NODES" -ge 2 && "$NODES" -le 9 ]] || { echo "NODES must be 2..9" >&2; exit 2; }
[[ "$CALLS" =~ ^[0-9]+$ && "$CALLS" -ge 1 ]] || { echo "CALLS must be a positive number" >&2; exit 2; }

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
scen_dir="$repo/sipp-scenarios"

RATE="${RATE:-30}"
TR_CALLS="${TR_CALLS:-6}"
per=$(( CALLS / 10 > 10 * NODES ? CALLS / 10 : 10 * NODES ))
B2_CALLS="${B2_CALLS:-$per}"
B3_CALLS="${B3_CALLS:-$per}"
LEASE_SECS="${LEASE_SECS:-5}"
TR_TIMEOUT="${TR_TIMEOUT:-30}"
LB_PORT="${LB_PORT:-25560}"
NODE_SIP_BASE="${NODE_SIP_BASE:-25561}"
UAC_PORT="${UAC_PORT:-25580}"
UAC_MEDIA_PORT="${UAC_MEDIA_PORT:-26580}"
NODE_HTTP_BASE="${NODE_HTTP_BASE:-28581}"
WH_PORT="${WH_PORT:-28590}"
S3_PORT="${S3_PORT:-28591}"
PG_PORT="${PG_PORT:-25590}"
RTP_BASE="${RTP_BASE:-11000}"
ACCOUNT="AC0123456789abcdef0123456789abcdef"
TOKEN="cluster-run-7f3a9c2e"
S3_KEY="harkcluster"
S3_SECRET="harkcluster-secret-4821"
BUCKET="hark-cluster"
# What each caller sends before '#': pcap/speech_pcmu.pcap (409 packets of 20 ms).
SENT_AUDIO_S=8.18

HARK_BIN="${HARK_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/hark}"
[[ -x "$HARK_BIN" ]] || { echo "no hark binary at $HARK_BIN (cargo build --release -p hark, or set HARK_BIN)" >&2; exit 2; }
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
S3S_FS="${S3S_FS:-$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")}"
for tool in "$PG_BIN/initdb" "$PG_BIN/pg_ctl" "$S3S_FS" "$(command -v kamailio)" "$(command -v sipp)" "$(command -v psql)"; do
    [[ -x "$tool" ]] || { echo "missing: $tool" >&2; exit 2; }
done

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
OUT="${OUT:-$(mktemp -d /tmp/hark-cluster.XXXX)}"
mkdir -p "$OUT" || exit 2
OUT="$(cd "$OUT" && pwd)"
# The postgres user must reach its data dir and socket dir inside.
chmod 755 "$OUT"
T_START=$(date +%s.%N)
echo "run dir: $OUT; hark: $HARK_BIN; $NODES nodes, $CALLS calls at $RATE/s"

# ---------------------------------------------------------------- process bookkeeping
PG_PID="" S3_PID="" WH_PID="" KAM_PID=""
declare -a NODE_PID
declare -a SIPP_PIDS=()
declare -a EXTRA_PIDS=()   # children of a killed node (ASR workers) to reap
as_pg=()
if [[ $(id -u) -eq 0 ]]; then as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups); fi

# stop_pid PID [GRACE_SECONDS]: the load runs' (TERM, then KILL after the grace; only that PID).
# shellcheck source=../load/lib.sh
source "$here/../load/lib.sh"
children_of() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' '; }

stop_pg() {
    [[ -n "$PG_PID" ]] || return 0
    "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$OUT/pgdata" -m fast -w -t 20 stop >>"$OUT/postgres.ctl.log" 2>&1
    stop_pid "$PG_PID" 5
    PG_PID=""
}

cleanup() {
    local p c kids=()
    trap - EXIT INT TERM
    for p in "${SIPP_PIDS[@]}"; do stop_pid "$p" 2; done
    for p in "${NODE_PID[@]}"; do
        [[ -n "$p" ]] || continue
        for c in $(children_of "$p"); do kids+=("$c"); done
        stop_pid "$p" 15
    done
    for p in "${kids[@]}" "${EXTRA_PIDS[@]}"; do stop_pid "$p" 2; done
    stop_pid "$KAM_PID" 5
    stop_pid "$WH_PID" 2
    stop_pid "$S3_PID" 2
    stop_pg
}
trap cleanup EXIT
trap 'exit 130' INT TERM

q() { # SQL -> unaligned rows, fields separated by |
    psql "postgresql://hark@127.0.0.1:$PG_PORT/postgres" -XAtq -v ON_ERROR_STOP=1 -c "$1" 2>>"$OUT/psql.err"
}
listening() { # PROTO(t|u) PORT
    ss -Hln"$1" "sport = :$2" 2>/dev/null | grep -q .
}
wait_port() { # PROTO PORT PID WHAT [TENTHS]
    local i
    for ((i = 0; i < ${5:-100}; i++)); do
        listening "$1" "$2" && return 0
        kill -0 "$3" 2>/dev/null || { echo "$4 exited before listening (see $OUT)"; return 1; }
        sleep 0.1
    done
    echo "$4 not listening on $2"
    return 1
}
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}'; }

# ---------------------------------------------------------------- PostgreSQL
# $OUT/pg (owned by postgres): its unix socket and its log.
mkdir -p "$OUT/pgdata" "$OUT/pg"
[[ -n "${as_pg[*]}" ]] && chown postgres:postgres "$OUT/pgdata" "$OUT/pg"
"${as_pg[@]}" "$PG_BIN/initdb" -D "$OUT/pgdata" -U hark --auth=trust -E UTF8 --locale=C -N \
    >"$OUT/initdb.log" 2>&1 || { echo "initdb failed:"; tail -20 "$OUT/initdb.log"; exit 2; }
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$OUT/pgdata" -l "$OUT/pg/postgres.log" -w -t 30 \
    -o "-h 127.0.0.1 -p $PG_PORT -k $OUT/pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >"$OUT/postgres.ctl.log" 2>&1 || { echo "postgres did not start:"; tail -20 "$OUT/pg/postgres.log"; exit 2; }
PG_PID="$(head -1 "$OUT/pgdata/postmaster.pid")"
q "SELECT 1" >/dev/null || { echo "postgres not reachable on 127.0.0.1:$PG_PORT"; exit 2; }
echo "postgres pid $PG_PID on 127.0.0.1:$PG_PORT"
DB_URL="postgres://hark@127.0.0.1:$PG_PORT/postgres"

# ---------------------------------------------------------------- S3 (s3s-fs)
mkdir -p "$OUT/s3/$BUCKET"
"$S3S_FS" --host 127.0.0.1 --port "$S3_PORT" --access-key "$S3_KEY" --secret-key "$S3_SECRET" \
    "$OUT/s3" >"$OUT/s3s-fs.log" 2>&1 &
S3_PID=$!
wait_port t "$S3_PORT" "$S3_PID" s3s-fs || exit 2
echo "s3s-fs pid $S3_PID on 127.0.0.1:$S3_PORT, bucket $OUT/s3/$BUCKET"

# ---------------------------------------------------------------- webhook receiver
python3 -W ignore "$here/webhook.py" "$WH_PORT" "$OUT/webhooks.jsonl" >"$OUT/webhook.log" 2>&1 &
WH_PID=$!
wait_port t "$WH_PORT" "$WH_PID" webhook.py || exit 2
echo "webhook receiver pid $WH_PID on 127.0.0.1:$WH_PORT"

# ---------------------------------------------------------------- Hark nodes
wh="http://127.0.0.1:$WH_PORT"
rec_attrs="maxLength=\"30\" timeout=\"10\" finishOnKey=\"#\" playBeep=\"false\" trim=\"do-not-trim\" recordingStatusCallback=\"$wh/status\" recordingStatusCallbackEvent=\"completed\" action=\"$wh/action\""
node_sip() { echo $((NODE_SIP_BASE + $1 - 1)); }
node_http() { echo $((NODE_HTTP_BASE + $1 - 1)); }
write_node_config() { # i
    local i=$1 rtp_min=$((RTP_BASE + ($1 - 1) * 1000))
    mkdir -p "$OUT/node$i/recordings"
    cat >"$OUT/node$i.toml" <<CONF
# Cluster run node $i (written by run.sh)
[sip]
listen = "127.0.0.1:$(node_sip "$i")"
# Kamailio (127.0.0.1:$LB_PORT) must be trusted; per-source caps stay 0 (the balancer is one source).
trusted = ["127.0.0.1/32"]
max_calls_per_source = 0
max_new_calls_per_sec_per_source = 0
[rtp]
port_min = $rtp_min
port_max = $((rtp_min + 998))
[http]
listen = "127.0.0.1:$(node_http "$i")"
public_url = ""
[account]
sid = "$ACCOUNT"
auth_token = "$TOKEN"
[app]
voice_url = ""
twiml = '<Response><Record $rec_attrs/></Response>'
[storage]
dir = "$OUT/node$i/recordings"
database_url = "$DB_URL"
backend = "s3"
[storage.s3]
endpoint = "http://127.0.0.1:$S3_PORT"
bucket = "$BUCKET"
region = "us-east-1"
access_key_id = "$S3_KEY"
secret_access_key = "$S3_SECRET"
path_style = true
[webhook]
allow_private = ["127.0.0.1/32"]
[transcription]
# Only the calls dialled to "transcribe" (the [[route]] below) are transcribed.
engine = "offline"
workers = 1
threads = 1
beam_size = 1
timeout_secs = $TR_TIMEOUT
[cluster]
node_id = "node$i"
api_url = ""
lease_secs = $LEASE_SECS
drain_timeout_secs = 60
[log]
level = "info"

[[route]]
user = "transcribe"
twiml = '<Response><Record $rec_attrs transcribe="true" transcribeCallback="$wh/transcribe"/></Response>'
CONF
}
start_node() { # i
    local i=$1
    # Hark takes every HARK_* variable for a config override and rejects unknown ones.
    env -u HARK_BIN "$HARK_BIN" serve --config "$OUT/node$i.toml" >>"$OUT/node$i.log" 2>&1 &
    NODE_PID[i]=$!
    wait_port u "$(node_sip "$i")" "${NODE_PID[i]}" "node$i" 300 || { tail -20 "$OUT/node$i.log"; return 1; }
    wait_port t "$(node_http "$i")" "${NODE_PID[i]}" "node$i http" 100 || return 1
}
for ((i = 1; i <= NODES; i++)); do
    write_node_config "$i"
    start_node "$i" || exit 2
    echo "node$i pid ${NODE_PID[i]}: sip 127.0.0.1:$(node_sip "$i"), http 127.0.0.1:$(node_http "$i")"
done

# ---------------------------------------------------------------- Kamailio
: >"$OUT/dispatcher.list"
for ((i = 1; i <= NODES; i++)); do echo "1 sip:127.0.0.1:$(node_sip "$i")" >>"$OUT/dispatcher.list"; done
kamailio -DD -E -f "$here/kamailio.cfg" -A "LISTEN_PORT=$LB_PORT" -A "DS_LIST=\"$OUT/dispatcher.list\"" \
    -Y "$OUT" -P "$OUT/kamailio.pid" -m 32 -M 4 >"$OUT/kamailio.log" 2>&1 &
KAM_PID=$!
wait_port u "$LB_PORT" "$KAM_PID" kamailio || { tail -20 "$OUT/kamailio.log"; exit 2; }
sleep 2   # a round of OPTIONS probes
echo "kamailio pid $KAM_PID on 127.0.0.1:$LB_PORT"

# ---------------------------------------------------------------- SIPp batches
# sipp_batch NAME SERVICE COUNT RATE SLOT: runs in the background, sets LAST_SIPP_PID.
sipp_batch() {
    local name=$1 service=$2 count=$3 rate=$4 slot=$5 limit
    limit=$(( count / rate + 75 ))
    (cd "$scen_dir" && exec timeout -k 5 $((limit + 20)) sipp -sf "$here/uac_lb_record.xml" -s "$service" \
        -i 127.0.0.1 -p $((UAC_PORT + slot)) -mi 127.0.0.1 -mp $((UAC_MEDIA_PORT + 100 * slot)) \
        -m "$count" -l "$count" -r "$rate" -nostdin -timeout "${limit}s" -timeout_error \
        -trace_err -error_file "$OUT/sipp_$name.errors" -trace_screen -screen_file "$OUT/sipp_$name.screen" \
        "127.0.0.1:$LB_PORT" >"$OUT/sipp_$name.out" 2>&1) &
    LAST_SIPP_PID=$!
    SIPP_PIDS+=("$LAST_SIPP_PID")
}
declare -A B_OK B_FAIL B_RC B_START B_END
sipp_wait() { # NAME PID
    local name=$1 pid=$2 rc
    wait "$pid"; rc=$?
    B_END[$name]=$(date +%s.%N)
    B_RC[$name]=$rc
    B_OK[$name]=$(awk -F'|' '/Successful call/ {gsub(/ /, "", $3); v = $3} END {print v + 0}' "$OUT/sipp_$name.screen" 2>/dev/null)
    B_FAIL[$name]=$(awk -F'|' '/Failed call/ {gsub(/ /, "", $3); v = $3} END {print v + 0}' "$OUT/sipp_$name.screen" 2>/dev/null)
    echo "batch $name: sipp rc $rc, successful ${B_OK[$name]}, failed ${B_FAIL[$name]}, $(awk -v a="${B_START[$name]}" -v b="${B_END[$name]}" 'BEGIN{printf "%.1f", b - a}') s"
}

# Phase 1
echo "== phase 1: $CALLS calls at $RATE/s through kamailio to $NODES nodes"
B_START[b1]=$(date +%s.%N)
sipp_batch b1 b1 "$CALLS" "$RATE" 0
sipp_wait b1 "$LAST_SIPP_PID"

# ---------------------------------------------------------------- Phase 2: failover
echo "== phase 2: $TR_CALLS transcribed calls, then $B2_CALLS calls; kill -9 a node while they are up"
B_START[tr]=$(date +%s.%N)
sipp_batch tr transcribe "$TR_CALLS" 10 1
TR_PID=$LAST_SIPP_PID
sleep 5   # the transcribed calls' recordings end (and their jobs start) ~9 s after they began
B_START[b2]=$(date +%s.%N)
sipp_batch b2 b2 "$B2_CALLS" "$RATE" 2
B2_PID=$LAST_SIPP_PID
# The victim: a node holding a claimed transcription job and live recordings. Preference to the
# last node; after ~8 s (the first batch-2 calls end) any node with live recordings.
VICTIM="" victim_tr=0
for ((k = 0; k < 80; k++)); do
    VICTIM=$(q "SELECT t.lease_owner FROM transcriptions t WHERE t.status = 'in-progress'
                AND t.lease_owner IN (SELECT node_id FROM recordings WHERE status = 'in-progress')
                ORDER BY (t.lease_owner = 'node$NODES') DESC, t.lease_owner LIMIT 1")
    [[ -n "$VICTIM" ]] && { victim_tr=1; break; }
    sleep 0.1
done
if [[ -z "$VICTIM" ]]; then
    echo "no node held a transcription job while batch 2 was up: killing one anyway (transcription takeover not exercised)"
    VICTIM=$(q "SELECT node_id FROM recordings WHERE status = 'in-progress' GROUP BY node_id ORDER BY count(*) DESC, node_id LIMIT 1")
    [[ -n "$VICTIM" ]] || VICTIM="node$NODES"
fi
V=${VICTIM#node}
V_PID=${NODE_PID[V]}
V_KIDS=$(children_of "$V_PID")
kill -KILL "$V_PID"
T_KILL=$(date +%s.%N)
{ wait "$V_PID"; } 2>/dev/null
NODE_PID[V]=""
for c in $V_KIDS; do EXTRA_PIDS+=("$c"); done
V_INFLIGHT=$(q "SELECT sid FROM recordings WHERE node_id = '$VICTIM' AND status = 'in-progress' ORDER BY sid" | paste -sd, -)
V_TR=$(q "SELECT sid FROM transcriptions WHERE status = 'in-progress' AND lease_owner = '$VICTIM' ORDER BY sid" | paste -sd, -)
V_OUTBOX=$(q "SELECT count(*) FROM outbox WHERE state = 'pending' AND lease_owner = '$VICTIM'")
echo "killed $VICTIM (pid $V_PID) with kill -9 at +$(elapsed "$T_START") s: in-progress recordings $(echo "$V_INFLIGHT" | tr ',' '\n' | grep -c .), claimed transcription jobs $(echo "$V_TR" | tr ',' '\n' | grep -c .), claimed callbacks $V_OUTBOX"

echo "== batch 3: $B3_CALLS new calls right after the kill"
B_START[b3]=$(date +%s.%N)
sipp_batch b3 b3 "$B3_CALLS" "$RATE" 3
B3_PID=$LAST_SIPP_PID
sipp_wait tr "$TR_PID"
sipp_wait b2 "$B2_PID"
sipp_wait b3 "$B3_PID"
SIPP_PIDS=()
# The dead node's ASR worker (if any) ends on its own once its stdin is closed.
for c in "${EXTRA_PIDS[@]}"; do for ((k = 0; k < 50; k++)); do kill -0 "$c" 2>/dev/null || break; sleep 0.2; done; stop_pid "$c" 2; done

# Transcription takeover: the jobs the dead node held are requeued by the others once their
# lease (lease_secs + timeout_secs) ran out (checked on each node's 5 s heartbeat), then run.
TR_WAIT=$(( LEASE_SECS + TR_TIMEOUT + 10 + 120 ))
if [[ -n "$V_TR" ]]; then
    inlist="'${V_TR//,/\',\'}'"
    echo "waiting (at most ${TR_WAIT} s after the kill) for the other nodes to finish the dead node's transcription jobs"
    while :; do
        left=$(q "SELECT count(*) FROM transcriptions WHERE sid IN ($inlist) AND status IN ('queued', 'in-progress')")
        [[ "$left" == 0 ]] && break
        if (( $(date +%s) > ${T_KILL%.*} + TR_WAIT )); then echo "transcription jobs still unfinished: $left"; break; fi
        sleep 1
    done
    echo "dead node's transcription jobs finished $(elapsed "$T_KILL") s after the kill: $(q "SELECT string_agg(sid || ' ' || status || ' by ' || coalesce(lease_owner, '?'), ', ') FROM transcriptions WHERE sid IN ($inlist)")"
fi

echo "== restarting $VICTIM with the same config"
T_RESTART=$(date +%s.%N)
start_node "$V" || exit 2
echo "$VICTIM back (pid ${NODE_PID[V]}) after $(elapsed "$T_RESTART") s"
# Settle: no recording in progress, no upload or callback pending, no transcription unfinished.
for ((k = 0; k < 180; k++)); do
    busy=$(q "SELECT (SELECT count(*) FROM recordings WHERE status = 'in-progress')
                   + (SELECT count(*) FROM uploads WHERE state = 'pending')
                   + (SELECT count(*) FROM outbox WHERE state = 'pending')
                   + (SELECT count(*) FROM transcriptions WHERE status IN ('queued', 'in-progress'))")
    [[ "$busy" == 0 ]] && break
    sleep 1
done
echo "settled $(elapsed "$T_RESTART") s after the restart (left busy: ${busy:-?})"
sleep 1

# ---------------------------------------------------------------- checks and figures
node_json=""
for ((i = 1; i <= NODES; i++)); do
    node_json+="${node_json:+,}{\"id\": \"node$i\", \"http\": $(node_http "$i"), \"dir\": \"$OUT/node$i/recordings\", \"log\": \"$OUT/node$i.log\"}"
done
batch_json=""
for b in b1 tr b2 b3; do
    batch_json+="${batch_json:+,}\"$b\": {\"ok\": ${B_OK[$b]:-0}, \"failed\": ${B_FAIL[$b]:-0}, \"rc\": ${B_RC[$b]:-99}, \"start\": ${B_START[$b]:-0}, \"end\": ${B_END[$b]:-0}}"
done
cat >"$OUT/run.json" <<JSON
{"nodes": [$node_json], "calls": $CALLS, "rate": $RATE, "tr_calls": $TR_CALLS, "b2_calls": $B2_CALLS, "b3_calls": $B3_CALLS,
 "pg_url": "postgresql://hark@127.0.0.1:$PG_PORT/postgres", "bucket_dir": "$OUT/s3/$BUCKET",
 "webhooks": "$OUT/webhooks.jsonl", "account": "$ACCOUNT", "token": "$TOKEN", "sent_audio_s": $SENT_AUDIO_S,
 "batches": {$batch_json},
 "victim": "$VICTIM", "victim_had_tr": $victim_tr, "t_kill": $T_KILL, "t_restart": $T_RESTART,
 "victim_inflight": "$V_INFLIGHT", "victim_tr": "$V_TR", "victim_outbox": ${V_OUTBOX:-0},
 "kamailio_log": "$OUT/kamailio.log", "lease_secs": $LEASE_SECS, "tr_timeout": $TR_TIMEOUT}
JSON
python3 -W ignore "$here/check.py" "$OUT/run.json" | tee "$OUT/summary.txt"
rc=${PIPESTATUS[0]}
echo "run took $(elapsed "$T_START") s; run dir $OUT"
exit "$rc"
