//! The caller against a fake UAS on loopback, and argument parsing.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use media_engine::sender::{RtpSender, PACKET_BYTES};
use media_engine::{g711, rtp, Codec};
use sip_core::message::{parse_message, reason_phrase, Message, Method, Request};
use sip_core::sdp;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

use crate::wav::write_wav;
use crate::*;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hark-caller-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn sine(freq: f64, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|i| ((i as f64 * freq * std::f64::consts::TAU / 8000.0).sin() * 8000.0) as i16)
        .collect()
}

/// The fixture: 1 s of 440 Hz, 8 kHz mono 16-bit.
fn sine_wav(name: &str) -> (PathBuf, Vec<i16>) {
    let path = tmp(name);
    let pcm = sine(440.0, 8000);
    write_wav(&path, &pcm).unwrap();
    (path, pcm)
}

fn args(uri: String, play: PathBuf) -> CallArgs {
    CallArgs {
        uri,
        play,
        dtmf: None,
        dtmf_at: None,
        dtmf_mode: DtmfMode::Rfc2833,
        hangup_after: None,
        bind: "127.0.0.1".parse().unwrap(),
        save_received: None,
        timeout: 20.0,
    }
}

#[derive(Debug)]
struct Pkt {
    pt: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

#[derive(Debug, Default)]
struct UasLog {
    rtp: Vec<Pkt>,
    infos: Vec<String>,
    acked: bool,
    bye_from_caller: bool,
    our_bye_answer: Option<u16>,
}

struct Uas {
    answer_pt: u8,
    reject: Option<u16>,
    /// Send BYE 200 ms after this many keys (RFC 4733 end packets or INFOs).
    bye_after_keys: Option<usize>,
    /// Send 1 s of 1 kHz tone with a 200 ms hole after the ACK.
    echo: bool,
}

fn reply(req: &Request, status: u16, extra: &str, body: &str) -> Vec<u8> {
    let h = &req.headers;
    let mut to = h.get("To").unwrap().to_string();
    if !to.contains("tag=") {
        to.push_str(";tag=uas1");
    }
    format!(
        "SIP/2.0 {status} {}\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        reason_phrase(status),
        h.get_all("Via").join(", "),
        h.get("From").unwrap(),
        h.get("Call-ID").unwrap(),
        h.get("CSeq").unwrap(),
        body.len()
    )
    .into_bytes()
}

/// The tone the fake UAS sends: packets 0..25 and 35..60 of a 1 kHz sine (a 200 ms hole).
fn echo_packets(codec: Codec, pt: u8) -> Vec<Vec<u8>> {
    let tone = sine(1000.0, 60 * 160);
    let mut sender = RtpSender::new(codec, pt, 0xABCD, 100, 1000);
    let mut out = Vec::new();
    for i in 0..60 {
        let mut buf = [0u8; PACKET_BYTES];
        let len = sender.packetize(&tone[i * 160..(i + 1) * 160], &mut buf);
        if !(25..35).contains(&i) {
            out.push(buf[..len].to_vec());
        }
    }
    out
}

async fn fake_uas(uas: Uas) -> (SocketAddr, JoinHandle<UasLog>) {
    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sip_addr = sip.local_addr().unwrap();
    let rtp_port = rtp.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut log = UasLog::default();
        let deadline = Instant::now() + Duration::from_secs(20);
        let (mut invite, mut caller_sip, mut caller_rtp) = (None::<Request>, None, None);
        let mut keys_ended = std::collections::BTreeSet::new();
        let (mut bye_at, mut stop_at) = (None, None);
        let mut buf = vec![0u8; 65_536];
        let mut rbuf = [0u8; 2048];
        loop {
            tokio::select! {
                _ = sleep_until(deadline) => panic!("fake UAS timed out: {log:?}"),
                _ = at(stop_at) => return log,
                _ = at(bye_at) => {
                    bye_at = None;
                    let inv: &Request = invite.as_ref().unwrap();
                    let contact = inv.headers.get("Contact").unwrap().trim_matches(['<', '>']);
                    let bye = format!(
                        "BYE {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {sip_addr};branch=z9hG4bKuasbye\r\n\
                         From: {};tag=uas1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 BYE\r\nMax-Forwards: 70\r\n\
                         Content-Length: 0\r\n\r\n",
                        inv.headers.get("To").unwrap(), inv.headers.get("From").unwrap(), inv.headers.get("Call-ID").unwrap());
                    sip.send_to(bye.as_bytes(), caller_sip.unwrap()).await.unwrap();
                }
                r = sip.recv_from(&mut buf) => {
                    let (n, from) = r.unwrap();
                    match parse_message(&buf[..n]).unwrap() {
                        Message::Response(resp) => {
                            log.our_bye_answer = Some(resp.status);
                            // Let RTP already in flight arrive.
                            stop_at = Some(Instant::now() + Duration::from_millis(150));
                        }
                        Message::Request(req) => match req.method {
                            Method::Invite => {
                                let offer = sdp::parse_offer(&req.body).unwrap();
                                caller_rtp = Some(SocketAddr::new(offer.connection, offer.port));
                                caller_sip = Some(from);
                                sip.send_to(&reply(&req, 100, "", ""), from).await.unwrap();
                                if let Some(status) = uas.reject {
                                    sip.send_to(&reply(&req, status, "", ""), from).await.unwrap();
                                } else {
                                    let name = if uas.answer_pt == 0 { "PCMU" } else { "PCMA" };
                                    let body = format!(
                                        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                                         m=audio {rtp_port} RTP/AVP {} 101\r\na=rtpmap:{} {name}/8000\r\n\
                                         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
                                        uas.answer_pt, uas.answer_pt);
                                    let extra = format!("Contact: <sip:uas@{sip_addr}>\r\nContent-Type: application/sdp\r\n");
                                    sip.send_to(&reply(&req, 200, &extra, &body), from).await.unwrap();
                                }
                                invite = Some(req);
                            }
                            Method::Ack => {
                                log.acked = true;
                                if uas.reject.is_some() {
                                    return log;
                                }
                                if uas.echo {
                                    let codec = if uas.answer_pt == 0 { Codec::Pcmu } else { Codec::Pcma };
                                    for p in echo_packets(codec, uas.answer_pt) {
                                        rtp.send_to(&p, caller_rtp.unwrap()).await.unwrap();
                                    }
                                }
                            }
                            Method::Info => {
                                log.infos.push(String::from_utf8(req.body.clone()).unwrap());
                                sip.send_to(&reply(&req, 200, "", ""), from).await.unwrap();
                                if uas.bye_after_keys == Some(log.infos.len()) {
                                    bye_at = Some(Instant::now() + Duration::from_millis(200));
                                }
                            }
                            Method::Bye => {
                                log.bye_from_caller = true;
                                sip.send_to(&reply(&req, 200, "", ""), from).await.unwrap();
                                stop_at = Some(Instant::now() + Duration::from_millis(150));
                            }
                            m => panic!("fake UAS got unexpected {m}"),
                        },
                    }
                }
                r = rtp.recv_from(&mut rbuf) => {
                    let (n, _) = r.unwrap();
                    let p = rtp::parse(&rbuf[..n]).unwrap();
                    if p.payload_type == 101 && p.payload[1] & 0x80 != 0 {
                        keys_ended.insert(p.timestamp);
                        if uas.bye_after_keys == Some(keys_ended.len()) && bye_at.is_none() && log.our_bye_answer.is_none() {
                            bye_at = Some(Instant::now() + Duration::from_millis(200));
                        }
                    }
                    log.rtp.push(Pkt { pt: p.payload_type, marker: p.marker, seq: p.sequence, ts: p.timestamp, ssrc: p.ssrc, payload: p.payload.to_vec() });
                }
            }
        }
    });
    (sip_addr, task)
}

/// Sequence +1 per packet and one SSRC across audio and events.
fn assert_one_stream(rtp: &[Pkt]) {
    for w in rtp.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "sequence gap at {w:?}");
        assert_eq!(w[1].ssrc, w[0].ssrc);
    }
}

#[tokio::test]
async fn call_streams_the_file_sends_rfc4733_keys_and_ends_on_remote_bye() {
    let (uas_sip, uas) = fake_uas(Uas {
        answer_pt: 0,
        reject: None,
        bye_after_keys: Some(2),
        echo: true,
    })
    .await;
    let (wav, pcm) = sine_wav("rfc2833.wav");
    let saved = tmp("rfc2833-received.wav");
    let mut a = args(format!("sip:record@{uas_sip}"), wav);
    a.dtmf = Some("1#".into());
    a.save_received = Some(saved.clone());
    let report = run(a).await.unwrap();
    let log = uas.await.unwrap();

    assert!(log.acked);
    assert_eq!(
        (report.status, report.ended_by, report.dtmf_sent),
        (200, EndedBy::Remote, 2)
    );
    assert_eq!(report.packets_sent, log.rtp.len() as u64);
    assert_eq!(report.packets_received, 50);
    let rtp = &log.rtp;
    assert_one_stream(rtp);
    // Layout: 50 file packets, '1' (11 events), 5 silence, '#' (11 events), silence.
    let kinds: Vec<u8> = rtp.iter().map(|p| p.pt).collect();
    assert_eq!(
        kinds[..77],
        [[0u8; 50].as_slice(), &[101; 11], &[0; 5], &[101; 11]].concat()
    );
    assert!(
        kinds[77..].len() >= 5 && kinds[77..].iter().all(|&pt| pt == 0),
        "{kinds:?}"
    );
    let markers: Vec<usize> = rtp
        .iter()
        .enumerate()
        .filter(|(_, p)| p.marker)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(markers, vec![0, 50, 61, 66, 77]);
    // The file is sent as-is, then silence.
    let mut first = [0u8; 160];
    g711::encode(Codec::Pcmu, &pcm[..160], &mut first);
    assert_eq!(rtp[0].payload, first);
    assert!(rtp[50..]
        .iter()
        .filter(|p| p.pt == 0)
        .all(|p| p.payload == [0xFF; 160]));
    // Audio clock: +160 per packet, and it keeps running through each 11-packet event.
    let t0 = rtp[0].ts;
    for (i, p) in rtp.iter().enumerate() {
        let expect = match i {
            0..=49 => i as u32 * 160,
            50..=60 => 50 * 160,
            66..=76 => (50 + 16) * 160,
            _ => i as u32 * 160,
        };
        assert_eq!(p.ts.wrapping_sub(t0), expect, "timestamp of packet {i}");
    }
    for (start, code) in [(50, 1u8), (66, 11)] {
        let events: Vec<&[u8]> = rtp[start..start + 11]
            .iter()
            .map(|p| p.payload.as_slice())
            .collect();
        for (k, ev) in events.iter().enumerate() {
            let end = k >= 8;
            let duration = 160 * (k as u16 + 1).min(8);
            let d = duration.to_be_bytes();
            assert_eq!(
                *ev,
                [code, if end { 0x80 | 10 } else { 10 }, d[0], d[1]],
                "event packet {k}"
            );
        }
    }

    let reader = hound::WavReader::open(&saved).unwrap();
    assert_eq!(
        (
            reader.spec().sample_rate,
            reader.spec().channels,
            reader.spec().bits_per_sample
        ),
        (8000, 1, 16)
    );
    let got: Vec<i16> = reader.into_samples::<i16>().map(Result::unwrap).collect();
    assert_eq!(got.len(), 60 * 160, "timeline spans the hole");
    assert!(
        got[4000..5600].iter().all(|&s| s == 0),
        "the 200 ms hole is silence"
    );
    assert!(
        got[..4000]
            .iter()
            .chain(&got[5600..])
            .map(|s| s.unsigned_abs())
            .max()
            > Some(7000)
    );
}

#[tokio::test]
async fn info_mode_sends_dtmf_relay_and_local_hangup_ends_the_call() {
    let (uas_sip, uas) = fake_uas(Uas {
        answer_pt: 8,
        reject: None,
        bye_after_keys: None,
        echo: false,
    })
    .await;
    let (wav, _) = sine_wav("info.wav");
    let mut a = args(format!("sip:record@{uas_sip}"), wav);
    a.dtmf = Some("5".into());
    a.dtmf_mode = DtmfMode::Info;
    a.dtmf_at = Some(0.2);
    a.hangup_after = Some(1.0);
    let report = run(a).await.unwrap();
    let log = uas.await.unwrap();

    assert_eq!(log.infos, vec!["Signal=5\r\nDuration=160\r\n".to_string()]);
    assert!(log.bye_from_caller);
    assert_eq!(
        (report.status, report.ended_by, report.dtmf_sent),
        (200, EndedBy::Local, 1)
    );
    assert_eq!(report.packets_sent, log.rtp.len() as u64);
    assert!(
        (45..=50).contains(&log.rtp.len()),
        "1 s of 20 ms packets, got {}",
        log.rtp.len()
    );
    assert_one_stream(&log.rtp);
    assert!(log.rtp.iter().all(|p| p.pt == 8 && p.payload.len() == 160));
    assert!(log.rtp[0].marker && log.rtp[1..].iter().all(|p| !p.marker));
    for w in log.rtp.windows(2) {
        assert_eq!(w[1].ts.wrapping_sub(w[0].ts), 160);
    }
}

#[tokio::test]
async fn rejected_call_is_acked_and_returns_the_status() {
    let (uas_sip, uas) = fake_uas(Uas {
        answer_pt: 0,
        reject: Some(486),
        bye_after_keys: None,
        echo: false,
    })
    .await;
    let (wav, _) = sine_wav("reject.wav");
    let err = run(args(format!("sip:record@{uas_sip}"), wav))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallerError::Rejected { status: 486, .. }),
        "{err}"
    );
    assert!(uas.await.unwrap().acked);
}

#[tokio::test]
async fn silent_server_hits_the_timeout() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (wav, _) = sine_wav("timeout.wav");
    let mut a = args(format!("sip:record@{}", silent.local_addr().unwrap()), wav);
    a.timeout = 0.3;
    let started = std::time::Instant::now();
    let err = run(a).await.unwrap_err();
    assert!(
        matches!(
            err,
            CallerError::Timeout {
                stage: "before the call was answered",
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn target_uri_needs_sip_scheme_and_defaults_to_port_5060() {
    assert_eq!(
        parse_target("sip:record@127.0.0.1").unwrap(),
        ("127.0.0.1".into(), 5060)
    );
    assert_eq!(
        parse_target("sip:r@[::1]:5070;transport=udp").unwrap(),
        ("::1".into(), 5070)
    );
    assert_eq!(
        parse_target("SIP:host.example:5080").unwrap(),
        ("host.example".into(), 5080)
    );
    for bad in ["sips:r@h", "tel:+1555", "record@h", "sip:", "sip:r@h:99999"] {
        assert!(
            matches!(parse_target(bad), Err(CallerError::BadUri { .. })),
            "{bad}"
        );
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    call: CallArgs,
}

#[test]
fn cli_defaults_and_dtmf_mode_values() {
    let c = Cli::try_parse_from(["call", "sip:r@127.0.0.1", "--play", "a.wav"])
        .unwrap()
        .call;
    assert_eq!(
        (c.dtmf_mode, c.timeout, c.bind),
        (
            DtmfMode::Rfc2833,
            300.0,
            "127.0.0.1".parse::<IpAddr>().unwrap()
        )
    );
    assert!(c.dtmf.is_none() && c.hangup_after.is_none() && c.save_received.is_none());
    let c = Cli::try_parse_from([
        "call",
        "sip:r@h",
        "--play",
        "a.wav",
        "--dtmf",
        "12#",
        "--dtmf-at",
        "1.5",
        "--dtmf-mode",
        "info",
    ])
    .unwrap()
    .call;
    assert_eq!(
        (c.dtmf.as_deref(), c.dtmf_at, c.dtmf_mode),
        (Some("12#"), Some(1.5), DtmfMode::Info)
    );
    assert!(
        Cli::try_parse_from(["call", "sip:r@h"]).is_err(),
        "--play is required"
    );
    assert!(
        Cli::try_parse_from(["call", "sip:r@h", "--play", "a", "--dtmf-at", "1"]).is_err(),
        "--dtmf-at needs --dtmf"
    );
}

#[test]
fn bad_keys_and_negative_times_are_rejected_by_name() {
    let mut a = args("sip:r@h".into(), "a.wav".into());
    a.dtmf = Some("1x".into());
    assert!(matches!(
        Plan::new(&a),
        Err(CallerError::BadArg { name: "dtmf", .. })
    ));
    a.dtmf = Some("abc*#".into());
    assert_eq!(Plan::new(&a).unwrap().keys, vec!['A', 'B', 'C', '*', '#']);
    a.hangup_after = Some(-1.0);
    assert!(matches!(
        Plan::new(&a),
        Err(CallerError::BadArg {
            name: "hangup-after",
            ..
        })
    ));
    a.hangup_after = None;
    a.timeout = f64::NAN;
    assert!(matches!(
        Plan::new(&a),
        Err(CallerError::BadArg {
            name: "timeout",
            ..
        })
    ));
}
