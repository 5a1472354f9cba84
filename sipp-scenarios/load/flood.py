#!/usr/bin/env python3
"""Hostile traffic for a load run (run.sh with FLOOD=SECONDS): while the calls record, for
SECONDS seconds, as fast as one Python thread each can send:

  invite  INVITEs with SDP from 127.0.0.2 (a source outside sip.trusted): Hark bans it after
          sip.rate_limit_requests and drops the rest unparsed
  junk    malformed SIP from 127.0.0.3: random bytes, truncated and mangled requests, the
          RFC 4475 messages of crates/sip-core/tests/torture (until its own ban)
  rtp     RTP-looking and random datagrams from 127.0.0.4 to every port of the RTP range

  flood.py KIND HOST:PORT SECONDS RTP_MIN RTP_MAX OUT.json     (KIND: invite, junk or rtp)

One process per kind (run.sh starts all three), so each has a core's worth of Python. Writes
what was sent (count, rate) to OUT.json. Sends only to 127.0.0.1; every loop is bounded by the
deadline.
"""
import json
import os
import random
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TORTURE = os.path.join(HERE, "..", "..", "crates", "sip-core", "tests", "torture", "rfc4475")


def invite(n, local):
    sdp = ("v=0\r\no=x 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
           "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    return (f"INVITE sip:rec@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKf{n}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:scan@{local}>;tag=f{n}\r\nTo: <sip:rec@127.0.0.1>\r\n"
            f"Call-ID: flood-{n}\r\nCSeq: 1 INVITE\r\nContact: <sip:scan@{local}>\r\n"
            f"User-Agent: friendly-scanner\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(sdp)}\r\n\r\n{sdp}").encode()


def flood_invites(target, deadline, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.2", 0))
    local = "%s:%d" % s.getsockname()
    # A few distinct messages reused: the sender's CPU goes into sending, not formatting.
    msgs = [invite(n, local) for n in range(64)]
    sent = 0
    while time.monotonic() < deadline:
        for m in msgs:
            try:
                s.sendto(m, target)
                sent += 1
            except OSError:
                pass
    out["invite"] = sent


def junk_messages():
    """Malformed SIP only: the RFC 4475 messages that must be refused (not the valid ones,
    which from a trusted source would be calls), random bytes, truncated INVITEs, and INVITEs
    with random bytes changed and a CSeq that cannot match (so none of them is a call)."""
    msgs = []
    expected = os.path.join(TORTURE, "..", "expected.tsv")
    if os.path.isfile(expected):
        with open(expected) as f:
            for line in f.read().splitlines()[1:]:
                rfc, name, kind, want = line.split("\t")[:4]
                if rfc != "rfc4475" or want.startswith("accept"):
                    continue
                with open(os.path.join(TORTURE, name + ".dat"), "rb") as m:
                    msgs.append(m.read())
    rnd = random.Random(14)
    base = invite(0, "127.0.0.3:5060").replace(b"CSeq: 1 INVITE", b"CSeq: 1 IVNITE")
    for _ in range(64):
        msgs.append(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 1400))))
        cut = rnd.randint(1, len(base) - 1)
        msgs.append(base[:cut])
        mangled = bytearray(base)
        for _ in range(8):
            mangled[rnd.randrange(len(mangled))] = rnd.getrandbits(8)
        msgs.append(bytes(mangled))
    return msgs


def flood_junk(target, deadline, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.3", 0))
    msgs = junk_messages()
    sent = 0
    while time.monotonic() < deadline:
        for m in msgs:
            try:
                s.sendto(m, target)
                sent += 1
            except OSError:
                pass
    out["junk"] = sent


def flood_rtp(rtp_min, rtp_max, deadline, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.4", 0))
    rnd = random.Random(4)
    payloads = []
    for i in range(32):
        hdr = bytes([0x80, 0, i, i]) + rnd.getrandbits(32).to_bytes(4, "big") + b"\xba\xd0\x00\x01"
        payloads.append(hdr + b"\x00" * 160)                     # loud PCMU from a stranger
        payloads.append(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 300))))
    ports = list(range(rtp_min - rtp_min % 2, rtp_max + 1, 2))
    sent = 0
    while time.monotonic() < deadline:
        for port in ports:
            try:
                s.sendto(payloads[sent % len(payloads)], ("127.0.0.1", port))
                sent += 1
            except OSError:
                pass
            if time.monotonic() >= deadline:
                break
    out["rtp"] = sent


def main():
    kind = sys.argv[1]
    host, port = sys.argv[2].rsplit(":", 1)
    target = (host, int(port))
    seconds = float(sys.argv[3])
    rtp_min, rtp_max = int(sys.argv[4]), int(sys.argv[5])
    out_path = sys.argv[6]
    assert host == "127.0.0.1", "floods go to loopback only"
    start = time.monotonic()
    deadline = start + seconds
    out = {}
    if kind == "invite":
        flood_invites(target, deadline, out)
    elif kind == "junk":
        flood_junk(target, deadline, out)
    elif kind == "rtp":
        flood_rtp(rtp_min, rtp_max, deadline, out)
    else:
        sys.exit("KIND must be invite, junk or rtp")
    elapsed = time.monotonic() - start
    result = {"kind": kind, "sent": out.get(kind, 0), "seconds": round(elapsed, 2),
              "per_sec": round(out.get(kind, 0) / elapsed)}
    with open(out_path, "w") as f:
        json.dump(result, f)
    print(f"flood {kind}: {result['sent']} datagrams in {elapsed:.1f} s ({result['per_sec']}/s)")


if __name__ == "__main__":
    main()
