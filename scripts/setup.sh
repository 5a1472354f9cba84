#!/usr/bin/env bash
# Installs what the Rust toolchain lacks for the test suite: SIPp (Debian package sip-tester, which
# also ships /usr/share/sip-tester/dtmf_2833_*.pcap used by the tests), SoX, espeak-ng (the
# daemon's text to speech for <Say>), flite (a second voice for the transcription benchmark),
# the test virtualenv (python-venv.sh), the offline transcription engine (install-asr.sh), and for
# the browser tests headless Chromium (Debian chromium-headless-shell), Node.js with npm and the
# pinned playwright-core of tests/browser/package-lock.json (browser-deps.sh); libopus-dev for the
# Opus codec; PostgreSQL, Kamailio and s3s-fs for the scale-out tests. Idempotent: installs only
# what is missing.
set -euo pipefail

need=()
if ! command -v sipp >/dev/null 2>&1 || [ ! -f /usr/share/sip-tester/dtmf_2833_pound.pcap ]; then
  need+=(sip-tester)
fi
command -v sox >/dev/null 2>&1 || need+=(sox)
# <Say> renders speech with espeak-ng.
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
# scripts/wer speaks its sentences with a second synthesizer too.
command -v flite >/dev/null 2>&1 || need+=(flite)
# The TwiML application tests run the official Twilio helper library in a virtualenv; lame makes
# one MP3 fixture.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v lame >/dev/null 2>&1 || need+=(lame)
# Browser tests (tests/browser/): the headless shell Playwright drives (no browser download) and
# Node.js for playwright-core. Debian's nodejs (18) is enough: the pinned playwright-core needs
# node >= 18; a newer node already on PATH is kept.
[ -x /usr/lib/chromium/chromium-headless-shell ] || need+=(chromium-headless-shell)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# Opus (WebRTC and SIP callers): audiopus links the system libopus through pkg-config.
dpkg-query -W -f='${Status}' libopus-dev 2>/dev/null | grep -q 'install ok installed' ||
  need+=(libopus-dev)
# Scale-out (issue 15): the store's suite also runs on PostgreSQL (a private server per test
# process, started with initdb as the postgres user), and sipp-scenarios/cluster/ puts Kamailio's
# dispatcher in front of several nodes.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v kamailio >/dev/null 2>&1 || need+=(kamailio)

# The S3 server of the tests (object storage): s3s-fs, pinned (newer ones need a newer rustc).
s3s() {
  if ! command -v s3s-fs >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs" ]; then
    echo "setup.sh: installing s3s-fs 0.14.1 (cargo install)"
    cargo install s3s-fs@0.14.1 --features binary --locked --quiet
  fi
}

venv() {
  s3s
  "$(dirname "${BASH_SOURCE[0]}")/python-venv.sh"
  "$(dirname "${BASH_SOURCE[0]}")/install-asr.sh"
  "$(dirname "${BASH_SOURCE[0]}")/browser-deps.sh"
}

if [ "${#need[@]}" -eq 0 ]; then
  echo "setup.sh: system packages already installed"
  venv
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
echo "setup.sh: installing ${need[*]}"
# Only the binaries: no system-wide PostgreSQL cluster is created or started (tests run their
# own), and Kamailio's service stays stopped (the cluster script runs it in the foreground).
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
  "${sudo[@]}" mkdir -p /etc/postgresql-common
  echo 'create_main_cluster = false' | "${sudo[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${need[@]}"
venv
