#!/usr/bin/env bash
# Word error rate and real-time factor of Hark's offline engine at telephone quality, for two
# speech synthesizers and both recognisers.
#
# Two sets: sentences.txt (24 short call-centre phrases, issue 5's set) and messages.txt (12
# voicemail messages of 25-30 words, as callers leave them). Each line is spoken by each voice — espeak-ng (en-us and en-gb, 150 wpm) and
# flite (kal, slt, rms, awb) — sent down the phone path (8 kHz mu-law without dither, so runs
# repeat exactly; 0.5 s of silence each side) and stored as Hark stores recordings (8 kHz 16-bit
# PCM). The files are transcribed the way the daemon does it (crates/transcribe example
# transcribe_wav: speech_spans VAD, then the worker pool, one worker) with:
#   whisper       the default engine: faster-whisper, tiny.en int8, beam 5, threads 2
#   pocketsphinx  the engine before issue 10, open vocabulary (for comparison)
#   grammar       pocketsphinx constrained to a JSGF grammar of the set (transcription.phrases_file)
# and scored with wer.py (word Levenshtein after lowercasing, stripping punctuation and writing
# numbers one way, as Whisper's evaluations do; `wer.py --literal` skips the number step).
# Needs espeak-ng, flite, sox (scripts/setup.sh) and the engine (scripts/install-asr.sh).
#
#   scripts/wer/measure.sh                      # work files in a temporary directory
#   WER_WORK=/tmp/wer ENGINES="whisper" scripts/wer/measure.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${WER_WORK:-$(mktemp -d)}"
engines="${ENGINES:-whisper pocketsphinx grammar}"
mkdir -p "$work"
"$root/scripts/install-asr.sh" >/dev/null

voices=(espeak:en-us espeak:en-gb flite:kal flite:slt flite:rms flite:awb)
declare -A files
sets="${SETS:-sentences messages}"
groups=()
for set in $sets; do for synth in espeak flite; do
  groups+=("${set}_$synth"); : > "$work/refs_${set}_$synth.txt"
done; done
for set in $sets; do for v in "${voices[@]}"; do
  synth=${v%%:*}; voice=${v#*:}; group="${set}_$synth"
  i=0
  while IFS= read -r line; do
    [ -z "$line" ] && continue
    i=$((i + 1)); id=$(printf '%s-%s-%s-%02d' "$set" "$synth" "$voice" "$i")
    if [ "$synth" = espeak ]; then
      espeak-ng -v "$voice" -s 150 -w "$work/$id.wide.wav" "$line"
    else
      flite -voice "$voice" -t "$line" -o "$work/$id.wide.wav"
    fi
    sox -D "$work/$id.wide.wav" -r 8000 -c 1 -e mu-law "$work/$id.ulaw.wav" pad 0.5 0.5
    sox "$work/$id.ulaw.wav" -e signed -b 16 "$work/$id.wav"
    rm -f "$work/$id.wide.wav" "$work/$id.ulaw.wav"
    echo "$id $line" >> "$work/refs_$group.txt"
    files[$group]+="$id=$work/$id.wav "
  done < "$here/$set.txt"
done; done
echo "measure.sh: ($sets) x ${#voices[@]} voices rendered in $work"

cd "$root"
cargo build --quiet --release -p transcribe --example transcribe_wav
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/transcribe_wav"

printf '\n| set / voices | engine | WER | RTF |\n|---|---|---|---|\n' > "$work/table.md"
for group in "${groups[@]}"; do
  for engine in $engines; do
    case $engine in
      whisper) args=() ;;
      pocketsphinx) args=(--pocketsphinx) ;;
      grammar) args=(--grammar "$here/${group%_*}.txt") ;;
    esac
    # shellcheck disable=SC2086
    "$bin" "${args[@]}" ${files[$group]} > "$work/hyp_${group}_$engine.txt" \
      2> "$work/rtf_${group}_$engine.txt"
    wer=$(python3 "$here/wer.py" "$work/refs_$group.txt" "$work/hyp_${group}_$engine.txt" | tail -n 1)
    rtf=$(grep '^TOTAL' "$work/rtf_${group}_$engine.txt" | sed 's/.*RTF=//')
    echo "== $group / $engine: $wer, RTF $rtf"
    echo "| $group | $engine | ${wer#CORPUS WER = } | $rtf |" >> "$work/table.md"
  done
done
cat "$work/table.md"
echo "per-sentence results: $work/hyp_*.txt (python3 $here/wer.py $work/refs_sentences_flite.txt $work/hyp_sentences_flite_whisper.txt)"
