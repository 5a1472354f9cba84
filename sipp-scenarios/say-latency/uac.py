#!/usr/bin/env python3
"""A tiny SIP/UDP caller that times a `<Say>` (stdlib only, loopback).

  uac.py HOST:PORT CALLS [--label L] [--out results.jsonl] [--bye-timeout S]

Per call: INVITE with an SDP offer (PCMU 0 + telephone-event 101) naming its own RTP socket;
100/180 ignored; on the 200 OK an ACK; then it waits for the daemon's BYE (answered 200) while it
counts the RTP that arrives. Calls run one after another.

Times are the kernel's receive timestamps (SO_TIMESTAMPNS), so Python's scheduling does not add
to them:
  setup_ms  INVITE sent -> 200 OK received
  say_ms    200 OK received -> first RTP packet received. Hark answers right before it starts the
            `<Say>` verb (rendering included), so this is the verb-start -> first-packet latency.
  audio_s   RTP audio received (packets x 20 ms), rms its level, bye_s 200 OK -> BYE.
One JSON line per call; exit 1 if any call failed.
"""
import argparse
import audioop
import json
import os
import random
import select
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; SCM_TIMESTAMPNS has the same value
TIMESPEC = struct.Struct("qq")


def stamped_socket(port=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind(("127.0.0.1", port))
    return s


def recv_stamped(sock):
    """(data, kernel receive time in seconds, peer)."""
    data, anc, _flags, peer = sock.recvmsg(65535, socket.CMSG_SPACE(TIMESPEC.size))
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= TIMESPEC.size:
            sec, nsec = TIMESPEC.unpack(raw[:TIMESPEC.size])
            return data, sec + nsec / 1e9, peer
    return data, time.time(), peer


def parse_sip(data):
    """(first line, {lowercase header: [values]}, body) or None."""
    try:
        text = data.decode("utf-8", "replace")
    except Exception:  # noqa: BLE001
        return None
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    return lines[0], headers, body


def hdr(headers, *names):
    for n in names:
        if headers.get(n):
            return headers[n][0]
    return ""


def call(target, label, bye_timeout):
    host, port = target.rsplit(":", 1)
    dest = (host, int(port))
    sip = stamped_socket()
    rtp = stamped_socket()
    lport, rport = sip.getsockname()[1], rtp.getsockname()[1]
    tag = f"{random.getrandbits(32):08x}"
    call_id = f"{random.getrandbits(64):016x}@say-latency"
    branch = f"z9hG4bK{random.getrandbits(48):012x}"
    sdp = (f"v=0\r\no=say 1 1 IN IP4 127.0.0.1\r\ns=say-latency\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=audio {rport} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
           f"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n")
    ruri = f"sip:say@{host}:{port}"
    frm = f"<sip:latency@127.0.0.1:{lport}>;tag={tag}"
    invite = (f"INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lport};branch={branch};rport\r\n"
              f"Max-Forwards: 70\r\nFrom: {frm}\r\nTo: <{ruri}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
              f"Contact: <sip:latency@127.0.0.1:{lport}>\r\nUser-Agent: hark-say-latency\r\n"
              f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")
    result = {"label": label, "ok": False}
    t_invite = time.time()
    sip.sendto(invite.encode(), dest)
    t_200 = t_rtp = t_bye = None
    ack = None
    packets, audio = 0, bytearray()
    deadline = time.monotonic() + 10  # for the 200 OK; then bye_timeout
    retrans_at, retrans_gap = time.monotonic() + 0.5, 0.5
    try:
        while True:
            now = time.monotonic()
            if now > deadline:
                result["error"] = "no 200 OK" if t_200 is None else "no BYE from the daemon"
                break
            if t_200 is None and now >= retrans_at:  # Timer A, UDP
                sip.sendto(invite.encode(), dest)
                retrans_gap = min(retrans_gap * 2, 4)
                retrans_at = now + retrans_gap
            ready, _, _ = select.select([sip, rtp], [], [], 0.05)
            if rtp in ready:
                data, ts, _ = recv_stamped(rtp)
                if len(data) >= 12 and data[0] >> 6 == 2:
                    if t_rtp is None:
                        t_rtp = ts
                        result["first_pt"] = data[1] & 0x7F
                    packets += 1
                    if data[1] & 0x7F == 0:
                        audio += data[12:]
            if sip in ready:
                data, ts, peer = recv_stamped(sip)
                msg = parse_sip(data)
                if msg is None:
                    continue
                first, headers, _ = msg
                if first.startswith("SIP/2.0 "):
                    code = int(first.split()[1])
                    if "INVITE" not in hdr(headers, "cseq"):
                        continue
                    if code >= 300:
                        result["error"] = f"INVITE answered {first}"
                        break
                    if 200 <= code < 300:
                        if t_200 is None:
                            t_200 = ts
                            to = hdr(headers, "to", "t")
                            contact = hdr(headers, "contact", "m")
                            target_uri = contact[contact.find("<") + 1:contact.find(">")] if "<" in contact else contact or ruri
                            ack = (f"ACK {target_uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{random.getrandbits(48):012x};rport\r\n"
                                   f"Max-Forwards: 70\r\nFrom: {frm}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n"
                                   f"Content-Length: 0\r\n\r\n").encode()
                            deadline = time.monotonic() + bye_timeout
                        sip.sendto(ack, peer)  # also for a retransmitted 200
                    continue
                method = first.split(" ", 1)[0]
                if method in ("BYE", "INFO", "OPTIONS", "UPDATE"):
                    resp = ("SIP/2.0 200 OK\r\n" + "".join(f"Via: {v}\r\n" for v in headers.get("via", []))
                            + f"From: {hdr(headers, 'from', 'f')}\r\nTo: {hdr(headers, 'to', 't')}\r\n"
                            f"Call-ID: {hdr(headers, 'call-id', 'i')}\r\nCSeq: {hdr(headers, 'cseq')}\r\n"
                            f"Content-Length: 0\r\n\r\n")
                    sip.sendto(resp.encode(), peer)
                    if method == "BYE":
                        t_bye = ts
                        result["ok"] = t_rtp is not None
                        if t_rtp is None:
                            result["error"] = "BYE before any RTP"
                        break
    finally:
        sip.close()
        rtp.close()
    if t_200 is not None:
        result["setup_ms"] = round((t_200 - t_invite) * 1000, 3)
    if t_200 is not None and t_rtp is not None:
        result["say_ms"] = round((t_rtp - t_200) * 1000, 3)
    if t_200 is not None and t_bye is not None:
        result["bye_s"] = round(t_bye - t_200, 3)
    result["packets"] = packets
    result["audio_s"] = round(len(audio) / 8000, 3)
    result["rms"] = audioop.rms(audioop.ulaw2lin(bytes(audio), 2), 2) if audio else 0
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("target")
    ap.add_argument("calls", type=int)
    ap.add_argument("--label", default="")
    ap.add_argument("--out")
    ap.add_argument("--bye-timeout", type=float, default=30.0)
    ap.add_argument("--gap", type=float, default=0.2, help="seconds between calls")
    a = ap.parse_args()
    out = open(a.out, "a") if a.out else None
    failed = 0
    for i in range(a.calls):
        r = call(a.target, a.label, a.bye_timeout)
        r["call"] = i
        line = json.dumps(r)
        print(line, flush=True)
        if out:
            out.write(line + "\n")
            out.flush()
        failed += not r["ok"]
        time.sleep(a.gap)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
