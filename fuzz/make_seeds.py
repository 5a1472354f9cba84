#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/seeds/<target>/ from the repository's own material.

Deterministic: running it again rewrites the same files. Sources: the SIPp scenarios
(sipp-scenarios/*.xml, with their [keywords] filled in), messages and SDP from the sip-core
tests, RTP from the capture files in sipp-scenarios/pcap, TwiML from conf/hark.toml and the
control crate's tests, and small WAV files built here. Input formats of the structured
targets (rtp, sip_endpoint) are described at the top of their fuzz_targets/*.rs.

Usage: python3 fuzz/make_seeds.py   (from anywhere)
"""

import glob
import hashlib
import os
import re
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")


def out(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- SIP

SIPP_SDP = (
    "v=0\r\no=sipp 53655765 2353687637 IN IP4 127.0.0.1\r\ns=SIPp\r\n"
    "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 26000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n"
    "a=sendrecv\r\n"
)

KEYWORDS = {
    "local_ip": "127.0.0.1", "local_port": "5061", "transport": "UDP", "service": "rec",
    "pid": "1234", "call_number": "1", "remote_ip": "127.0.0.1", "remote_port": "5070",
    "call_id": "1-1234@127.0.0.1", "branch": "z9hG4bK-1234-1-0", "media_port": "26000",
    "media_ip_type": "4", "media_ip": "127.0.0.1", "local_ip_type": "4", "routes": "",
    "next_url": "sip:rec@127.0.0.1:5070", "contact_port": "5061", "user": "bob",
    "branch-N": "z9hG4bK-1234-1-0",
    "authentication": 'Authorization: Digest username="bob", realm="hark", '
    'nonce="abc", uri="sip:127.0.0.1", response="0123456789abcdef0123456789abcdef", '
    'algorithm=MD5',
    "last_To:": "To: <sip:rec@127.0.0.1:5070>;tag=abc",
    "last_From:": 'From: "SIPp" <sip:sipp@127.0.0.1:5061>;tag=1234SIPpTag001',
    "last_Via:": "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKdeadbeef;rport",
    "last_Call-ID:": "Call-ID: 1-1234@127.0.0.1",
    "last_CSeq:": "CSeq: 1 BYE",
}


def sipp_messages():
    msgs = []
    for path in sorted(glob.glob(os.path.join(ROOT, "sipp-scenarios", "**", "*.xml"), recursive=True)):
        text = open(path, encoding="latin-1").read()
        for block in re.findall(r"<send[^>]*>\s*<!\[CDATA\[(.*?)\]\]>", text, re.S):
            lines = [l.strip() for l in block.strip("\n").split("\n")]
            while lines and not lines[0]:
                lines.pop(0)
            # Header lines up to the first empty one, then the body.
            try:
                blank = lines.index("")
            except ValueError:
                blank = len(lines)
            head = [l for l in lines[:blank] if l]
            body_lines = [l for l in lines[blank + 1:]]
            while body_lines and not body_lines[-1]:
                body_lines.pop()
            body = "".join(l + "\r\n" for l in body_lines)

            def fill(s):
                s = re.sub(r"\[len\]", str(len(fill_body(body))), s)
                return re.sub(r"\[([A-Za-z_:\-]+)\]", lambda m: KEYWORDS.get(m.group(1), m.group(0)), s)

            def fill_body(b):
                return re.sub(r"\[([A-Za-z_:\-]+)\]", lambda m: KEYWORDS.get(m.group(1), m.group(0)), b)

            filled_head = [fill(l) for l in head]
            filled_head = [l for l in filled_head if l]
            b = fill_body(body)
            if not any(l.lower().startswith(("content-length", "l:")) for l in filled_head):
                filled_head.append(f"Content-Length: {len(b)}")
            msgs.append(("\r\n".join(filled_head) + "\r\n\r\n" + b).encode())
    return msgs


def test_messages():
    inv = (
        "INVITE sip:rec@127.0.0.1:5070 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-inv\r\n"
        'From: "SIPp" <sip:sipp@127.0.0.1:5061>;tag=1SIPpTag001\r\n'
        "To: <sip:rec@127.0.0.1:5070>\r\nCall-ID: 1-42@127.0.0.1\r\nCSeq: 1 INVITE\r\n"
        "Contact: <sip:sipp@127.0.0.1:5061;transport=UDP>\r\nMax-Forwards: 70\r\n"
        "User-Agent: SIPp record-test\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(SIPP_SDP)}\r\n\r\n{SIPP_SDP}"
    )
    compact = (
        "INVITE sip:rec@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/TCP 127.0.0.1:5061;branch=z9hG4bKc,"
        " SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKd\r\nf: <sip:a@127.0.0.1>;tag=a\r\nt: <sip:rec@127.0.0.1>\r\n"
        "i: compact-1\r\nCSeq: 1 INVITE\r\nm: <sip:a@127.0.0.1>\r\nc: application/sdp\r\n"
        f"Record-Route: <sip:p1.example.com;lr>,\r\n <sip:p2.example.com;lr>\r\nl: {len(SIPP_SDP)}\r\n\r\n{SIPP_SDP}"
    )
    bye = (
        "BYE sip:sipp@127.0.0.1:5061 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-bye\r\n"
        'From: "SIPp" <sip:sipp@127.0.0.1:5061>;tag=1SIPpTag001\r\nTo: <sip:rec@127.0.0.1:5070>;tag=abc\r\n'
        "Call-ID: 1-42@127.0.0.1\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    info = (
        "INFO sip:sipp@127.0.0.1:5061 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-info\r\n"
        'From: "SIPp" <sip:sipp@127.0.0.1:5061>;tag=1SIPpTag001\r\nTo: <sip:rec@127.0.0.1:5070>;tag=abc\r\n'
        "Call-ID: 1-42@127.0.0.1\r\nCSeq: 3 INFO\r\nContent-Type: application/dtmf-relay\r\n"
        "Content-Length: 24\r\n\r\nSignal=#\r\nDuration=160\r\n"
    )
    resp = (
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKzz;rport=5070;received=127.0.0.1\r\n"
        "From: <sip:rec@127.0.0.1:5070>;tag=a\r\nTo: \"Bob \\\"B\\\"\" <sip:b@c>;tag=2\r\n"
        "Call-ID: x\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    register = (
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"
        "Max-Forwards: 70\r\nTo: <sip:bob@127.0.0.1>\r\nFrom: <sip:bob@127.0.0.1>;tag=ft\r\n"
        "Call-ID: reg-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@127.0.0.1:5061>\r\nExpires: 60\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    legacy = (
        "OPTIONS sip:rec@[::1]:5070 SIP/2.0\r\nVia: SIP/2.0/UDP [::1]:5061\r\nFrom: sip:a@b;tag=x\r\n"
        "To: sip:rec@[::1]\r\nCall-ID: legacy\r\nCSeq: 9 OPTIONS\r\n\r\n"
    )
    return [inv.encode(), compact.encode(), bye.encode(), info.encode(), resp.encode(),
            register.encode(), legacy.encode()]


def sip_seeds():
    msgs = []
    seen = set()
    for m in test_messages() + sipp_messages():
        h = hashlib.sha1(m).hexdigest()[:12]
        if h not in seen:
            seen.add(h)
            msgs.append(m)
    for i, m in enumerate(msgs):
        first = m.split(b" ", 1)[0].decode(errors="replace").strip("/").replace("/", "")
        name = f"{i:02d}-{first.lower()}.sip"
        out("sip_parse", name, m)
        out("sip_endpoint", name, m)
    # The framer: streams of several messages with keep-alives, and a cut-off one.
    for i in range(0, len(msgs) - 2, 3):
        stream = b"\r\n\r\n".join(msgs[i:i + 3]) + b"\r\n" + msgs[(i + 3) % len(msgs)][:40]
        out("sip_framer", f"{i:02d}-stream.sip", stream)
    for i, m in enumerate(msgs[:6]):
        out("sip_framer", f"single-{i:02d}.sip", m)
    return msgs


# ---------------------------------------------------------------- SDP

def sdp_seeds():
    offers = {
        "sipp": SIPP_SDP,
        "linphone-opus": (
            "v=0\r\no=linphone 1 1 IN IP4 127.0.0.1\r\ns=Talk\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 7078 RTP/AVP 96 0 8 101 97\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\n"
            "a=rtpmap:101 telephone-event/48000\r\na=rtpmap:97 telephone-event/8000\r\n"
        ),
        "pt96-event": "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 18 0 96\r\n"
                      "a=rtpmap:18 G729/8000\r\na=rtpmap:96 telephone-event/8000\r\n",
        "dynamic-pcmu": "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 97\r\na=rtpmap:97 pcmu/8000\r\n",
        "levels": "v=0\r\nc=IN IP4 10.0.0.1\r\na=inactive\r\nt=0 0\r\n"
                  "m=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\na=sendonly\r\n",
        "two-streams": "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 5000 RTP/AVP 96\r\nm=audio 0 RTP/AVP 0\r\n"
                       "m=audio 5000 RTP/SAVP 8\r\nm=audio 5002 RTP/AVPF 8 0\r\na=ptime:20.0\r\n",
        "ipv6": "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n"
                "m=audio 30000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=recvonly\r\n",
        "hold": "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n",
        "multicast-lf": "v=0\nc=IN IP4 224.2.1.1/127/3\nm=audio 49170/2 RTP/AVP 0\n",
    }
    for name, body in offers.items():
        out("sdp", f"{name}.sdp", body)


# ---------------------------------------------------------------- RTP

def pcap_udp_payloads(path, limit):
    """(time_us, payload) of the UDP datagrams of a classic pcap (Ethernet, SLL, raw IP)."""
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    end = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    link = struct.unpack(end + "I", data[20:24])[0] & 0x0FFFFFFF
    pos, res = 24, []
    while pos + 16 <= len(data) and len(res) < limit:
        sec, frac, incl, _ = struct.unpack(end + "IIII", data[pos:pos + 16])
        rec = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        off = {1: 14, 113: 16, 276: 20, 101: 0}.get(link)
        if off is None:
            break
        if link == 1 and rec[12:14] == b"\x81\x00":
            off += 4
        ip = rec[off:]
        if not ip:
            continue
        if ip[0] >> 4 == 4:
            ihl = (ip[0] & 15) * 4
            if ip[9] != 17:
                continue
            udp = ip[ihl:]
        elif ip[0] >> 4 == 6:
            if ip[6] != 17:
                continue
            udp = ip[40:]
        else:
            continue
        res.append((sec * 1_000_000 + frac, udp[8:]))
    return res


def rtp_record_raw(dt_ms, payload, foreign=False):
    tag = (min(dt_ms // 5, 31) << 3) | (6 if foreign else 0)
    return bytes([tag]) + struct.pack("<H", len(payload)) + payload


def rtp_seeds():
    pcaps = {
        "dtmf-pound": ("dtmf_pound.pcap", 40),
        "dtmf-after-speech": ("dtmf_pound_after_speech.pcap", 40),
        "speech": ("speech_pcmu.pcap", 24),
        "agent": ("agent_pcmu.pcap", 12),
    }
    for name, (file, limit) in pcaps.items():
        path = os.path.join(ROOT, "sipp-scenarios", "pcap", file)
        if not os.path.exists(path):
            continue
        pkts = pcap_udp_payloads(path, limit)
        for cfg in (0x04 | (5 << 3), 0x84):
            seed = bytes([cfg])
            prev = pkts[0][0] if pkts else 0
            for i, (t, p) in enumerate(pkts):
                seed += rtp_record_raw((t - prev) // 1000, p)
                prev = t
                if i == len(pkts) // 2:
                    seed += bytes([3]) + struct.pack("<H", 100)  # a timeout in the middle
            seed += bytes([3]) + struct.pack("<H", 1000)
            out("rtp", f"{name}-{cfg:02x}.rtp", seed)
    # Structured: audio with reordering and a gap, an event, a SIP INFO key, a re-INVITE to
    # PCMA, another SSRC, RTCP and garbage.
    s = bytes([0x04 | (3 << 3)])
    for step in (8, 8, 16, 0xF8, 8, 8):           # seq steps (>> 3 as i8): 1,1,2,-1,1,1
        s += bytes([1 | (4 << 3), step, 0, 80]) + bytes(range(0x10, 0x10 + 160))
    s += bytes([2 | (4 << 3), 11, 0x0A, 0, 160, 1 | 4])
    s += bytes([2 | (4 << 3), 11, 0x8A, 3, 32, 1])
    s += bytes([4, 5, 5]) + bytes([5, 1 | 4]) + bytes([1 | (4 << 3), 8, 1, 80]) + bytes(160)
    s += rtp_record_raw(20, bytes([0x81, 200, 0, 1, 0, 0, 0, 1]))
    s += rtp_record_raw(20, b"\x80\x00\x00\x01garbage")
    s += rtp_record_raw(20, bytes([0x80, 0, 0, 9, 0, 0, 1, 0, 0, 0, 0, 1]) + bytes(160), foreign=True)
    s += bytes([3]) + struct.pack("<H", 500)
    out("rtp", "structured-mix.rtp", s)
    # Opus config: a few arbitrary frames (TOC byte 0x78: SILK WB 20 ms, code 0).
    s = bytes([0x03 | 0x04 | (5 << 3)])
    for i in range(6):
        s += bytes([1 | (4 << 3), 8, 1 << 6, 20]) + bytes([0x78]) + bytes([i * 7 % 256] * 39)
    s += bytes([3]) + struct.pack("<H", 200)
    out("rtp", "opus.rtp", s)


# ---------------------------------------------------------------- endpoint (ops mode)

def ep_seeds():
    def tpl(kind, sel=0, variant=0, peer=0):
        return bytes([1 | (peer << 3), kind, sel, variant])

    def adv(ms, mult=0):
        return bytes([2 | (mult << 3)]) + struct.pack("<H", ms)

    def api(action, sel=0, status=0):
        return bytes([3, action, sel, status])

    def bye_resp(which=0, status=2):
        return bytes([4, which, status])

    seeds = {
        # INVITE, ring, answer, ACK, INFO, caller's BYE, retransmitted BYE.
        "call-caller-bye": bytes([0x02, 0]) + tpl(0) + api(0) + api(1) + tpl(2) + tpl(6, variant=0x31)
        + tpl(3) + bytes([5]) + adv(40000),
        # INVITE, ring, CANCEL.
        "cancel": bytes([0, 0]) + tpl(0) + api(0) + tpl(4) + adv(1000) + tpl(2, variant=1) + adv(40000),
        # Answer without ACK: 2xx retransmissions, Timer H, our BYE answered 200.
        "no-ack": bytes([0, 0]) + tpl(0) + api(1) + adv(40000) + bye_resp(0, 2) + adv(40000),
        # Confirmed call, re-INVITE on hold, ACK, we hang up, BYE gets 100 then 200.
        "reinvite-hangup": bytes([1, 0]) + tpl(0, variant=0x40) + api(1) + tpl(2) + tpl(7, variant=0x0A)
        + tpl(2, variant=2) + api(4) + bye_resp(0, 0) + adv(1000) + bye_resp(0, 2) + adv(40000),
        # Rejected call, retransmitted INVITE, ACK of the 486.
        "reject": bytes([0, 0]) + tpl(0, variant=1) + api(3, 0, 3) + tpl(1) + tpl(2, variant=1) + adv(40000),
        # REGISTER, its challenge answered; OPTIONS; a stray response.
        "register": bytes([0x02, 0]) + tpl(8) + bytes([6, 0]) + tpl(5, variant=4) + tpl(9, variant=50)
        + adv(40000),
        # Only 127/8 trusted, a rate limit and caps: an INVITE from 192.0.2.9 is challenged and
        # answered with credentials; then too many calls.
        "untrusted-auth": bytes([0x02, 0x01 | 0x04 | 0x08 | 0x10 | 0x40]) + tpl(0, peer=3) + bytes([6 | (3 << 3), 1])
        + tpl(0) + tpl(0) + tpl(0) + api(1, 1) + adv(2000) + tpl(0, peer=1) + adv(40000),
        # TCP call, no SDP (400), unsupported Require (420), IPv6 offer with IPv6 media off.
        "tcp-and-refusals": bytes([0x04, 0]) + tpl(0, peer=2) + api(1) + tpl(2, peer=2)
        + tpl(0, variant=0xC1) + tpl(0, variant=0x80) + tpl(0, variant=0x10) + api(4) + adv(40000),
        # A spliced INVITE (bad Content-Length) and a raw garbage datagram.
        "splice": bytes([0, 0]) + bytes([7, 0, 0, 0]) + struct.pack("<H", 300) + bytes([2, 3]) + b"999"
        + bytes([0]) + struct.pack("<H", 8) + b"\x00garbage" + adv(40000),
    }
    for name, data in seeds.items():
        out("sip_endpoint", f"ops-{name}.bin", data)


# ---------------------------------------------------------------- TwiML

def twiml_seeds():
    docs = []
    toml = open(os.path.join(ROOT, "conf", "hark.toml"), encoding="utf-8").read()
    docs += re.findall(r"twiml\s*=\s*'([^']*)'", toml)
    for path in sorted(glob.glob(os.path.join(ROOT, "crates", "control", "src", "**", "*.rs"), recursive=True)):
        text = open(path, encoding="utf-8").read()
        for lit in re.findall(r'r#"(<(?:\?xml|Response)[^"]*?)"#', text, re.S):
            docs.append(lit)
        for lit in re.findall(r'"(<Response[^"{}\\]*</Response>)"', text):
            docs.append(lit)
    docs += [
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n  <Say voice="alice" language="en-GB" loop="2">'
        'Hello <break time="1s"/> <emphasis>world</emphasis> <sub alias="W3C">World Wide Web</sub></Say>\n'
        '  <Gather input="dtmf" timeout="3" finishOnKey="*" numDigits="4" action="/g" method="GET">'
        '<Say>Press keys</Say><Play loop="0">https://x/a.wav</Play><Pause length="2"/></Gather>\n'
        '  <Record maxLength="0" timeout="0" finishOnKey="#1" trim="do-not-trim" playBeep="false" '
        'recordingStatusCallback="cb" recordingStatusCallbackEvent="in-progress completed absent" '
        'transcribe="true" transcribeCallback="/t" transcribeLanguage="en-US"/>\n'
        '  <Dial action="/d" timeout="3" timeLimit="99999" record="record-from-ringing-dual" '
        'recordingTrack="inbound" callerId="+15551234" hangupOnStar="true" answerOnBridge="true">'
        '<Number sendDigits="ww12">+15550001</Number><Sip username="u" password="p">sip:a@b</Sip>'
        '<Client url="/w" statusCallbackEvent="ringing answered"><Identity>bob</Identity>'
        '<Parameter name="k" value="v"/></Client></Dial>\n'
        '  <Play digits="12w#ABx"/>\n  <Redirect method="GET"> /next </Redirect>\n'
        '  <Reject reason="busy"/>\n  <Hangup/>\n</Response>',
        "<Response><!-- c --><Say>&lt;&amp;&#x41;&#66;</Say><![CDATA[ ]]></Response>",
        "<Response><Dial>+15551234567</Dial></Response>",
    ]
    seen = set()
    n = 0
    for d in docs:
        if d in seen or len(d) > 4000:
            continue
        seen.add(d)
        out("twiml", f"{n:03d}.xml", d)
        n += 1


# ---------------------------------------------------------------- WAV

def wav(tag, channels, rate, bits, data, riff=None, size=None, extra_chunks=b"", fmt_extra=b""):
    block = channels * ((bits + 7) // 8)
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits) + fmt_extra
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks
    body += b"data" + struct.pack("<I", len(data) if size is None else size) + data
    return b"RIFF" + struct.pack("<I", len(body) if riff is None else riff) + body


def wav_seeds():
    pcm = b"".join(struct.pack("<h", (i * 397) % 30000 - 15000) for i in range(120))
    ulaw = bytes((i * 37) % 256 for i in range(120))
    out("wav_repair", "pcm16-mono-intact.wav", wav(1, 1, 8000, 16, pcm))
    out("wav_repair", "pcm16-mono-crashed.wav", wav(1, 1, 8000, 16, pcm, riff=36, size=0))
    out("wav_repair", "pcm16-mono-odd-tail.wav", wav(1, 1, 8000, 16, pcm + b"\x07", riff=36, size=0))
    out("wav_repair", "pcm16-stereo-crashed.wav", wav(1, 2, 16000, 16, pcm + b"\x01\x02", riff=0xFFFFFFFF, size=0xFFFFFFFF))
    out("wav_repair", "ulaw-intact.wav", wav(7, 1, 8000, 8, ulaw))
    out("wav_repair", "ulaw-stereo-crashed.wav", wav(7, 2, 8000, 8, ulaw + b"\x55", riff=36, size=0))
    out("wav_repair", "header-only.wav", wav(1, 1, 8000, 16, b"", riff=36, size=0))
    out("wav_repair", "list-chunk.wav", wav(1, 1, 8000, 16, pcm, extra_chunks=b"LIST\x04\x00\x00\x00INFO"))
    out("wav_repair", "float32.wav", wav(3, 1, 44100, 32, struct.pack("<4f", 0.0, 0.5, -1.5, 1.0)))
    ext = struct.pack("<HHI", 22, 16, 4) + struct.pack("<H", 1) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    out("wav_repair", "extensible.wav", wav(0xFFFE, 1, 8000, 16, pcm[:40], fmt_extra=ext))


def main():
    if os.path.isdir(SEEDS):
        shutil.rmtree(SEEDS)
    sip_seeds()
    sdp_seeds()
    rtp_seeds()
    ep_seeds()
    twiml_seeds()
    wav_seeds()
    total = 0
    for t in sorted(os.listdir(SEEDS)):
        files = os.listdir(os.path.join(SEEDS, t))
        size = sum(os.path.getsize(os.path.join(SEEDS, t, f)) for f in files)
        total += size
        print(f"{t:14} {len(files):3} files {size:7} bytes")
    print(f"{'total':14}           {total:7} bytes")


if __name__ == "__main__":
    main()
