#!/usr/bin/env bash
# Creates <repo>/.venv with the official Twilio Python helper library (twilio 9.x), used by the
# e2e tests in crates/hark/tests/ (twilio_app/app.py validates X-Twilio-Signature with
# twilio.request_validator.RequestValidator and builds TwiML with VoiceResponse), and the
# SIPVicious scanners (sipvicious 0.3.8: svmap, svwar) that tests/sip_scanner.rs points at Hark.
# Idempotent: does nothing when .venv already has both.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import twilio' >/dev/null 2>&1; then
  if [ ! -x "$venv/bin/sipvicious_svmap" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'sipvicious==0.3.8'
  fi
  echo "python-venv.sh: $venv already has twilio $("$venv/bin/python" -c 'import twilio; print(twilio.__version__)') and sipvicious"
  exit 0
fi

if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "python-venv.sh: python3 with the venv module is required (Debian: apt-get install python3-venv)" >&2
  exit 1
fi

echo "python-venv.sh: creating $venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'twilio==9.*' 'sipvicious==0.3.8'
"$venv/bin/python" -c 'import twilio; print("python-venv.sh: twilio", twilio.__version__)'
