#!/usr/bin/env python3
"""A Twilio voice application for Hark's e2e tests, written against the official helper library.

    app.py --port 0 --scenario routes.json --log requests.jsonl --auth-token TOKEN

Every request is checked with twilio.request_validator.RequestValidator (the URL Hark requested,
http://127.0.0.1:<port><path>[?query], plus the POST form); a bad or missing X-Twilio-Signature
gets 403 unless the route is media (Hark fetches <Play> audio without signing, like Twilio).
Each request is logged as one JSON line (method, path, query, form, headers, valid, status).

The scenario file is re-read on every request, so a test can write it after learning the port.
It maps a path to one route:
    {"twiml": [VERB, ...]}        TwiML built with VoiceResponse; VERB = [name, {kwargs}, [nested]]
    {"say_gather": {...}}         VoiceResponse().gather(...).say(...)
    {"record": {...}}             VoiceResponse().record(...)
    {"hangup": {}}
    {"raw": {"status": 500, "content_type": "text/xml", "body": "...", "delay": 2.0}}
    {"media": {"wav": {"rate": 16000, "freq": 440, "secs": 1.0}} or {"file": PATH},
              "content_type": "audio/wav"}   served with an ETag; If-None-Match → 304
The bound port is printed on stdout when the server is ready.
"""

import argparse
import hashlib
import io
import json
import math
import struct
import sys
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

# Nestable nouns/verbs under <Gather>.
NESTED = {"say", "play", "pause"}


def add_verb(parent, spec):
    """Appends one verb ([name, kwargs, nested]) to a VoiceResponse or Gather."""
    name = spec[0]
    kwargs = dict(spec[1]) if len(spec) > 1 and spec[1] else {}
    nested = spec[2] if len(spec) > 2 else []
    if name == "say":
        message = kwargs.pop("message", None)
        node = parent.say(message, **kwargs)
    elif name == "hangup":
        node = parent.hangup()
    elif name == "redirect":
        node = parent.redirect(kwargs.pop("url"), **kwargs)
    else:
        # gather, record, play, pause, reject: keyword arguments map 1:1.
        node = getattr(parent, name)(**kwargs)
    for child in nested:
        if child[0] not in NESTED:
            raise ValueError(f"{child[0]} cannot be nested in {name}")
        add_verb(node, child)
    return node


def build_twiml(route):
    """The TwiML document of a route, built with the helper library."""
    r = VoiceResponse()
    if "twiml" in route:
        for verb in route["twiml"]:
            add_verb(r, verb)
    elif "say_gather" in route:
        a = dict(route["say_gather"])
        say = a.pop("say")
        g = r.gather(**a)
        g.say(say)
    elif "record" in route:
        r.record(**route["record"])
    elif "hangup" in route:
        r.hangup()
    else:
        raise ValueError(f"unknown route kind: {sorted(route)}")
    return str(r)


def sine_wav(rate, freq, secs, amplitude=12000):
    """A mono 16-bit WAV made with the `wave` module."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        n = int(rate * secs)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(amplitude * math.sin(2 * math.pi * freq * i / rate)))
                for i in range(n)
            )
        )
    return buf.getvalue()


class App:
    def __init__(self, scenario_path, log_path, auth_token):
        self.scenario_path = scenario_path
        self.validator = RequestValidator(auth_token)
        self.log_lock = threading.Lock()
        self.log = open(log_path, "a", encoding="utf-8")
        self.media_cache = {}
        self.port = 0

    def routes(self):
        try:
            with open(self.scenario_path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def media_body(self, spec):
        key = json.dumps(spec, sort_keys=True)
        if key not in self.media_cache:
            if "wav" in spec:
                w = spec["wav"]
                body = sine_wav(w.get("rate", 16000), w.get("freq", 440), w.get("secs", 1.0))
            else:
                with open(spec["file"], "rb") as f:
                    body = f.read()
            self.media_cache[key] = body
        return self.media_cache[key]

    def write_log(self, entry):
        line = json.dumps(entry, sort_keys=True)
        with self.log_lock:
            self.log.write(line + "\n")
            self.log.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    app = None  # set in main

    def log_message(self, fmt, *args):
        sys.stderr.write("app.py: " + (fmt % args) + "\n")

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def handle_any(self):
        app = self.app
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        # Blank values (FinishedOnKey=) are signed too: keep them.
        form = parse_qsl(raw.decode("utf-8"), keep_blank_values=True) if self.command == "POST" else []
        url = f"http://127.0.0.1:{app.port}{self.path}"
        signature = self.headers.get("X-Twilio-Signature", "")
        valid = bool(signature) and app.validator.validate(url, dict(form), signature)
        route = app.routes().get(split.path)
        entry = {
            "t": time.time(),
            "method": self.command,
            "path": split.path,
            "query": split.query,
            "form": form,
            "headers": {k: v for k, v in self.headers.items()},
            "valid": valid,
        }
        try:
            status, headers, body, delay = self.answer(route, valid)
        except Exception as e:  # a scenario mistake: say so in the log and the response
            status, headers, body, delay = 599, {"Content-Type": "text/plain"}, str(e).encode(), 0
        entry["status"] = status
        app.write_log(entry)
        if delay:
            time.sleep(delay)
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and status != 304:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # Hark gave up waiting (timeout tests)

    def answer(self, route, valid):
        """(status, headers, body, delay) for a route."""
        if route is not None and "media" in route:
            spec = route["media"]
            body = self.app.media_body(spec)
            etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
            headers = {"Content-Type": spec.get("content_type", "audio/wav"), "ETag": etag}
            if self.headers.get("If-None-Match") == etag:
                return 304, {"ETag": etag}, b"", 0
            return 200, headers, body, 0
        if not valid:
            return 403, {"Content-Type": "text/plain"}, b"invalid X-Twilio-Signature", 0
        if route is None:
            return 404, {"Content-Type": "text/plain"}, b"no such route", 0
        if "raw" in route:
            r = route["raw"]
            body = r.get("body", "").encode("utf-8")
            return r.get("status", 200), {"Content-Type": r.get("content_type", "text/xml")}, body, r.get("delay", 0)
        return 200, {"Content-Type": "application/xml"}, build_twiml(route).encode("utf-8"), 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--scenario", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--auth-token", required=True)
    a = p.parse_args()
    app = App(a.scenario, a.log, a.auth_token)
    Handler.app = app
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.daemon_threads = True
    app.port = server.server_address[1]
    print(app.port, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
