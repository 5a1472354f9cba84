#!/usr/bin/env bash
# The project's test command: system tools (setup.sh), then every crate's unit and end-to-end tests
# in the debug profile, then the store's suite again on PostgreSQL (the same tests; a private
# server, see crates/store/src/testing.rs), then a short cluster run behind Kamailio with the debug
# daemon (sipp-scenarios/cluster/run.sh 2 30: PostgreSQL, s3s-fs, two nodes, failover). Extra
# arguments go to `cargo test` (e.g. `-- --nocapture`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
# The console's vendored files are the pinned release's (VENDOR.md).
./scripts/console-vendor.sh --check
cargo test --workspace --locked "$@"
HARK_TEST_STORE=postgres cargo test -p store --locked "$@"
HARK_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/hark" sipp-scenarios/cluster/run.sh 2 30
