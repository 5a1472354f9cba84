#!/usr/bin/env bash
# The project's test command: system tools (setup.sh), then every crate's unit and end-to-end tests
# in the debug profile. Extra arguments go to `cargo test` (e.g. `-- --nocapture`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
exec cargo test --workspace --locked "$@"
