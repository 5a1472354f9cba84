#!/usr/bin/env bash
# Fuzzes Hark with cargo-fuzz (libFuzzer): every target in fuzz/ for N seconds each.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     SECONDS per target (default 20); all targets
#                                             unless some are named
#
# Prints execs/s, coverage (cov = edges, ft = features) and corpus size per target; exits 1
# if any target crashed, leaked, hit a per-input timeout or the run had to be killed (the
# failing input is in fuzz/artifacts/<target>/, the log in fuzz/logs/<target>.log).
#
# Corpora: libFuzzer reads and writes fuzz/corpus/<target>/ (generated, not in git); it also
# reads the committed seeds in fuzz/seeds/<target>/ and, for the SIP targets, the RFC 4475 /
# RFC 5118 torture messages in crates/sip-core/tests/torture/ when present (read only:
# libFuzzer adds new inputs to the first directory only).
#
# Environment:
#   FUZZ_BUILD_TIMEOUT  seconds allowed for building the targets (default 2400)
#   FUZZ_RSS_MB         libFuzzer -rss_limit_mb (default 2048)
#   FUZZ_UNIT_TIMEOUT   libFuzzer -timeout: seconds one input may take (default 25)
#   HARK_FUZZ_KNOWN_BUGS  `skip` or a comma list of bug ids (fuzz/README.md) whose inputs the
#                       targets skip instead of failing on; unset in CI.
#   extra libFuzzer flags: FUZZ_ARGS="-dict=... -jobs=2"
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FUZZ="$ROOT/fuzz"
SECS=${1:-20}
shift || true
BUILD_TIMEOUT=${FUZZ_BUILD_TIMEOUT:-2400}
RSS_MB=${FUZZ_RSS_MB:-2048}
UNIT_TIMEOUT=${FUZZ_UNIT_TIMEOUT:-25}
TORTURE="$ROOT/crates/sip-core/tests/torture"

if ! [[ "$SECS" =~ ^[0-9]+$ ]] || [ "$SECS" -lt 1 ]; then
    echo "usage: $0 [SECONDS] [TARGET...]" >&2
    exit 2
fi

# --- toolchain and cargo-fuzz (both bounded in time) ---
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "installing the nightly toolchain (cargo-fuzz needs -Zsanitizer)" >&2
    timeout 900 rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
    timeout 1200 cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
echo "$(cargo +nightly fuzz --version), $(rustup run nightly rustc --version)"

cd "$FUZZ"
if [ $# -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo +nightly fuzz list)
fi

# --- build once, bounded ---
start=$(date +%s)
if ! timeout "$BUILD_TIMEOUT" cargo +nightly fuzz build; then
    echo "fuzz build failed or took over ${BUILD_TIMEOUT}s" >&2
    exit 1
fi
echo "build: $(( $(date +%s) - start ))s"

mkdir -p "$FUZZ/logs"
failed=()
rows=()
for t in "${TARGETS[@]}"; do
    corpus="$FUZZ/corpus/$t"
    mkdir -p "$corpus"
    dirs=("$corpus")
    [ -d "$FUZZ/seeds/$t" ] && dirs+=("$FUZZ/seeds/$t")
    case "$t" in
    sip_parse | sip_framer | sip_endpoint)
        for d in "$TORTURE/rfc4475" "$TORTURE/rfc5118"; do
            [ -d "$d" ] && dirs+=("$d")
        done
        ;;
    esac
    log="$FUZZ/logs/$t.log"
    echo "--- $t: ${SECS}s, corpus ${dirs[*]#"$ROOT/"}"
    # max_total_time bounds the fuzzing; timeout bounds loading the corpus and shutdown too.
    set +e
    # shellcheck disable=SC2086
    timeout -k 30 $((SECS + 300)) cargo +nightly fuzz run "$t" "${dirs[@]}" -- \
        -max_total_time="$SECS" -rss_limit_mb="$RSS_MB" -timeout="$UNIT_TIMEOUT" \
        -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<<"$last")
    status=ok
    if [ "$rc" -ne 0 ]; then
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status="KILLED"; else status="CRASH"; fi
        failed+=("$t")
        echo "$t: $status (exit $rc), log $log" >&2
        grep -E "panicked at|ERROR: (libFuzzer|AddressSanitizer)|^SUMMARY|Failing input|known bug" "$log" | head -8 >&2 || true
        grep -A3 "^thread '.*panicked" "$log" | head -8 >&2 || true
    fi
    rows+=("$(printf '%-13s %-6s %9s %10s %7s %7s %13s %6s' "$t" "$status" "${rate:--}" "${execs:--}" "${cov:--}" "${ft:--}" "${corp:--}" "${rss:--}")")
done

echo
printf '%-13s %-6s %9s %10s %7s %7s %13s %6s\n' target status "exec/s" execs cov ft corpus rss_mb
printf '%s\n' "${rows[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]} (inputs in fuzz/artifacts/, logs in fuzz/logs/)" >&2
    exit 1
fi
