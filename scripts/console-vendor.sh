#!/usr/bin/env bash
# Re-fetches the web console's vendored library files (crates/http-api/console/vendor/) from the
# npm registry: `npm pack wavesurfer.js@VERSION` into a temporary directory (no node_modules, no
# package.json left anywhere in the repo), checks the tarball against the pinned integrity,
# copies the few files the console loads, and rewrites vendor/VENDOR.md with their SHA-256.
# Running it again gives byte-identical files.
#
#   scripts/console-vendor.sh           fetch and copy (needs npm and the network)
#   scripts/console-vendor.sh --check   verify the committed files against VENDOR.md (offline;
#                                       exit 1 on any mismatch or missing file)
#
# To move to another release: change VERSION and INTEGRITY (`npm view wavesurfer.js@X dist.integrity`),
# run the script, try the console's call page, commit vendor/ together with this script.
set -euo pipefail

PACKAGE=wavesurfer.js
VERSION=7.12.12
INTEGRITY=sha512-fyKNuREQTliCl4b9w7pUzpFXQIkX5tcdYu1o6vBdH+NlUXvTxshvfbG2hj8OxDevzQNZlDTHzZGyAT3FhuutWw==
# "path in the package:path in vendor/" — only .js/.css/.md names: the server embeds those.
FILES=(
  "dist/wavesurfer.esm.js:wavesurfer.esm.js"
  "dist/plugins/timeline.esm.js:plugins/timeline.esm.js"
  "LICENSE:wavesurfer-LICENSE.md"
)
FETCH_TIMEOUT=300

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor="$root/crates/http-api/console/vendor"
manifest="$vendor/VENDOR.md"

die() {
  echo "console-vendor.sh: $*" >&2
  exit 1
}

sha256() {
  sha256sum "$1" | cut -d' ' -f1
}

check() {
  [ -f "$manifest" ] || die "$manifest is missing"
  grep -qF -- "- version: $VERSION" "$manifest" \
    || die "VENDOR.md does not pin version $VERSION (the script's VERSION); rerun without --check"
  local failed=0 spec dest want have
  for spec in "${FILES[@]}"; do
    dest="${spec#*:}"
    want="$(awk -F'|' -v f="\`$dest\`" '
      { gsub(/^ +| +$/, "", $2); gsub(/^ +| +$/, "", $4) }
      $2 == f && $4 ~ /^`[0-9a-f]+`$/ && length($4) == 66 { print substr($4, 2, 64); exit }' "$manifest")"
    if [ -z "$want" ]; then
      echo "console-vendor.sh: vendor/$dest is not listed in VENDOR.md" >&2
      failed=1
      continue
    fi
    if [ ! -f "$vendor/$dest" ]; then
      echo "console-vendor.sh: vendor/$dest is missing" >&2
      failed=1
      continue
    fi
    have="$(sha256 "$vendor/$dest")"
    if [ "$have" != "$want" ]; then
      echo "console-vendor.sh: vendor/$dest: sha256 $have, VENDOR.md says $want" >&2
      failed=1
    else
      echo "ok  vendor/$dest  $have"
    fi
  done
  [ "$failed" -eq 0 ] || exit 1
  echo "console-vendor.sh: all vendored files match VENDOR.md ($PACKAGE $VERSION)"
}

fetch() {
  command -v npm >/dev/null 2>&1 || die "npm is required (Debian: apt-get install nodejs npm)"
  command -v node >/dev/null 2>&1 || die "node is required"
  local tmp
  tmp="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand now: the trap must remove this directory
  trap "rm -rf '$tmp'" EXIT

  echo "console-vendor.sh: npm pack $PACKAGE@$VERSION"
  (cd "$tmp" && timeout "$FETCH_TIMEOUT" npm pack "$PACKAGE@$VERSION" --json --no-fund --no-audit \
    --cache "$tmp/npm-cache" >"$tmp/pack.json") || die "npm pack $PACKAGE@$VERSION failed"
  local tarball got
  tarball="$tmp/$PACKAGE-$VERSION.tgz"
  [ -f "$tarball" ] || die "npm pack did not produce $tarball"
  got="$(node -e '
    const data = require("fs").readFileSync(process.argv[1]);
    console.log("sha512-" + require("crypto").createHash("sha512").update(data).digest("base64"));
  ' "$tarball")"
  [ "$got" = "$INTEGRITY" ] || die "tarball integrity $got, expected $INTEGRITY"

  mkdir "$tmp/x"
  tar -xzf "$tarball" -C "$tmp/x"
  local spec src dest
  for spec in "${FILES[@]}"; do
    src="${spec%%:*}"
    dest="${spec#*:}"
    [ -f "$tmp/x/package/$src" ] || die "package/$src is not in the tarball"
  done

  mkdir -p "$vendor"
  local rows=""
  for spec in "${FILES[@]}"; do
    src="${spec%%:*}"
    dest="${spec#*:}"
    mkdir -p "$(dirname "$vendor/$dest")"
    cp "$tmp/x/package/$src" "$vendor/$dest.tmp"
    chmod 644 "$vendor/$dest.tmp"
    mv "$vendor/$dest.tmp" "$vendor/$dest"
    rows+="| \`$dest\` | \`package/$src\` | \`$(sha256 "$vendor/$dest")\` |"$'\n'
    echo "copied package/$src -> vendor/$dest"
  done

  cat >"$manifest.tmp" <<EOF
# Vendored files of the web console

Written by \`scripts/console-vendor.sh\`, which fetches them again (\`scripts/console-vendor.sh\`)
or verifies the files here against this list (\`scripts/console-vendor.sh --check\`). Do not edit
these files by hand: change the version in the script and run it.

- package: $PACKAGE
- version: $VERSION
- license: BSD-3-Clause (the package's \`LICENSE\`, here \`wavesurfer-LICENSE.md\`)
- upstream: https://github.com/katspaugh/wavesurfer.js
- obtained with: \`npm pack $PACKAGE@$VERSION\` from the npm registry, into a temporary directory
  (no node_modules), tarball \`$PACKAGE-$VERSION.tgz\` with integrity
  \`$INTEGRITY\`; the files below are copied unchanged from it.

| file (in vendor/) | from the package | sha256 |
|---|---|---|
${rows}
The console imports \`wavesurfer.esm.js\` and \`plugins/timeline.esm.js\` as ES modules
(\`call.js\`); both are self-contained (no imports of their own).
EOF
  mv "$manifest.tmp" "$manifest"
  echo "console-vendor.sh: wrote vendor/VENDOR.md"
  check
}

case "${1:-}" in
  --check) check ;;
  "") fetch ;;
  *) die "usage: $0 [--check]" ;;
esac
