#!/usr/bin/env bash
# One long recording through the offline engine: memory and accuracy over MINUTES of speech.
#
# The 24 sentences of scripts/wer/sentences.txt, spoken by flite (kal, slt, rms, awb in turn) at
# telephone quality (8 kHz mu-law, stored as 16-bit PCM like Hark's recordings), 1 s apart and
# 4 s after every sixth, repeated until the recording is MINUTES long. It is transcribed as the
# daemon does it (transcribe_wav: VAD spans, then one worker) and the report gives the worker's
# peak resident memory (VmHWM), RTF, the number of pieces decoded, and the WER against the
# concatenated sentences — which also shows words lost or doubled at the cuts.
#
#   scripts/asr-bench/long_recording.sh [MINUTES=20]
# Env: WORK (work directory; default a temporary one), CHUNK_SECS (30), THREADS (2).
set -euo pipefail
minutes="${1:-20}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${WORK:-$(mktemp -d)}"
mkdir -p "$work"
"$root/scripts/install-asr.sh" >/dev/null

voices=(kal slt rms awb)
mapfile -t sentences < <(grep -v '^[[:space:]]*$' "$root/scripts/wer/sentences.txt")
n=${#sentences[@]}
for ((i = 0; i < n; i++)); do
  v=${voices[$((i % ${#voices[@]}))]}
  flite -voice "$v" -t "${sentences[$i]}" -o "$work/w.wav"
  sox -D "$work/w.wav" -r 8000 -c 1 -e mu-law "$work/u.wav"
  sox "$work/u.wav" -e signed -b 16 "$work/s$i.wav"
done
sox -n -r 8000 -c 1 -e signed -b 16 "$work/gap1.wav" trim 0 1
sox -n -r 8000 -c 1 -e signed -b 16 "$work/gap4.wav" trim 0 4

# The list of parts and the reference text, round after round until long enough.
target=$((minutes * 60))
parts=("$work/gap1.wav") ; ref="" ; total=1
below() { python3 -c "import sys; sys.exit(0 if $total < $target else 1)"; }
while below; do
  for ((i = 0; i < n; i++)); do
    below || break
    parts+=("$work/s$i.wav")
    if (((i + 1) % 6 == 0)); then parts+=("$work/gap4.wav"); else parts+=("$work/gap1.wav"); fi
    ref+="${sentences[$i]} "
    total=$(python3 -c "print($total + $(soxi -D "$work/s$i.wav") + 1 + 3 * ($(((i + 1) % 6 == 0))))")
  done
done
sox "${parts[@]}" "$work/long.wav"
echo "long $ref" > "$work/ref.txt"
echo "long_recording.sh: $(soxi -d "$work/long.wav") of speech and pauses in $work/long.wav"

cd "$root"
cargo build --quiet --release -p transcribe --example transcribe_wav
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/transcribe_wav"
"$bin" --chunk-secs "${CHUNK_SECS:-30}" --threads "${THREADS:-2}" "long=$work/long.wav" \
  > "$work/hyp.txt" 2> "$work/stderr.txt"
grep -E '^(long|TOTAL)' "$work/stderr.txt"
python3 "$root/scripts/wer/wer.py" "$work/ref.txt" "$work/hyp.txt" | tail -n 1
