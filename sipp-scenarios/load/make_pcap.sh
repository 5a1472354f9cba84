#!/usr/bin/env bash
# Regenerates the load-run media (commit the outputs; they are small):
#  speech20s_pound.pcap  1.5 s silence (covers Hark's 0.5 s beep, so every call records the whole
#                        speech), 17.5 s of the toolkit speech looped, 1.0 s silence, then RFC 4733
#                        '#' in the same RTP stream (PCMU PT0, telephone-event PT101, 20 ms):
#                        1010 packets over 20.18 s, ~230 kB. Used by uac_speech20s_pound.xml.
#  speech20s.ulaw        the same 20.0 s of audio as raw u-law (160 kB) for SIPp's rtp_stream, and
#  pound.pcap            '#' alone (PT101), played after it. Used by uac_speech20s_pound_rtpstream.xml.
#  one.pcap              '1' alone (PT101) with its own SSRC/seq/timestamp, so Hark cannot take
#                        pound.pcap's '#' for a repeat of it. Used by uac_ivr_rtpstream.xml.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
toolkit="${TOOLKIT:-/work/shared/toolkit}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
src="$toolkit/audio/speech_8k_ulaw.wav"
sox "$src" "$src" "$src" -r 8000 -c 1 -e signed -b 16 "$tmp/loop.wav" trim 0 17.5 pad 1.5 1.0
sox "$tmp/loop.wav" -e mu-law -b 8 "$tmp/speech20s_ulaw.wav"
sox "$tmp/loop.wav" -t raw -e mu-law -b 8 "$here/speech20s.ulaw"
python3 "$toolkit/make_rtp_pcap.py" audio --wav "$tmp/speech20s_ulaw.wav" --codec pcmu \
    --then-digits '#' -o "$here/speech20s_pound.pcap"
python3 "$toolkit/make_rtp_pcap.py" dtmf --digits '#' -o "$here/pound.pcap"
python3 "$toolkit/make_rtp_pcap.py" dtmf --digits 1 --ssrc 0x0D1C1001 --seq 4000 --ts 900000 -o "$here/one.pcap"
soxi -D "$tmp/speech20s_ulaw.wav"
