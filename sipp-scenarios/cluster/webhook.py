#!/usr/bin/env python3
"""Webhook receiver of the cluster run (loopback only).

    webhook.py PORT FILE

Every request (any path, GET or POST) is appended to FILE as one JSON line: time, method, path,
form/query params, the I-Twilio-Idempotency-Token header, the status answered. Every request is
answered 200 with `<Response/>` (so a <Record> action ends the call: Hark hangs up).
GET /_dump answers the list of recorded requests as JSON (not recorded itself).
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PORT = int(sys.argv[1])
FILE = sys.argv[2]
LOCK = threading.Lock()
SEEN = []
OUT = open(FILE, "a", buffering=1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, status, body, ctype="text/xml"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        url = urlsplit(self.path)
        if url.path == "/_dump":
            with LOCK:
                body = json.dumps(SEEN)
            self._answer(200, body, "application/json")
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        params = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        params.update({k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()})
        entry = {
            "t": time.time(),
            "method": self.command,
            "path": url.path,
            "params": params,
            "token": self.headers.get("I-Twilio-Idempotency-Token"),
            "status": 200,
        }
        with LOCK:
            SEEN.append(entry)
            OUT.write(json.dumps(entry) + "\n")
        self._answer(200, "<Response/>")

    do_GET = _handle
    do_POST = _handle


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


if __name__ == "__main__":
    Server(("127.0.0.1", PORT), Handler).serve_forever()
