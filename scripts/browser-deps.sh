#!/usr/bin/env bash
# Installs the browser tests' node dependencies (tests/browser/: playwright-core, pinned by
# package-lock.json) with `npm ci`. Playwright downloads no browser: the tests point it at Debian's
# /usr/lib/chromium/chromium-headless-shell (setup.sh installs it).
# Idempotent: does nothing when node_modules already holds the locked version.
set -euo pipefail

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/browser" && pwd)"

if ! command -v npm >/dev/null 2>&1; then
  echo "browser-deps.sh: npm is required (Debian: apt-get install nodejs npm; scripts/setup.sh does)" >&2
  exit 1
fi

want="$(node -e 'console.log(require(process.argv[1]).packages["node_modules/playwright-core"].version)' \
  "$dir/package-lock.json")"
have="$(node -e 'try { console.log(require(process.argv[1]).version) } catch { console.log("") }' \
  "$dir/node_modules/playwright-core/package.json")"
if [ "$want" = "$have" ]; then
  echo "browser-deps.sh: playwright-core $have already in $dir/node_modules"
  exit 0
fi

echo "browser-deps.sh: npm ci in $dir (playwright-core $want)"
# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: belt and braces; playwright-core has no install script.
(cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
