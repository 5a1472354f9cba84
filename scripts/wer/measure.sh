#!/usr/bin/env bash
# Word error rate and real-time factor of Hark's offline engine at telephone quality.
#
# Each line of sentences.txt is spoken by espeak-ng (en-us, 150 wpm), sent down the phone path
# (8 kHz mu-law without dither, so runs repeat exactly; 0.5 s of silence each side) and stored as Hark stores recordings (8 kHz 16-bit
# PCM). The files are transcribed the way the daemon does it (crates/transcribe example
# transcribe_wav: speech_spans VAD, then the scripts/asr_worker.py pool), once with the open
# vocabulary and once constrained to a JSGF grammar of the set, and scored with wer.py (word
# Levenshtein, the toolkit's). Needs espeak-ng, sox and .venv with pocketsphinx (scripts/setup.sh).
#
#   scripts/wer/measure.sh            # work files in a temporary directory
#   WER_WORK=/tmp/wer scripts/wer/measure.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${WER_WORK:-$(mktemp -d)}"
mkdir -p "$work"
python="$root/.venv/bin/python"
"$python" -c 'import pocketsphinx' 2>/dev/null || {
  echo "measure.sh: $python cannot import pocketsphinx; run scripts/setup.sh" >&2; exit 1; }

: > "$work/refs.txt"
files=()
i=0
while IFS= read -r line; do
  [ -z "$line" ] && continue
  i=$((i + 1)); id=$(printf 's%02d' "$i")
  espeak-ng -v en-us -s 150 -w "$work/$id.22k.wav" "$line"
  sox -D "$work/$id.22k.wav" -r 8000 -c 1 -e mu-law "$work/$id.ulaw.wav" pad 0.5 0.5
  sox "$work/$id.ulaw.wav" -e signed -b 16 "$work/$id.wav"
  echo "$id $line" >> "$work/refs.txt"
  files+=("$id=$work/$id.wav")
done < "$here/sentences.txt"
echo "measure.sh: $i sentences rendered in $work"

cd "$root"
cargo build --quiet -p transcribe --example transcribe_wav
bin="${CARGO_TARGET_DIR:-$root/target}/debug/examples/transcribe_wav"

run() { # name, extra args
  local name=$1; shift
  "$bin" --python "$python" --script "$root/scripts/asr_worker.py" "$@" "${files[@]}" \
    > "$work/hyp_$name.txt" 2> "$work/rtf_$name.txt"
  echo "== $name"
  python3 "$here/wer.py" "$work/refs.txt" "$work/hyp_$name.txt" | tail -n 1
  grep '^TOTAL' "$work/rtf_$name.txt"
}
run open
run grammar --grammar "$here/sentences.txt"
echo "per-sentence results: $work/hyp_*.txt (python3 $here/wer.py $work/refs.txt $work/hyp_open.txt)"
