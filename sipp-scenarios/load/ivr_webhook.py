#!/usr/bin/env python3
"""The IVR application for the load run (stdlib only): a Twilio-style webhook server.

  ivr_webhook.py PORT AUTH_TOKEN

  POST /voice   -> <Gather numDigits="1" action="/record"><Say>Welcome ...</Say></Gather><Hangup/>
  POST /record  -> <Record maxLength="60" finishOnKey="#" action="/done"/>
  POST /done    -> <Hangup/>
  GET  /stats   -> JSON: requests per path, signature failures, per-call flow checks

Every request's X-Twilio-Signature is checked: base64 HMAC-SHA1, key AUTH_TOKEN, over
"http://" + Host + path + the form parameters sorted by name, each name followed by its value
(what twilio-python's RequestValidator computes). A bad signature still gets the TwiML (so one
failure does not cascade into call failures) but is counted.
"""
import base64
import hashlib
import hmac
import json
import sys
import threading
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

SAY = "Welcome to Hark. Press one to leave a message."
TWIML = {
    "/voice": f'<Response><Gather numDigits="1" action="/record" timeout="10"><Say>{SAY}</Say>'
              f'</Gather><Hangup/></Response>',
    "/record": '<Response><Record maxLength="60" finishOnKey="#" action="/done"/></Response>',
    "/done": "<Response><Hangup/></Response>",
}


class State:
    def __init__(self, token):
        self.token = token.encode()
        self.lock = threading.Lock()
        self.counts = Counter()
        self.bad_signature = Counter()
        self.flows = defaultdict(list)  # CallSid -> paths in arrival order
        self.record_digits = Counter()  # Digits on /record (the Gather result)
        self.done_digits = Counter()  # Digits on /done (how <Record> ended)
        self.recording_durations = Counter()  # RecordingDuration on /done

    def signature(self, url, params):
        msg = url + "".join(k + v for k, v in sorted(params))
        return base64.b64encode(hmac.new(self.token, msg.encode(), hashlib.sha1).digest()).decode()

    def stats(self):
        with self.lock:
            want = ["/voice", "/record", "/done"]
            complete = sum(1 for p in self.flows.values() if p == want)
            return {
                "counts": dict(self.counts),
                "bad_signature": dict(self.bad_signature),
                "calls": len(self.flows),
                "complete_flows": complete,
                "incomplete_flows": {sid: p for sid, p in list(self.flows.items()) if p != want},
                "record_digits": dict(self.record_digits),
                "done_digits": dict(self.done_digits),
                "recording_durations": dict(self.recording_durations),
            }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Hark's client pools connections

    def log_message(self, *_):
        pass

    def reply(self, code, body, ctype):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/stats":
            self.reply(200, json.dumps(self.server.state.stats()), "application/json")
        else:
            self.reply(404, "not found", "text/plain")

    def do_POST(self):
        st = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        params = parse_qsl(body, keep_blank_values=True)
        path = self.path.split("?", 1)[0]
        url = f"http://{self.headers.get('Host', '')}{self.path}"
        good = hmac.compare_digest(st.signature(url, params), self.headers.get("X-Twilio-Signature", ""))
        p = dict(params)
        with st.lock:
            st.counts[path] += 1
            if not good:
                st.bad_signature[path] += 1
            st.flows[p.get("CallSid", "?")].append(path)
            if path == "/record":
                st.record_digits[p.get("Digits", "")] += 1
            elif path == "/done":
                st.done_digits[p.get("Digits", "")] += 1
                st.recording_durations[p.get("RecordingDuration", "")] += 1
        twiml = TWIML.get(path)
        if twiml is None:
            self.reply(404, "not found", "text/plain")
        else:
            self.reply(200, twiml, "text/xml")


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    server = ThreadingHTTPServer(("127.0.0.1", int(argv[1])), Handler)
    server.daemon_threads = True
    server.request_queue_size = 1024
    server.state = State(argv[2])
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
