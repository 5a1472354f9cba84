//! The session driven in simulated time with frames shaped as the SDK 2.18.5 sends them.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;
use crate::token::OutgoingGrant;

include!("../../tests/data/tokens.rs");

const NOW: u64 = 1_764_960_000;
const ACCOUNT: &str = "AC00000000000000000000000000000001";
const KEY: &str = "SK00000000000000000000000000000001";
const SECRET: &str = "hark-test-secret-0123456789abcdef";
const APP: &str = "AP00000000000000000000000000000001";
const TEMP: &str = "TJSce7d3a8e-1c0b-4d2e-9b0c-2f1e4c3a2b1d";
const CALL: &str = "CA00000000000000000000000000000042";

fn config() -> SessionConfig {
    SessionConfig {
        api_keys: vec![ApiKey {
            sid: KEY.into(),
            secret: SECRET.into(),
        }],
        application_sids: vec![APP.into()],
        ..SessionConfig::new(ACCOUNT)
    }
}

/// A session and a simulated clock; `out` collects what it said.
struct Harness {
    session: Session,
    start: Instant,
    now: Instant,
}

#[derive(Debug, Default)]
struct Drained {
    frames: Vec<Value>,
    heartbeats: usize,
    events: Vec<SessionEvent>,
}

impl Drained {
    fn types(&self) -> Vec<&str> {
        self.frames
            .iter()
            .map(|f| f["type"].as_str().unwrap_or("?"))
            .collect()
    }
}

impl Harness {
    fn new() -> Self {
        let start = Instant::now();
        Self {
            session: Session::new(start, NOW, config()),
            start,
            now: start,
        }
    }

    fn at(&mut self, secs: u64) {
        self.now = self.start + Duration::from_secs(secs);
    }

    fn drain(&mut self) -> Drained {
        let mut d = Drained::default();
        while let Some(out) = self.session.poll_output() {
            match out {
                SessionOutput::Send(text) if text == "\n" => d.heartbeats += 1,
                SessionOutput::Send(text) => {
                    let v: Value = serde_json::from_str(&text).expect("server frames are JSON");
                    assert_eq!(v["version"], "1.6");
                    d.frames.push(v);
                }
                SessionOutput::Event(e) => d.events.push(e),
            }
        }
        d
    }

    fn client(&mut self, text: &str) -> Drained {
        self.session.handle_text(self.now, text);
        self.drain()
    }

    fn frame(&mut self, kind: &str, payload: Value) -> Drained {
        let text = json!({"payload": payload, "type": kind, "version": "1.6"}).to_string();
        self.client(&text)
    }

    fn listen(&mut self, token: &str) -> Drained {
        self.frame(
            "listen",
            json!({
                "browserinfo": {"browser": {"platform": "Linux x86_64", "userAgent": "Mozilla/5.0 HeadlessChrome"},
                                "p": "browser", "plugin": "rtc", "v": "2.18.5"},
                "reconnectTimeout": 0,
                "token": token,
            }),
        )
    }

    fn register(&mut self, audio: bool) -> Drained {
        self.frame("register", json!({"media": {"audio": audio}}))
    }

    /// Runs timers up to `secs`, echoing every heartbeat as the SDK does.
    fn run_until(&mut self, secs: u64) -> Drained {
        let end = self.start + Duration::from_secs(secs);
        let mut all = Drained::default();
        while let Some(at) = self.session.poll_timeout() {
            if at > end {
                break;
            }
            self.now = at;
            self.session.handle_timeout(at);
            let d = self.drain();
            let echo = d.heartbeats > 0;
            all.frames.extend(d.frames);
            all.heartbeats += d.heartbeats;
            all.events.extend(d.events);
            if echo {
                self.session.handle_text(self.now, "\n");
            }
        }
        self.now = end;
        all
    }
}

#[test]
fn valid_listen_gets_connected_with_identity_and_ttl() {
    let mut h = Harness::new();
    h.at(10);
    let d = h.listen(FULL);
    assert_eq!(
        d.frames,
        vec![
            json!({"type":"connected","version":"1.6","payload":{"token":{"identity":"alice","ttl":590}}})
        ]
    );
    assert_eq!(
        d.events,
        vec![SessionEvent::Listened {
            identity: "alice".into(),
            grants: VoiceGrant {
                incoming_allow: true,
                outgoing: Some(OutgoingGrant {
                    application_sid: APP.into(),
                    params: vec![("x".into(), "y".into())],
                }),
            },
        }]
    );
    assert_eq!(h.session.identity(), Some("alice"));
}

#[test]
fn refused_token_gets_error_without_connected_and_update_token_recovers() {
    let mut h = Harness::new();
    let d = h.listen(FORGED);
    assert_eq!(
        d.frames,
        vec![
            json!({"type":"error","version":"1.6","payload":{"error":{"code":31204,"message":"JWT is invalid"}}})
        ]
    );
    assert!(d.events.is_empty());
    assert!(!h.session.is_closed());
    // `device.updateToken()` sends a new `listen` on the same socket.
    let d = h.listen(FULL);
    assert_eq!(d.types(), ["connected"]);
}

#[test]
fn expired_and_too_long_tokens_carry_their_codes() {
    let mut h = Harness::new();
    h.at(700);
    let d = h.listen(FULL);
    assert_eq!(d.frames[0]["payload"]["error"]["code"], 31205);
    let d = h.listen(TWO_DAYS);
    assert_eq!(d.frames[0]["payload"]["error"]["code"], 31207);
}

#[test]
fn register_answers_ready_each_time_and_reports_once() {
    let mut h = Harness::new();
    h.listen(FULL);
    let d = h.register(true);
    assert_eq!(d.types(), ["ready"]);
    assert_eq!(d.events, [SessionEvent::Registered]);
    // The SDK re-registers every 30 s.
    h.at(30);
    let d = h.register(true);
    assert_eq!(d.types(), ["ready"]);
    assert!(d.events.is_empty());
    assert!(h.session.is_registered());
    let d = h.register(false);
    assert_eq!(d.types(), ["offline"]);
    assert_eq!(d.events, [SessionEvent::Unregistered]);
}

#[test]
fn register_before_listen_is_31204() {
    let mut h = Harness::new();
    let d = h.register(true);
    assert_eq!(d.types(), ["error"]);
    assert_eq!(d.frames[0]["payload"]["error"]["code"], 31204);
    assert!(d.events.is_empty());
}

#[test]
fn register_without_incoming_grant_is_refused_and_offline() {
    let mut h = Harness::new();
    h.listen(OUTGOING_ONLY);
    let d = h.register(true);
    assert_eq!(d.types(), ["error", "offline"]);
    assert_eq!(d.frames[0]["payload"]["error"]["code"], 31201);
    assert!(!h.session.is_registered());
}

fn outgoing_invite(h: &mut Harness, params: Value) -> Drained {
    h.frame(
        "invite",
        json!({"callsid": TEMP, "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n", "twilio": params}),
    )
}

#[test]
fn outgoing_call_params_ringing_answer_and_hangup_by_temp_id() {
    let mut h = Harness::new();
    h.listen(FULL);
    // `x` is also a token param: the token's value wins.
    let d = outgoing_invite(&mut h, json!({"params": "To=rec&x=page&note=a%20b"}));
    assert!(d.frames.is_empty());
    assert_eq!(
        d.events,
        [SessionEvent::Invite {
            temp_callsid: TEMP.into(),
            sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n".into(),
            params: vec![
                ("To".into(), "rec".into()),
                ("note".into(), "a b".into()),
                ("x".into(), "y".into()),
            ],
            application_sid: APP.into(),
        }]
    );
    h.session.ringing(h.now, TEMP, CALL).unwrap();
    h.session
        .answer(h.now, TEMP, CALL, "v=0 answer", None)
        .unwrap();
    let d = h.drain();
    assert_eq!(
        d.frames,
        [
            json!({"type":"ringing","version":"1.6","payload":{"callsid":CALL}}),
            json!({"type":"answer","version":"1.6","payload":{"callsid":CALL,"sdp":"v=0 answer"}}),
        ]
    );
    // A hangup racing the ringing may still carry the temporary id.
    let d = h.frame("hangup", json!({"callsid": TEMP}));
    assert_eq!(
        d.events,
        [SessionEvent::Hangup {
            callsid: CALL.into(),
            message: None
        }]
    );
    // Our own hangup for the gone call is refused, not sent.
    assert_eq!(
        h.session.hangup(h.now, CALL, None),
        Err(CallError::UnknownCall(CALL.into()))
    );
}

#[test]
fn invite_without_outgoing_grant_or_unknown_application_is_hung_up() {
    let mut h = Harness::new();
    h.listen(INCOMING_ONLY);
    let d = outgoing_invite(&mut h, json!({}));
    assert_eq!(d.types(), ["hangup"]);
    assert_eq!(d.frames[0]["payload"]["callsid"], TEMP);
    assert_eq!(d.frames[0]["payload"]["error"]["code"], 31201);
    assert!(d.events.is_empty());

    let mut h = Harness::new();
    h.session.config.application_sids.clear();
    h.listen(FULL);
    let d = outgoing_invite(&mut h, json!({}));
    assert_eq!(d.frames[0]["payload"]["error"]["code"], 31201);
}

#[test]
fn invite_before_listen_is_hung_up_with_31204() {
    let mut h = Harness::new();
    let d = outgoing_invite(&mut h, json!({}));
    assert_eq!(d.types(), ["hangup"]);
    assert_eq!(d.frames[0]["payload"]["error"]["code"], 31204);
}

#[test]
fn heartbeat_every_10s_of_server_silence() {
    let mut h = Harness::new();
    assert_eq!(
        h.session.poll_timeout_reason(),
        Some((h.start + Duration::from_secs(10), TimerReason::Heartbeat))
    );
    let d = h.run_until(35);
    assert_eq!(d.heartbeats, 3);
    assert!(d.events.is_empty());
    // Frames in between do not shift the beat: the echoes are the client's only sign of life.
    h.at(35);
    h.listen(FULL);
    assert_eq!(
        h.session.poll_timeout_reason(),
        Some((h.start + Duration::from_secs(40), TimerReason::Heartbeat))
    );
}

#[test]
fn busy_signalling_still_gets_heartbeats_and_echoes() {
    let mut h = Harness::new();
    h.listen(FULL);
    // We send a frame every 5 s for a minute and the client only echoes heartbeats: were the
    // heartbeat skipped while frames flow, the client would look silent and be closed at 30 s.
    for t in (5..=60).step_by(5) {
        h.run_until(t);
        h.session
            .send_error(h.now, SignalError::new(31000, "test"), None);
        h.drain();
    }
    assert!(!h.session.is_closed());
}

#[test]
fn silent_client_is_closed_after_30s() {
    let mut h = Harness::new();
    h.listen(FULL);
    h.register(true);
    // Heartbeats go out but the client never echoes.
    let mut heartbeats = 0;
    while let Some(at) = h.session.poll_timeout() {
        h.session.handle_timeout(at);
        let d = h.drain();
        heartbeats += d.heartbeats;
        if !d.events.is_empty() {
            assert_eq!(at, h.start + Duration::from_secs(30));
            assert_eq!(d.events, [SessionEvent::Unregistered, SessionEvent::Closed]);
        }
    }
    assert_eq!(heartbeats, 2);
    assert!(h.session.is_closed());
    assert_eq!(h.session.poll_timeout(), None);
}

#[test]
fn token_expiry_while_listening_sends_31205_and_offline() {
    let mut h = Harness::new();
    h.listen(FULL);
    h.register(true);
    let d = h.run_until(599);
    assert!(d.frames.is_empty());
    let d = h.run_until(600);
    assert_eq!(d.types(), ["error", "offline"]);
    assert_eq!(
        d.frames[0]["payload"]["error"],
        json!({"code": 31205, "message": "JWT token expired"})
    );
    assert_eq!(
        d.events,
        [SessionEvent::Unregistered, SessionEvent::TokenExpired]
    );
    // The SDK's register timer may still fire once: 31205 again.
    let d = h.register(true);
    assert_eq!(d.frames[0]["payload"]["error"]["code"], 31205);
    // The socket stays open for `updateToken()`.
    assert!(!h.session.is_closed());
}

#[test]
fn token_update_replaces_the_expiry() {
    let mut h = Harness::new();
    h.listen(FULL);
    h.at(300);
    let d = h.listen(INCOMING_ONLY);
    assert_eq!(
        d.frames,
        [
            json!({"type":"connected","version":"1.6","payload":{"token":{"identity":"bob","ttl":300}}})
        ]
    );
    assert_eq!(h.session.identity(), Some("bob"));
}

#[test]
fn identity_change_on_update_unregisters() {
    let mut h = Harness::new();
    h.listen(FULL);
    h.register(true);
    let d = h.listen(INCOMING_ONLY);
    assert_eq!(d.events[0], SessionEvent::Unregistered);
    assert!(!h.session.is_registered());
    // Same identity keeps the registration.
    let mut h = Harness::new();
    h.listen(FULL);
    h.register(true);
    let d = h.listen(NO_NBF);
    assert_eq!(d.events.len(), 1);
    assert!(h.session.is_registered());
}

fn incoming_params() -> IncomingParameters {
    IncomingParameters {
        call_sid: CALL.into(),
        account_sid: ACCOUNT.into(),
        from: "+15551234567".into(),
        to: "client:alice".into(),
        params: vec![("k".into(), "v".into())],
    }
}

fn incoming(h: &mut Harness) {
    h.session
        .invite_client(h.now, CALL, "v=0 offer", incoming_params(), None)
        .unwrap();
}

#[test]
fn incoming_call_needs_registration() {
    let mut h = Harness::new();
    h.listen(FULL);
    assert_eq!(
        h.session
            .invite_client(h.now, CALL, "v=0", incoming_params(), None),
        Err(CallError::NotRegistered)
    );
}

#[test]
fn incoming_call_accepted_then_hung_up_by_us() {
    let mut h = Harness::new();
    h.listen(FULL);
    h.register(true);
    incoming(&mut h);
    let d = h.drain();
    assert_eq!(
        d.frames,
        [json!({"type":"invite","version":"1.6","payload":{
            "callsid": CALL, "sdp": "v=0 offer",
            "parameters": {"CallSid": CALL, "AccountSid": ACCOUNT, "From": "+15551234567",
                           "To": "client:alice", "Params": "k=v"}}})]
    );
    let d = h.frame("answer", json!({"sdp": "v=0 answer", "callsid": CALL}));
    assert_eq!(
        d.events,
        [SessionEvent::Answer {
            callsid: CALL.into(),
            sdp: "v=0 answer".into()
        }]
    );
    h.session.hangup(h.now, CALL, None).unwrap();
    let d = h.drain();
    assert_eq!(
        d.frames,
        [json!({"type":"hangup","version":"1.6","payload":{"callsid":CALL}})]
    );
    // The SDK does not answer our hangup, but if one crosses it is ignored.
    let d = h.frame("hangup", json!({"callsid": CALL}));
    assert!(d.frames.is_empty() && d.events.is_empty());
}

#[test]
fn incoming_call_rejected_or_cancelled() {
    let mut h = Harness::new();
    h.listen(FULL);
    h.register(true);
    incoming(&mut h);
    h.drain();
    let d = h.frame("reject", json!({"callsid": CALL}));
    assert_eq!(
        d.events,
        [SessionEvent::Reject {
            callsid: CALL.into()
        }]
    );
    // `call.ignore()` sends nothing: the ring timeout cancels.
    incoming(&mut h);
    h.drain();
    assert_eq!(
        h.session
            .invite_client(h.now, CALL, "v=0", incoming_params(), None),
        Err(CallError::DuplicateCall(CALL.into()))
    );
    h.session.cancel(h.now, CALL).unwrap();
    let d = h.drain();
    assert_eq!(
        d.frames,
        [json!({"type":"cancel","version":"1.6","payload":{"callsid":CALL}})]
    );
}

#[test]
fn dtmf_reinvite_and_message_on_a_call() {
    let mut h = Harness::new();
    h.listen(FULL);
    outgoing_invite(&mut h, json!({}));
    h.session.answer(h.now, TEMP, CALL, "v=0", None).unwrap();
    h.drain();
    let d = h.frame("dtmf", json!({"callsid": CALL, "dtmf": "1#"}));
    assert_eq!(
        d.events,
        [SessionEvent::Dtmf {
            callsid: CALL.into(),
            digits: "1#".into()
        }]
    );
    let d = h.frame("reinvite", json!({"sdp": "v=0 restart", "callsid": CALL}));
    assert_eq!(
        d.events,
        [SessionEvent::Reinvite {
            callsid: CALL.into(),
            sdp: "v=0 restart".into()
        }]
    );
    h.session
        .answer(h.now, CALL, CALL, "v=0 restarted", None)
        .unwrap();
    assert_eq!(h.drain().frames[0]["payload"]["sdp"], "v=0 restarted");
    let d = h.frame(
        "message",
        json!({"callsid": CALL, "content": {"hello": 1}, "contenttype": "application/json",
               "messagetype": "user-defined-message", "voiceeventsid": "KX1"}),
    );
    assert!(matches!(&d.events[..], [SessionEvent::Message(m)] if m.voice_event_sid == "KX1"));
    h.session.ack_message(h.now, CALL, "KX1").unwrap();
    assert_eq!(
        h.drain().frames,
        [
            json!({"type":"ack","version":"1.6","payload":{"acktype":"message","callsid":CALL,"voiceeventsid":"KX1"}})
        ]
    );
}

#[test]
fn frames_for_unknown_calls_get_an_error_naming_the_call() {
    let mut h = Harness::new();
    h.listen(FULL);
    let d = h.frame("answer", json!({"sdp": "v=0", "callsid": "CAnope"}));
    assert_eq!(d.types(), ["error"]);
    assert_eq!(d.frames[0]["payload"]["callsid"], "CAnope");
    assert!(d.events.is_empty());
    let d = h.frame("reject", json!({"callsid": "CAnope"}));
    assert!(d.frames.is_empty() && d.events.is_empty());
}

#[test]
fn reconnect_invite_rebinds_the_call() {
    let mut h = Harness::new();
    h.listen(FULL);
    let d = h.frame(
        "invite",
        json!({"callsid": CALL, "reconnect": "rc-1", "sdp": "v=0", "twilio": {}}),
    );
    assert_eq!(
        d.events,
        [SessionEvent::Reconnect {
            callsid: CALL.into(),
            reconnect: "rc-1".into(),
            sdp: "v=0".into()
        }]
    );
    h.session
        .answer(h.now, CALL, CALL, "v=0", Some("rc-2"))
        .unwrap();
    assert_eq!(h.drain().frames[0]["payload"]["reconnect"], "rc-2");
}

/// `device.updateToken()` mid-call: a new `listen` on the same socket, `connected`, and the
/// call's reconnect invite for a call this connection already has; the answer has no SDP.
#[test]
fn token_update_mid_call_reconnects_on_the_same_connection() {
    let mut h = Harness::new();
    h.listen(FULL);
    h.frame(
        "invite",
        json!({"callsid": "TJSabc", "sdp": "v=0", "twilio": {"params": "To=x"}}),
    );
    h.session
        .answer(h.now, "TJSabc", CALL, "v=0 answer", Some("rc-1"))
        .unwrap();
    h.drain();
    let d = h.listen(FULL);
    assert_eq!(d.types(), ["connected"]);
    let d = h.frame(
        "invite",
        json!({"callsid": CALL, "reconnect": "rc-1", "sdp": "v=0", "twilio": {}}),
    );
    assert!(d.frames.is_empty(), "not refused: {:?}", d.frames);
    assert!(matches!(&d.events[..], [SessionEvent::Reconnect { callsid, .. }] if callsid == CALL));
    h.session.reconnected(h.now, CALL, "rc-2").unwrap();
    let f = &h.drain().frames[0];
    assert_eq!(
        (f["type"].as_str(), f["payload"]["callsid"].as_str()),
        (Some("answer"), Some(CALL))
    );
    assert_eq!(f["payload"]["reconnect"], "rc-2");
    assert!(f["payload"].get("sdp").is_none_or(|s| s.is_null()), "{f}");
    // A second, ordinary invite with the same id is still refused.
    let d = h.frame(
        "invite",
        json!({"callsid": CALL, "sdp": "v=0", "twilio": {}}),
    );
    assert_eq!(d.types(), ["hangup"]);
}

#[test]
fn malformed_and_unknown_frames_get_an_error_and_the_session_goes_on() {
    let mut h = Harness::new();
    for text in [
        "{oops",
        r#"{"type":"close","version":"1.6","payload":{}}"#,
        r#"{"type":"register","version":"1.6","payload":{}}"#,
    ] {
        let d = h.client(text);
        assert_eq!(d.types(), ["error"], "{text}");
        assert_eq!(d.frames[0]["payload"]["error"]["code"], 31400);
    }
    assert_eq!(h.listen(FULL).types(), ["connected"]);
}

#[test]
fn close_reports_once() {
    let mut h = Harness::new();
    h.listen(FULL);
    h.register(true);
    h.session.handle_close(h.now);
    h.session.handle_close(h.now);
    let d = h.drain();
    assert_eq!(d.events, [SessionEvent::Unregistered, SessionEvent::Closed]);
    assert_eq!(h.session.ringing(h.now, TEMP, CALL), Err(CallError::Closed));
    assert!(h.client("\n").events.is_empty());
}
