#!/usr/bin/env python3
"""Hark's offline speech-recognition worker (crates/transcribe, OfflineEngine).

A long-lived process: loads the PyPI pocketsphinx 5.x en-us model once, then answers one JSON
request per stdin line with one JSON response per stdout line.

  startup  -> {"ready": true, "engine": "pocketsphinx 5.1.1", "model": "<path>"}
              {"ready": false, "error": "..."} and exit 1
  request  <- {"id": 7, "wav": "/path.wav", "language": "en-US",
               "segments": [[0.9, 3.2], ...],          # VAD speech spans (s), may be empty
               "grammar": ["expected sentence", ...],  # optional: JSGF-constrained decoding
               "model": {"hmm": dir, "lm": file, "dict": file}}  # optional, else bundled en-us
  response -> {"id": 7, "ok": true, "segments": [{"start": s, "end": s, "text": "..."}],
               "text": "...", "audio_secs": s, "decode_secs": s, "rtf": x}
              {"id": 7, "ok": false, "error": "..."}

Audio: RIFF WAV, PCM 16-bit, mu-law or A-law, any rate, mono or stereo; upsampled to the 16 kHz
the acoustic model was trained on (decoding 8 kHz directly is far worse). Without segments the
worker finds speech by frame energy. Open vocabulary decodes each segment as its own utterance,
so every segment keeps its VAD timing; with a grammar the whole file is one utterance
(the recording says one of the sentences, perhaps with pauses) and word timings put each word
back into its segment.

stdout carries the protocol only: fd 1 is pointed at stderr at startup so nothing a library
prints can corrupt it. Logs go to stderr.
"""
import array
import hashlib
import json
import os
import random
import re
import struct
import sys
import time
import warnings

with warnings.catch_warnings():
    # stdlib up to 3.12; 3.13+ needs the audioop-lts package, which installs the same module.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

PROTO = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

RATE = 16000
FRAME_RATE = 100  # pocketsphinx default -frate
MAX_GRAMMARS = 32
# Comfort noise, uniform +-32 LSB (about -65 dBFS), mixed into every file. Digital silence
# (zeros from padding, packet-loss fill, mu-law's quietest code) breaks pocketsphinx's features
# and cepstral normalisation; on the WER set (scripts/wer) without dither it took the grammar
# search from 0 % to 48 % WER and the open vocabulary from 72 % to 84 %. The noise also fills
# the empty 4-8 kHz band of upsampled telephone audio. Fixed seed: results repeat exactly.
NOISE_AMPLITUDE = 32
_rng = random.Random(1)
NOISE = array.array("h", (_rng.randint(-NOISE_AMPLITUDE, NOISE_AMPLITUDE)
                          for _ in range(RATE * 5))).tobytes()


def log(msg):
    print(f"asr_worker[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


def send(obj):
    PROTO.write(json.dumps(obj, separators=(",", ":")) + "\n")
    PROTO.flush()


class BadRequest(Exception):
    pass


def read_wav(path):
    """Returns (pcm16 mono bytes at 16 kHz, seconds of audio)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise BadRequest(f"wav: cannot read {path}: {e.strerror}")
    if len(data) < 12 or data[0:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise BadRequest(f"wav: {path} is not a RIFF/WAVE file")
    pos, fmt, pcm = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8:pos + 8 + size]  # a crash-truncated data chunk just ends early
        if cid == b"fmt " and len(body) >= 16:
            fmt = struct.unpack_from("<HHIIHH", body, 0)
            if fmt[0] == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: real tag in GUID
                fmt = (struct.unpack_from("<H", body, 24)[0],) + fmt[1:]
        elif cid == b"data":
            pcm = body
            break
        pos += 8 + size + (size & 1)
    if fmt is None or pcm is None:
        raise BadRequest(f"wav: {path} has no fmt or data chunk")
    tag, channels, rate, _, _, bits = fmt
    if channels not in (1, 2) or rate < 4000 or rate > 192000:
        raise BadRequest(f"wav: {path}: unsupported channels={channels} rate={rate}")
    if tag == 1 and bits == 16:
        width = 2
    elif tag == 7 and bits == 8:
        pcm, width = audioop.ulaw2lin(pcm, 2), 2
    elif tag == 6 and bits == 8:
        pcm, width = audioop.alaw2lin(pcm, 2), 2
    else:
        raise BadRequest(f"wav: {path}: unsupported format tag={tag} bits={bits}")
    pcm = pcm[:len(pcm) - len(pcm) % (width * channels)]
    if channels == 2:
        pcm = audioop.tomono(pcm, width, 0.5, 0.5)
    secs = len(pcm) / (2 * rate)
    if rate != RATE:
        pcm, _ = audioop.ratecv(pcm, 2, 1, rate, RATE, None)
    return pcm, secs


class Engine:
    def __init__(self, Decoder, version):
        self.Decoder = Decoder
        self.version = version
        self.decoders = {}  # model key -> (decoder, {grammar hash: search name})

    def decoder(self, model, grammar=False):
        """The open-vocabulary decoder of a model, or its grammar decoder: no language model
        (40 MB instead of 130) and wide beams, without which the JSGF search lost whole
        sentences of the WER set (5 % WER -> 0.5 %); wide beams do nothing for the open
        vocabulary but double its time, hence two decoders."""
        mkey = None if not model else (model.get("hmm"), model.get("lm"), model.get("dict"))
        key = (mkey, grammar)
        if key not in self.decoders:
            kw = dict(samprate=RATE, loglevel="FATAL")
            if mkey is not None:
                hmm, lm, dic = mkey
                if not hmm or not dic:
                    raise BadRequest("model: hmm and dict are required")
                kw.update(hmm=hmm, dict=dic)
                if lm:
                    kw["lm"] = lm
            if grammar:
                kw.update(lm=None, beam=1e-80, wbeam=1e-60, pbeam=1e-80)
            t0 = time.time()
            try:
                self.decoders[key] = (self.Decoder(**kw), {})
            except Exception as e:  # pocketsphinx raises RuntimeError/ValueError on bad paths
                raise BadRequest(f"model: cannot load {mkey}: {e}")
            what = "grammar decoder" if grammar else "decoder"
            log(f"{what} for {mkey or 'en-us (bundled)'} loaded in {time.time() - t0:.1f}s")
        return self.decoders[key]

    def activate(self, model, grammar):
        if not grammar:
            dec, _ = self.decoder(model)
            dec.activate_search()
            return dec
        dec, searches = self.decoder(model, grammar=True)
        sents = []
        for s in grammar:
            words = re.sub(r"[^a-z0-9' ]+", " ", str(s).lower()).split()
            if words:
                sents.append(words)
        if not sents:
            raise BadRequest("grammar: no words in any sentence")
        oov = sorted({w for ws in sents for w in ws if dec.lookup_word(w) is None})
        if oov:
            raise BadRequest(f"grammar: words not in the dictionary: {' '.join(oov[:20])}")
        # One sentence per recording: letting sentences repeat (<sent>+) made the search
        # append partial sentences to the tail noise (10.6 % WER instead of 0.5 %).
        alts = " | ".join("( " + " ".join(ws) + " )" for ws in sents)
        jsgf = f"#JSGF V1.0;\ngrammar hark;\npublic <s> = {alts} ;\n"
        name = "g" + hashlib.sha1(jsgf.encode()).hexdigest()[:16]
        if name not in searches:
            try:
                dec.add_jsgf_string(name, jsgf)
            except ValueError as e:
                raise BadRequest(f"grammar: rejected by pocketsphinx: {e}")
            searches[name] = True
        dec.activate_search(name)
        # This decoder has no default search, so only inactive grammars are dropped.
        while len(searches) > MAX_GRAMMARS:
            old = next(iter(searches))
            dec.remove_search(old)
            del searches[old]
        return dec

    @staticmethod
    def words(dec, offset):
        """Recognised words of the last utterance as (start, end, word), fillers dropped."""
        out = []
        for s in dec.seg() or ():
            w = s.word
            if w in ("<s>", "</s>", "<sil>") or w.startswith("[") or w.startswith("+"):
                continue
            w = re.sub(r"\(\d+\)$", "", w)
            out.append((offset + s.start_frame / FRAME_RATE,
                        offset + (s.end_frame + 1) / FRAME_RATE, w))
        return out

    @staticmethod
    def decode(dec, pcm):
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()

    def transcribe(self, req):
        pcm, secs = read_wav(req.get("wav", ""))
        pcm = add_noise(pcm)
        spans = []
        for sp in req.get("segments") or []:
            try:
                s, e = max(0.0, float(sp[0])), min(secs, float(sp[1]))
            except (TypeError, ValueError, IndexError):
                raise BadRequest(f"segments: {sp!r} is not [start, end]")
            if e > s:
                spans.append((s, e))
        spans.sort()
        if not req.get("segments"):
            spans = energy_spans(pcm, secs)
        segments = []
        if not spans:  # nothing above the noise floor: decoding silence only invents words
            return {"ok": True, "segments": [], "text": "", "audio_secs": secs,
                    "decode_secs": 0.0, "rtf": 0.0}
        grammar = req.get("grammar")
        dec = self.activate(req.get("model"), grammar)
        at = lambda t: 2 * int(round(t * RATE))  # noqa: E731 - byte offset of second t
        t0 = time.time()
        if not grammar:
            for s, e in spans:
                self.decode(dec, pcm[at(s):at(e)])
                text = " ".join(w for _, _, w in self.words(dec, s))
                segments.append({"start": s, "end": e, "text": text})
        else:
            # The whole file: cutting at the spans clipped soft word endings ("days") and
            # cost the WER set 1 %; silence is cheap for a grammar search.
            self.decode(dec, pcm)
            segments = group(self.words(dec, 0.0), spans)
        dt = time.time() - t0
        text = " ".join(s["text"] for s in segments if s["text"])
        return {"ok": True, "segments": segments, "text": text, "audio_secs": secs,
                "decode_secs": dt, "rtf": dt / secs if secs > 0 else 0.0}


def add_noise(pcm):
    reps = len(pcm) // len(NOISE) + 1
    return audioop.add(pcm, (NOISE * reps)[:len(pcm)], 2)


def energy_spans(pcm, secs):
    """Speech spans by frame energy, for requests without VAD spans: 20 ms frames at or above
    -45 dBFS, gaps under 300 ms merged, spans under 200 ms dropped, 100 ms padding (the same
    rules as the daemon's speech_spans, minus its webrtc-vad)."""
    frame = 2 * RATE // 50
    floor = 32768 * 10 ** (-45 / 20)
    runs = []
    for i in range(0, len(pcm), frame):
        if audioop.rms(pcm[i:i + frame], 2) >= floor:
            s, e = i / (2 * RATE), min(secs, (i + frame) / (2 * RATE))
            if runs and s - runs[-1][1] < 0.3:
                runs[-1][1] = e
            else:
                runs.append([s, e])
    out = []
    for s, e in runs:
        if e - s < 0.2:
            continue
        s, e = max(0.0, s - 0.1), min(secs, e + 0.1)
        if out and s <= out[-1][1]:
            out[-1][1] = e
        else:
            out.append([s, e])
    return [(round(s, 3), round(e, 3)) for s, e in out]


def group(words, spans):
    """Words into segments: one per span that got words, each word in the span holding its
    midpoint (or the nearest span)."""
    buckets = [[] for _ in spans]
    for ws, we, w in words:
        mid = (ws + we) / 2
        i = min(range(len(spans)),
                key=lambda k: 0 if spans[k][0] <= mid <= spans[k][1]
                else min(abs(mid - spans[k][0]), abs(mid - spans[k][1])))
        buckets[i].append(w)
    return [{"start": s, "end": e, "text": " ".join(b)} for (s, e), b in zip(spans, buckets) if b]


def main():
    try:
        from pocketsphinx import Decoder, get_model_path
    except ImportError as e:
        send({"ready": False, "error": f"{sys.executable} cannot import pocketsphinx ({e}); "
              "install it with: pip install 'pocketsphinx==5.*' (scripts/python-venv.sh)"})
        return 1
    try:
        from importlib.metadata import version as dist_version
        version = dist_version("pocketsphinx")
    except Exception:  # metadata missing (e.g. a source checkout): the major version is known
        version = "5"
    engine = Engine(Decoder, version)
    try:
        engine.decoder(None)
    except BadRequest as e:
        send({"ready": False, "error": str(e)})
        return 1
    send({"ready": True, "engine": f"pocketsphinx {version}", "model": get_model_path()})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        rid = None
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise BadRequest("request is not a JSON object")
            rid = req.get("id")
            resp = engine.transcribe(req)
        except BadRequest as e:
            resp = {"ok": False, "error": str(e)}
        except json.JSONDecodeError as e:
            resp = {"ok": False, "error": f"request is not JSON: {e}"}
        except Exception as e:  # keep serving: one bad recording must not kill the worker
            log(f"request {rid}: {type(e).__name__}: {e}")
            resp = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        resp["id"] = rid
        send(resp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
