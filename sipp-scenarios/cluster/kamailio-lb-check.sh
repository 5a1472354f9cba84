#!/usr/bin/env bash
# End-to-end check of kamailio.cfg on loopback: two SIPp stand-ins for Hark nodes behind
# Kamailio, a SIPp caller through it. Spreads calls, kills a node, drains a node (503), brings
# it back. Needs `kamailio` (Debian 5.6) and `sipp` (sip-tester); root not required.
#   ./kamailio-lb-check.sh [workdir]     (default /tmp/hark-lb-check; logs stay there)
# Ports: LB_PORT (25070), NODE_A (25071), NODE_B (25072), UAC_PORT (25090); each node's media
# port is its SIP port + 100. Exit status 0 when every check passed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
D=${1:-/tmp/hark-lb-check}
LB_PORT=${LB_PORT:-25070}
A=${NODE_A:-25071}
B=${NODE_B:-25072}
UAC_PORT=${UAC_PORT:-25090}
mkdir -p "$D" && cd "$D" || exit 2
rm -f node_*.msg node_*.out uac_*.screen uac_*.out kam.log kamailio.pid

KAM_PID=
declare -A NODE_PID
STARTS=0
PASS=0
FAIL=0
cleanup() {
	for p in "${NODE_PID[@]}" $KAM_PID; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { printf '%.2f' "$(echo "$(now) - $1" | bc)"; }
check() { # description, condition...
	local what=$1
	shift
	if "$@"; then PASS=$((PASS + 1)); echo "  ok: $what"; else FAIL=$((FAIL + 1)); echo "  FAILED: $what"; fi
}

node() { # port scenario: (re)start a node
	local port=$1 scen=$2
	STARTS=$((STARTS + 1))
	sipp -sf "$HERE/$scen" -i 127.0.0.1 -p "$port" -mp $((port + 100)) -nostdin \
		-trace_msg -message_file "$D/node_$port.$STARTS.msg" >"$D/node_$port.$STARTS.out" 2>&1 &
	NODE_PID[$port]=$!
}
stop_node() { kill "${NODE_PID[$1]}" && wait "${NODE_PID[$1]}" 2>/dev/null; unset "NODE_PID[$1]"; }
invites() { cat "$D"/node_"$1".*.msg 2>/dev/null | grep -c '^INVITE'; }
logged() { grep -c -- "$1" "$D/kam.log"; }
wait_log() { # pattern already_seen timeout_s -> seconds until the (already_seen+1)th match
	local t0 i
	t0=$(now)
	for ((i = 0; i < $3 * 10; i++)); do
		if [ "$(logged "$1")" -gt "$2" ]; then since "$t0"; return 0; fi
		sleep 0.1
	done
	echo "timeout"
	return 1
}

LAST_OK=0 LAST_KO=0 LAST_A=0 LAST_B=0 LAST_FO=0
calls() { # name count
	local a0 b0 f0 rc
	a0=$(invites "$A") b0=$(invites "$B") f0=$(logged failover)
	sipp -sf "$HERE/uac_lb.xml" "127.0.0.1:$LB_PORT" -i 127.0.0.1 -p "$UAC_PORT" -mp $((UAC_PORT + 100)) \
		-m "$2" -r 10 -nostdin -timeout 60s -trace_screen -screen_file "$D/uac_$1.screen" \
		>"$D/uac_$1.out" 2>&1
	rc=$?
	LAST_OK=$(awk -F'|' '/Successful call/ {gsub(/ /, "", $3); v = $3} END {print v + 0}' "$D/uac_$1.screen")
	LAST_KO=$(awk -F'|' '/Failed call/ {gsub(/ /, "", $3); v = $3} END {print v + 0}' "$D/uac_$1.screen")
	LAST_A=$(($(invites "$A") - a0)) LAST_B=$(($(invites "$B") - b0)) LAST_FO=$(($(logged failover) - f0))
	echo "$1: $2 calls, sipp rc=$rc, successful $LAST_OK, failed $LAST_KO;" \
		"INVITEs received by node $A: $LAST_A, node $B: $LAST_B; failovers: $LAST_FO"
}

printf '1 sip:127.0.0.1:%s\n1 sip:127.0.0.1:%s\n' "$A" "$B" >"$D/dispatcher.list"
node "$A" uas_node.xml
node "$B" uas_node.xml
sleep 0.5

t0=$(now)
kamailio -DD -E -f "$HERE/kamailio.cfg" -A "LISTEN_PORT=$LB_PORT" -A "DS_LIST=\"$D/dispatcher.list\"" \
	-Y "$D" -P "$D/kamailio.pid" -m 32 -M 4 >"$D/kam.log" 2>&1 &
KAM_PID=$!
for ((i = 0; i < 100; i++)); do
	ss -lun | grep -q "127.0.0.1:$LB_PORT " && break
	sleep 0.05
done
echo "kamailio (pid $KAM_PID) listening on 127.0.0.1:$LB_PORT after $(since "$t0") s"
check "kamailio is running" kill -0 "$KAM_PID"
sleep 1.5

echo "== 1. both nodes up"
calls 1-both-up 20
check "20/20 calls, split 10/10" [ "$LAST_OK" = 20 -a "$LAST_A" = 10 -a "$LAST_B" = 10 ]

echo "== 2. node $B killed, calls start at once"
d0=$(logged "node down: sip:127.0.0.1:$B")
stop_node "$B"
calls 2-B-killed 40
check "40/40 calls, none failed" [ "$LAST_OK" = 40 -a "$LAST_KO" = 0 ]
check "node $B marked down" [ "$(logged "node down: sip:127.0.0.1:$B")" -gt "$d0" ]
calls 3-B-down 20
check "20/20 calls, all on node $A, no failover" [ "$LAST_OK" = 20 -a "$LAST_A" = 20 -a "$LAST_FO" = 0 ]

echo "== 3. probing alone, no traffic"
u0=$(logged "node up: sip:127.0.0.1:$B")
node "$B" uas_node.xml
echo "node $B restarted: probed back up after $(wait_log "node up: sip:127.0.0.1:$B" "$u0" 10) s"
d0=$(logged "node down: sip:127.0.0.1:$B (probe)")
stop_node "$B"
echo "node $B killed: probed down after $(wait_log "node down: sip:127.0.0.1:$B (probe)" "$d0" 10) s"
u0=$(logged "node up: sip:127.0.0.1:$B")
node "$B" uas_node.xml
wait_log "node up: sip:127.0.0.1:$B" "$u0" 10 >/dev/null
calls 4-B-back 20
check "20/20 calls, split 10/10 again" [ "$LAST_OK" = 20 -a "$LAST_A" = 10 -a "$LAST_B" = 10 ]

echo "== 4. node $B drains (503 to OPTIONS and INVITE), calls start at once"
stop_node "$B"
node "$B" uas_node_drain.xml
calls 5-B-503 20
check "20/20 calls, none failed (an INVITE answered 503 fails over)" [ "$LAST_OK" = 20 -a "$LAST_KO" = 0 ]
calls 6-B-drained 20
check "20/20 calls, none sent to the drained node" [ "$LAST_OK" = 20 -a "$LAST_B" = 0 -a "$LAST_FO" = 0 ]

echo "== 5. node $B answers 200 again, then drains with no traffic"
u0=$(logged "node up: sip:127.0.0.1:$B")
stop_node "$B"
node "$B" uas_node.xml
echo "node $B back in rotation after $(wait_log "node up: sip:127.0.0.1:$B" "$u0" 10) s"
calls 7-B-restored 20
check "20/20 calls, split 10/10" [ "$LAST_OK" = 20 -a "$LAST_A" = 10 -a "$LAST_B" = 10 ]
d0=$(logged "node down: sip:127.0.0.1:$B (probe)")
stop_node "$B"
node "$B" uas_node_drain.xml
echo "node $B drained: probed out after $(wait_log "node down: sip:127.0.0.1:$B (probe)" "$d0" 10) s"
calls 8-B-drained 20
check "20/20 calls, none sent to the drained node" [ "$LAST_OK" = 20 -a "$LAST_B" = 0 -a "$LAST_FO" = 0 ]

echo "== kamailio log (node state changes and failovers)"
grep -E "node (up|down)|failover" "$D/kam.log" | sed 's/^ *[0-9]*([0-9]*) WARNING: <script>: /  /'
t0=$(now)
kill "$KAM_PID"
wait "$KAM_PID"
echo "kamailio stopped in $(since "$t0") s"
KAM_PID=
echo "checks: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
