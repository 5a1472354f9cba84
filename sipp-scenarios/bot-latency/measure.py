#!/usr/bin/env python3
"""Bot operation latency of Hark's live call-control API (SPEC §7, issue 6). Stdlib only.

  measure.py [--ops 200] [--mode dtmf|max|both] [--hark BIN] [--out DIR]

Starts `hark serve` (release binary) with a bot application whose `bot_callback_uri` is this
script's own HTTP server, then places ONE call with its own tiny SIP/UDP caller (INVITE, ACK,
PCMU RTP every 20 ms from the speech fixture, looped; RFC 4733 '#' on demand) and, as the bot,
issues OPS `recordResponse` operations one after another on that call. Per operation:

  beep_ms    recordResponse request sent -> first RTP packet of the beep received (kernel receive
             timestamp, SO_TIMESTAMPNS). Hark sends no RTP between operations, so the first packet
             after the request is the beep's.
  http_ms    request sent -> 200 response read.
  stop_ms    stop event -> completion notification (commsNotification, changeType deleted) received
             by the bot server.
             mode dtmf: stopTones ["#"]; '#' is sent 300 ms after the beep's last packet; the stop
                        event is the send time of the first RFC 4733 event packet (key down).
                        The 300 ms get a random 0-100 ms added so the key lands at any phase of
                        Hark's 100 ms drain cycle.
                        stop_end_ms is measured from the first end packet (E=1) instead, 160 ms later.
             mode max:  maxRecordDurationInSeconds 1; capture starts when the beep has been sent,
                        so the stop event is the beep's last packet received + 1.000 s (the moment
                        the 1 s of caller audio is complete; ±20 ms, one packet).
Each operation must end with the expected resultInfo (200/8514 dtmf, 200/8515 max) or it counts as
failed. One JSON line per operation in DIR/results.jsonl; p50/p90/p99/max printed per mode.
Env: SIP_PORT (25460), HTTP_PORT (28480), RTP_MIN/RTP_MAX (30400/30499). Loopback only; only the
hark process started here is signalled, by PID. Exit 0 = every operation ok.
"""
import argparse
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
TOKEN = "bot-latency-token"
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
TIMESPEC = struct.Struct("qq")


def speech_ulaw():
    """µ-law bytes of the test fixture (a format-7 WAV); 1 kHz-free speech, 8.16 s."""
    raw = open(os.path.join(REPO, "crates/hark/tests/data/speech_8k_ulaw.wav"), "rb").read()
    pos = 12
    while pos + 8 <= len(raw):
        cid, n = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        if cid == b"data":
            return raw[pos + 8:pos + 8 + n]
        pos += 8 + n + (n & 1)
    raise SystemExit("no data chunk in the speech fixture")


# ---------------------------------------------------------------------------- the bot server
class Notes:
    def __init__(self):
        self.cv = threading.Condition()
        self.items = []  # (receive time, notification)

    def add(self, t, note):
        with self.cv:
            self.items.append((t, note))
            self.cv.notify_all()

    def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for t, n in self.items:
                    if pred(n):
                        return t, n
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, None
                self.cv.wait(left)


NOTES = Notes()


class BotHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802
        t = time.time()
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        try:
            for item in json.loads(body).get("value", []):
                NOTES.add(t, item)
        except ValueError:
            pass
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_):
        pass


# ---------------------------------------------------------------------------- the caller
def stamped_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind(("127.0.0.1", 0))
    return s


def recv_stamped(sock):
    data, anc, _flags, peer = sock.recvmsg(65535, socket.CMSG_SPACE(TIMESPEC.size))
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= TIMESPEC.size:
            sec, nsec = TIMESPEC.unpack(raw[:TIMESPEC.size])
            return data, sec + nsec / 1e9, peer
    return data, time.time(), peer


def parse_sip(data):
    text = data.decode("utf-8", "replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    return lines[0], headers, body


def hdr(h, *names):
    for n in names:
        if h.get(n):
            return h[n][0]
    return ""


class Caller:
    """One call: SIP on one socket, RTP out every 20 ms, RTP in with kernel timestamps."""

    def __init__(self, target):
        host, port = target.rsplit(":", 1)
        self.dest = (host, int(port))
        self.sip = stamped_socket()
        self.rtp = stamped_socket()
        self.audio = speech_ulaw()
        self.lock = threading.Lock()
        self.rx = []  # kernel receive times of RTP packets from Hark
        self.dtmf_request = None  # threading.Event set by the sender when done
        self.dtmf_times = None
        self.stop = threading.Event()
        self.bye = threading.Event()
        self.remote_rtp = None
        self.event_pt = None

    def invite(self):
        lport, rport = self.sip.getsockname()[1], self.rtp.getsockname()[1]
        host, port = self.dest
        self.tag = f"{random.getrandbits(32):08x}"
        self.call_id = f"{random.getrandbits(64):016x}@bot-latency"
        sdp = (f"v=0\r\no=bl 1 1 IN IP4 127.0.0.1\r\ns=bot-latency\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               f"m=audio {rport} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
               f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n")
        ruri = f"sip:bot@{host}:{port}"
        self.frm = f"<sip:latency@127.0.0.1:{lport}>;tag={self.tag}"
        invite = (f"INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{random.getrandbits(48):012x};rport\r\n"
                  f"Max-Forwards: 70\r\nFrom: {self.frm}\r\nTo: <{ruri}>\r\nCall-ID: {self.call_id}\r\nCSeq: 1 INVITE\r\n"
                  f"Contact: <sip:latency@127.0.0.1:{lport}>\r\nContent-Type: application/sdp\r\n"
                  f"Content-Length: {len(sdp)}\r\n\r\n{sdp}").encode()
        self.sip.sendto(invite, self.dest)
        deadline = time.monotonic() + 10
        resend = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            if time.monotonic() >= resend:
                self.sip.sendto(invite, self.dest)
                resend = time.monotonic() + 1.0
            r, _, _ = select.select([self.sip], [], [], 0.05)
            if not r:
                continue
            data, _, peer = recv_stamped(self.sip)
            first, h, body = parse_sip(data)
            if not first.startswith("SIP/2.0 ") or "INVITE" not in hdr(h, "cseq"):
                continue
            code = int(first.split()[1])
            if code >= 300:
                raise SystemExit(f"INVITE answered {first}")
            if code < 200:
                continue
            contact = hdr(h, "contact", "m")
            target = contact[contact.find("<") + 1:contact.find(">")] if "<" in contact else contact
            ack = (f"ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{random.getrandbits(48):012x};rport\r\n"
                   f"Max-Forwards: 70\r\nFrom: {self.frm}\r\nTo: {hdr(h, 'to', 't')}\r\nCall-ID: {self.call_id}\r\n"
                   f"CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n").encode()
            self.sip.sendto(ack, peer)
            ip, rtp_port = "127.0.0.1", None
            for line in body.split("\r\n"):
                if line.startswith("c=IN IP4 "):
                    ip = line[9:].strip()
                elif line.startswith("m=audio "):
                    rtp_port = int(line.split()[1])
                elif line.startswith("a=rtpmap:") and "telephone-event" in line:
                    self.event_pt = int(line[9:].split()[0])
            self.remote_rtp = (ip, rtp_port)
            if self.event_pt is None:
                raise SystemExit("Hark's answer has no telephone-event")
            threading.Thread(target=self._send_rtp, daemon=True).start()
            threading.Thread(target=self._recv, daemon=True).start()
            return
        raise SystemExit("no 200 OK to the INVITE")

    def _recv(self):
        while not self.stop.is_set():
            r, _, _ = select.select([self.rtp, self.sip], [], [], 0.1)
            if self.rtp in r:
                data, ts, _ = recv_stamped(self.rtp)
                if len(data) >= 12 and data[0] >> 6 == 2:
                    with self.lock:
                        self.rx.append(ts)
            if self.sip in r:
                data, _, peer = recv_stamped(self.sip)
                first, h, _ = parse_sip(data)
                method = first.split(" ", 1)[0]
                if not first.startswith("SIP/2.0") and method in ("BYE", "OPTIONS", "INFO", "UPDATE"):
                    resp = ("SIP/2.0 200 OK\r\n" + "".join(f"Via: {v}\r\n" for v in h.get("via", []))
                            + f"From: {hdr(h, 'from', 'f')}\r\nTo: {hdr(h, 'to', 't')}\r\n"
                            f"Call-ID: {hdr(h, 'call-id', 'i')}\r\nCSeq: {hdr(h, 'cseq')}\r\nContent-Length: 0\r\n\r\n")
                    self.sip.sendto(resp.encode(), peer)
                    if method == "BYE":
                        self.bye.set()

    def _send_rtp(self):
        ssrc, seq, ts = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)
        pos, marker = 0, True
        nxt = time.monotonic()
        event = None  # (first timestamp, tick index, done-event, times dict)
        while not self.stop.is_set() and not self.bye.is_set():
            nxt += 0.02
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if event is None and self.dtmf_request is not None:
                event = [ts, 0, self.dtmf_request, {}]
                self.dtmf_request = None
            if event is not None:
                ets, i, done, times = event
                end = i >= 8
                duration = 160 * min(i + 1, 8)
                payload = struct.pack("!BBH", 11, (0x80 if end else 0) | 10, duration)  # '#'
                pkt = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | self.event_pt,
                                  seq & 0xFFFF, ets & 0xFFFFFFFF, ssrc) + payload
                now = time.time()
                self.rtp.sendto(pkt, self.remote_rtp)
                if i == 0:
                    times["down"] = now
                if i == 8:
                    times["up"] = now
                seq += 1
                event[1] += 1
                if event[1] == 11:
                    self.dtmf_times = times
                    ts = ets + 11 * 160
                    marker = True
                    event = None
                    done.set()
                continue
            frame = self.audio[pos:pos + 160]
            if len(frame) < 160:
                pos = 0
                frame = self.audio[:160]
            pos += 160
            pkt = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | 0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + frame
            self.rtp.sendto(pkt, self.remote_rtp)
            marker = False
            seq += 1
            ts += 160

    def press_pound(self):
        """Sends '#' (RFC 4733) and returns (key down, key up) send times."""
        done = threading.Event()
        self.dtmf_request = done
        if not done.wait(2):
            raise SystemExit("DTMF sender stalled")
        return self.dtmf_times["down"], self.dtmf_times["up"]

    def packets_after(self, t):
        with self.lock:
            return [x for x in self.rx if x > t]


# ---------------------------------------------------------------------------- the API
def api(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def beep_span(caller, t_req, timeout=5.0):
    """(first, last) receive times of the burst of RTP that starts after t_req."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pk = caller.packets_after(t_req)
        if pk and time.time() - pk[-1] > 0.1:
            return pk[0], pk[-1], len(pk)
        time.sleep(0.01)
    return None, None, 0


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))  # nearest rank
    return v[k]


def run_mode(mode, ops, caller, call_url, out):
    rows = []
    failed = 0
    for i in range(ops):
        if mode == "dtmf":
            body = {"stopTones": ["#"], "maxRecordDurationInSeconds": 10,
                    "initialSilenceTimeoutInSeconds": 10, "maxSilenceTimeoutInSeconds": 10,
                    "clientContext": f"dtmf-{i}"}
            want = (200, 8514)
        else:
            body = {"maxRecordDurationInSeconds": 1, "initialSilenceTimeoutInSeconds": 5,
                    "maxSilenceTimeoutInSeconds": 5, "clientContext": f"max-{i}"}
            want = (200, 8515)
        t_req = time.time()
        status, resp = api("POST", f"{call_url}/recordResponse", body)
        t_resp = time.time()
        row = {"mode": mode, "op": i, "ok": False, "http_ms": round((t_resp - t_req) * 1000, 3)}
        if status != 200:
            row["error"] = f"recordResponse answered {status}: {resp[:200]!r}"
            rows.append(row); failed += 1; out.write(json.dumps(row) + "\n"); continue
        op = json.loads(resp)["id"]
        first, last, n = beep_span(caller, t_req)
        if first is None:
            row["error"] = "no beep RTP"
            rows.append(row); failed += 1; out.write(json.dumps(row) + "\n"); continue
        row["beep_ms"] = round((first - t_req) * 1000, 3)
        row["beep_packets"] = n
        if mode == "dtmf":
            # A random phase, so the key does not always land at the same point of Hark's
            # 100 ms drain cycle (which starts with the capture).
            time.sleep(max(0.0, last + 0.3 + random.uniform(0, 0.1) - time.time()))
            down, up = caller.press_pound()
            stop = down
        else:
            stop = last + 1.0
        t_note, note = NOTES.wait(lambda x: x.get("resourceUrl", "").endswith(f"/operations/{op}"), 15)
        if note is None:
            row["error"] = "no completion notification"
            rows.append(row); failed += 1; out.write(json.dumps(row) + "\n"); continue
        data = note.get("resourceData", {})
        ri = data.get("resultInfo") or {}
        got = (ri.get("code"), ri.get("subcode"))
        row["result"] = list(got)
        row["stop_ms"] = round((t_note - stop) * 1000, 3)
        if mode == "dtmf":
            row["stop_end_ms"] = round((t_note - up) * 1000, 3)
        row["ok"] = got == want and data.get("clientContext") == body["clientContext"]
        if not row["ok"]:
            row["error"] = f"resultInfo {got}, wanted {want}"
            failed += 1
        rows.append(row)
        out.write(json.dumps(row) + "\n")
        out.flush()
        time.sleep(0.05)
    ok = [r for r in rows if r["ok"]]
    print(f"\n== mode {mode}: {len(ok)}/{len(rows)} operations ok")
    keys = ["beep_ms", "http_ms", "stop_ms"] + (["stop_end_ms"] if mode == "dtmf" else [])
    for k in keys:
        v = [r[k] for r in ok if k in r]
        print(f"  {k:12s} p50 {pct(v, 50):8.2f}  p90 {pct(v, 90):8.2f}  p99 {pct(v, 99):8.2f}  "
              f"max {max(v) if v else float('nan'):8.2f}  (n={len(v)})")
    return failed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", type=int, default=200)
    ap.add_argument("--mode", choices=["dtmf", "max", "both"], default="both")
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    ap.add_argument("--hark", default=os.environ.get("HARK_BIN", os.path.join(target, "release", "hark")))
    ap.add_argument("--out")
    a = ap.parse_args()
    if not os.access(a.hark, os.X_OK):
        raise SystemExit(f"no hark binary at {a.hark} (cargo build --release -p hark)")
    outdir = a.out or tempfile.mkdtemp(prefix="hark-bot-latency.")
    os.makedirs(os.path.join(outdir, "recordings"), exist_ok=True)
    sip_port = int(os.environ.get("SIP_PORT", 25460))
    http_port = int(os.environ.get("HTTP_PORT", 28480))
    rtp_min, rtp_max = int(os.environ.get("RTP_MIN", 30400)), int(os.environ.get("RTP_MAX", 30499))

    server = ThreadingHTTPServer(("127.0.0.1", 0), BotHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bot_url = f"http://127.0.0.1:{server.server_address[1]}/notify"
    cfg = os.path.join(outdir, "hark.toml")
    with open(cfg, "w") as f:
        f.write(f"""[sip]
listen = "127.0.0.1:{sip_port}"
[rtp]
port_min = {rtp_min}
port_max = {rtp_max}
[http]
listen = "127.0.0.1:{http_port}"
public_url = "http://127.0.0.1:{http_port}"
[storage]
dir = "{outdir}/recordings"
[app]
bot_callback_uri = "{bot_url}"
[bot]
api_token = "{TOKEN}"
[log]
level = "warn"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARK_")}
    log = open(os.path.join(outdir, "hark.log"), "ab")
    hark = subprocess.Popen([a.hark, "serve", "--config", cfg], stdout=log, stderr=log, env=env)
    failed = 0
    try:
        deadline = time.monotonic() + 15
        while True:
            if hark.poll() is not None:
                raise SystemExit(f"hark exited; see {outdir}/hark.log")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v1.0/communications/calls/x", timeout=1)
            except urllib.error.HTTPError:
                break  # answering (401)
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("hark did not start listening")
                time.sleep(0.1)
        caller = Caller(f"127.0.0.1:{sip_port}")
        caller.invite()
        _, est = NOTES.wait(lambda n: (n.get("resourceData") or {}).get("state") == "established", 10)
        if est is None:
            raise SystemExit("no established notification")
        call_id = est["resourceData"]["id"]
        call_url = f"http://127.0.0.1:{http_port}/v1.0/communications/calls/{call_id}"
        print(f"call {call_id}; results in {outdir}/results.jsonl; load {open('/proc/loadavg').read().split()[:3]}")
        with open(os.path.join(outdir, "results.jsonl"), "a") as out:
            for mode in (["dtmf", "max"] if a.mode == "both" else [a.mode]):
                failed += run_mode(mode, a.ops, caller, call_url, out)
        status, _ = api("DELETE", call_url)
        if status != 204 or not caller.bye.wait(5):
            print(f"DELETE answered {status}; BYE seen: {caller.bye.is_set()}")
            failed += 1
        caller.stop.set()
    finally:
        if hark.poll() is None:
            hark.send_signal(signal.SIGTERM)
            try:
                hark.wait(10)
            except subprocess.TimeoutExpired:
                hark.kill()
                hark.wait()
        server.shutdown()
    print(f"load at end {open('/proc/loadavg').read().split()[:3]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
