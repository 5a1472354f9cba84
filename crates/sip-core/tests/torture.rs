//! RFC 4475 (SIP torture tests) and RFC 5118 (IPv6 torture tests), byte for byte
//! (`tests/torture/`, provenance in its EXPECTED.md): each message is fed to an endpoint on
//! simulated time, as a datagram from 127.0.0.1, and what it answers must be what the RFC says
//! (`tests/torture/expected.tsv`, one row per message). Whatever the endpoint did, its state
//! must drain afterwards.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sip_core::registrar::{Registrar, RegistrarConfig, SipUser};
use sip_core::{
    parse_message, CallEvent, Endpoint, EndpointConfig, Message, Output, Peer, Transport,
};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/torture")
}

/// What the endpoint did with one message.
#[derive(Debug, Default)]
struct Outcome {
    statuses: Vec<u16>,
    reasons: Vec<String>,
    allow: Vec<Option<String>>,
    incoming: usize,
    drained: bool,
}

impl Outcome {
    fn finals(&self) -> Vec<u16> {
        self.statuses
            .iter()
            .copied()
            .filter(|s| *s >= 200)
            .collect()
    }
    /// What a message that is processed normally led to: a call, or its final status.
    fn accepted_as(&self) -> String {
        match (self.incoming, self.finals().as_slice()) {
            (1, []) => "incoming".into(),
            (0, [status]) => status.to_string(),
            _ => format!("{self:?}"),
        }
    }
}

fn feed(bytes: &[u8]) -> Outcome {
    let mut config = EndpointConfig::new("127.0.0.1:5060".parse().expect("addr"));
    config.seed = 4475;
    config.opus = true;
    let start = Instant::now();
    let mut ep = Endpoint::new(config);
    let users = vec![SipUser {
        username: "user".into(),
        password: "a long secret".into(),
    }];
    ep.set_registrar(
        start,
        Registrar::new(RegistrarConfig::new("hark", users), [9; 32]),
    );
    let peer = Peer {
        transport: Transport::Udp,
        addr: "127.0.0.1:5070".parse().expect("addr"),
        conn: 0,
    };
    ep.handle_input(start, peer, bytes);
    let mut out = Outcome::default();
    let mut calls = Vec::new();
    while let Some(o) = ep.poll_output() {
        match o {
            Output::Transmit { bytes, .. } => {
                let Ok(Message::Response(r)) = parse_message(&bytes) else {
                    panic!("the endpoint sent something it cannot parse itself");
                };
                out.statuses.push(r.status);
                out.reasons.push(r.reason.clone());
                out.allow.push(r.headers.get("Allow").map(str::to_string));
            }
            Output::Event(CallEvent::Incoming(call)) => {
                out.incoming += 1;
                calls.push(call.call);
            }
            Output::Event(_) | Output::Rejected { .. } | Output::Security(_) => {}
        }
    }
    // A call the message started is refused by the application; then every timer runs out.
    for call in calls {
        let _ = ep.reject(start, call, 486);
    }
    let mut now = start;
    for _ in 0..1000 {
        while ep.poll_output().is_some() {}
        let Some(at) = ep.poll_timeout() else { break };
        now = now.max(at);
        ep.handle_timeout(now);
    }
    ep.handle_timeout(now + Duration::from_secs(600));
    out.drained = ep.state_size() == (0, 0) && ep.call_count() == 0;
    out
}

struct Row {
    rfc: String,
    name: String,
    kind: String,
    expected: String,
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(corpus().join("expected.tsv")).expect("expected.tsv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(f.len() >= 4, "expected.tsv row {l:?}");
            Row {
                rfc: f[0].into(),
                name: f[1].into(),
                kind: f[2].into(),
                expected: f[3].into(),
            }
        })
        .collect()
}

/// The bytes of a row; RFC 5118 rows use their on-the-wire copy (CRLF, Content-Length set).
fn message(row: &Row) -> Vec<u8> {
    let path = match row.rfc.as_str() {
        "rfc5118" => corpus()
            .join("rfc5118/wire")
            .join(format!("{}.dat", row.name)),
        _ => corpus().join(&row.rfc).join(format!("{}.dat", row.name)),
    };
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What a message the RFC calls acceptable leads to in Hark: a call (`incoming`), or the
/// final response of normal processing (REGISTER is challenged first, OPTIONS answered 200,
/// a request with a To-tag outside any dialog 481).
fn accepted(rfc: &str, name: &str) -> &'static str {
    match (rfc, name) {
        ("rfc4475", "esc01" | "longreq" | "baddate" | "escruri" | "inv2543") => "incoming",
        ("rfc5118", "mult-ip-in-sdp") => "incoming",
        ("rfc4475", "cparam01" | "cparam02" | "dblreq" | "escnull" | "regescrt" | "regbadct") => {
            "401"
        }
        ("rfc5118", "ipv6-good" | "port-ambiguous" | "port-unambiguous") => "401",
        ("rfc4475", "wsinv") => "481",
        ("rfc5118", "mult-ip-in-header" | "via-received-param-with-delim") => "481",
        _ => "200",
    }
}

#[test]
fn every_torture_message_is_handled_as_its_rfc_says() {
    let rows = rows();
    assert_eq!(
        rows.iter().filter(|r| r.rfc == "rfc4475").count(),
        50,
        "every RFC 4475 message"
    );
    assert_eq!(
        rows.iter().filter(|r| r.rfc == "rfc5118").count(),
        12,
        "every RFC 5118 message"
    );
    let mut failures = Vec::new();
    for row in &rows {
        let bytes = message(row);
        let out = feed(&bytes);
        let id = format!("{}/{}", row.rfc, row.name);
        if !out.drained {
            failures.push(format!("{id}: state did not drain"));
        }
        let ok = match row.expected.as_str() {
            "accept" => out.accepted_as() == accepted(&row.rfc, &row.name),
            "accept-or-400" => {
                out.finals() == [400] || out.accepted_as() == accepted(&row.rfc, &row.name)
            }
            "drop" => {
                if row.kind == "response" && !matches!(row.name.as_str(), "scalarlg" | "bigcode") {
                    // Well-formed responses parse; they match no transaction of ours.
                    if parse_message(&bytes).is_err() {
                        failures.push(format!("{id}: a valid response did not parse"));
                    }
                }
                out.statuses.is_empty() && out.incoming == 0
            }
            status => {
                let status: u16 = status.parse().expect("a status in expected.tsv");
                let allow_ok = !matches!(status, 405 | 501)
                    || out.allow.last().is_some_and(|a| {
                        a.as_deref() == Some("INVITE, ACK, BYE, CANCEL, OPTIONS, INFO")
                    });
                out.finals() == [status] && out.incoming == 0 && allow_ok
            }
        };
        if !ok {
            failures.push(format!(
                "{id} ({}, expected {}): {:?} {:?} incoming {}",
                row.kind, row.expected, out.statuses, out.reasons, out.incoming
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The archive's RFC 5118 files as they are (bare LF line ends, three wrong Content-Lengths,
/// two without the empty line): never a panic, and each is answered or dropped, never a call
/// from a message whose framing is wrong.
#[test]
fn rfc5118_archive_bytes_as_they_are_are_answered_or_dropped() {
    for row in rows().iter().filter(|r| r.rfc == "rfc5118") {
        let path = corpus().join("rfc5118").join(format!("{}.dat", row.name));
        let bytes = std::fs::read(&path).expect("archive file");
        let out = feed(&bytes);
        assert!(out.drained, "{}", row.name);
        if row.name == "ipv6-in-sdp" {
            assert_eq!(out.finals(), [400], "Content-Length beyond the body");
        }
    }
}
