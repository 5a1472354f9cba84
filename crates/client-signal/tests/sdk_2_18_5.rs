//! Protocol conformance with `@twilio/voice-sdk` 2.18.5, the version Hark pins.
//!
//! Each test replays, byte for byte, the text frames the SDK writes for one user flow (built by
//! `pstream.ts` as `JSON.stringify({payload, type, version: "1.6"})`, payload keys in the SDK's
//! order) and checks each server frame against what the SDK reads (`device.ts`, `call.ts`:
//! `connected.token.{identity,ttl}`, `ready`, `offline`, `ringing.callsid`, `answer.{callsid,sdp}`,
//! `invite.{callsid,sdp,parameters}`, `cancel.callsid`, `hangup.{callsid,error}`,
//! `error.error.{code,message}`), plus the heartbeat the SDK's 15 s watchdog needs.
//! When the pin moves, re-read those files and update the frames here.

use std::time::{Duration, Instant};

use client_signal::{
    ApiKey, IncomingParameters, ServerFrame, Session, SessionConfig, SessionEvent, SessionOutput,
};
use serde_json::{json, Value};

include!("data/tokens.rs");

const NOW: u64 = 1_764_960_000;
const ACCOUNT: &str = "AC00000000000000000000000000000001";
const APP: &str = "AP00000000000000000000000000000001";
const TEMP: &str = "TJS6a1e3b0c-5d2f-4e8a-9c7b-1f0e2d3c4b5a";
const CALL: &str = "CA0123456789abcdef0123456789abcdef";
/// What Chrome's `setLocalDescription(offer)` leaves in `localDescription.sdp`: no candidates.
const OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0 111 126\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:126 telephone-event/8000\r\n";

/// The SDK's side of one socket: frames it would write, and what the server answered.
struct Sdk {
    session: Session,
    now: Instant,
    /// Server frames not yet checked.
    inbox: Vec<Value>,
    events: Vec<SessionEvent>,
    heartbeats: usize,
}

impl Sdk {
    fn open() -> Self {
        let start = Instant::now();
        let config = SessionConfig {
            api_keys: vec![ApiKey {
                sid: "SK00000000000000000000000000000001".into(),
                secret: "hark-test-secret-0123456789abcdef".into(),
            }],
            application_sids: vec![APP.into()],
            ..SessionConfig::new(ACCOUNT)
        };
        Self {
            session: Session::new(start, NOW, config),
            now: start,
            inbox: Vec::new(),
            events: Vec::new(),
            heartbeats: 0,
        }
    }

    fn collect(&mut self) {
        let mut echo = false;
        while let Some(out) = self.session.poll_output() {
            match out {
                SessionOutput::Send(text) if text == "\n" => {
                    self.heartbeats += 1;
                    echo = true;
                }
                SessionOutput::Send(text) => {
                    // `pstream.ts`: `const { type, payload = {} } = JSON.parse(msg.data)`.
                    let frame: Value = serde_json::from_str(&text).expect("JSON text frame");
                    assert!(frame["type"].is_string(), "{text}");
                    assert!(frame["payload"].is_object(), "{text}");
                    assert_ne!(frame["type"], "close", "the SDK would destroy its stream");
                    ServerFrame::parse(&text).expect("a server frame of PStream 1.6");
                    self.inbox.push(frame);
                }
                SessionOutput::Event(event) => self.events.push(event),
            }
        }
        // `wstransport.ts` answers a `"\n"` with a `"\n"`.
        if echo {
            self.session.handle_text(self.now, "\n");
        }
    }

    fn send(&mut self, text: &str) {
        self.session.handle_text(self.now, text);
        self.collect();
    }

    /// Lets simulated time pass, heartbeats flowing.
    fn wait(&mut self, secs: u64) {
        let end = self.now + Duration::from_secs(secs);
        while let Some(at) = self.session.poll_timeout() {
            if at > end {
                break;
            }
            self.now = at;
            self.session.handle_timeout(at);
            self.collect();
        }
        self.now = end;
    }

    /// The next server frame, which must be `kind`; returns its payload.
    fn expect(&mut self, kind: &str) -> Value {
        assert!(
            !self.inbox.is_empty(),
            "expected a `{kind}` frame, got nothing"
        );
        let frame = self.inbox.remove(0);
        assert_eq!(frame["type"], kind, "{frame}");
        assert_eq!(frame["version"], "1.6");
        frame["payload"].clone()
    }

    fn expect_quiet(&mut self) {
        assert!(self.inbox.is_empty(), "unexpected frames {:?}", self.inbox);
    }

    fn take_events(&mut self) -> Vec<SessionEvent> {
        std::mem::take(&mut self.events)
    }

    /// `PStream.setToken`: on socket open and on `device.updateToken()`.
    fn listen(&mut self, token: &str) {
        let text = format!(
            r#"{{"payload":{{"browserinfo":{{"browser":{{"platform":"Linux x86_64","userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36"}},"p":"browser","plugin":"rtc","v":"2.18.5"}},"reconnectTimeout":0,"token":"{token}"}},"type":"listen","version":"1.6"}}"#
        );
        self.send(&text);
    }

    fn register(&mut self, audio: bool) {
        self.send(&format!(
            r#"{{"payload":{{"media":{{"audio":{audio}}}}},"type":"register","version":"1.6"}}"#
        ));
    }

    /// `new Device(token)`, then `device.register()` once `connected` arrived.
    fn registered_device() -> Self {
        let mut sdk = Self::open();
        sdk.listen(FULL);
        sdk.expect("connected");
        sdk.register(true);
        sdk.expect("ready");
        sdk.take_events();
        sdk
    }
}

#[test]
fn device_register_reregister_and_unregister() {
    let mut sdk = Sdk::open();
    sdk.listen(FULL);
    let connected = sdk.expect("connected");
    assert_eq!(
        connected,
        json!({"token": {"identity": "alice", "ttl": 600}})
    );
    sdk.register(true);
    assert_eq!(sdk.expect("ready"), json!({}));
    assert!(sdk.session.is_registered());
    // REGISTRATION_INTERVAL: the SDK registers again every 30 s; heartbeats keep it alive.
    for _ in 0..4 {
        sdk.wait(30);
        sdk.expect_quiet();
        sdk.register(true);
        sdk.expect("ready");
    }
    assert!(sdk.heartbeats >= 11, "{} heartbeats", sdk.heartbeats);
    assert!(!sdk.session.is_closed());
    // `device.unregister()` awaits `offline`.
    sdk.register(false);
    sdk.expect("offline");
    assert_eq!(
        sdk.take_events(),
        [
            SessionEvent::Listened {
                identity: "alice".into(),
                grants: sdk_grants(),
            },
            SessionEvent::Registered,
            SessionEvent::Unregistered,
        ]
    );
}

fn sdk_grants() -> client_signal::VoiceGrant {
    client_signal::VoiceGrant {
        incoming_allow: true,
        outgoing: Some(client_signal::OutgoingGrant {
            application_sid: APP.into(),
            params: vec![("x".into(), "y".into())],
        }),
    }
}

#[test]
fn heartbeat_gap_stays_under_the_sdk_watchdog() {
    let mut sdk = Sdk::open();
    sdk.listen(FULL);
    let mut last = sdk.now;
    for _ in 0..20 {
        let at = sdk.session.poll_timeout().expect("a timer");
        // HEARTBEAT_TIMEOUT in `wstransport.ts` is 15 s.
        assert!(at - last < Duration::from_secs(15));
        sdk.now = at;
        sdk.session.handle_timeout(at);
        sdk.collect();
        last = at;
    }
    assert_eq!(sdk.heartbeats, 20);
}

#[test]
fn outgoing_call_accepted_then_hung_up_by_the_page() {
    let mut sdk = Sdk::open();
    sdk.listen(FULL);
    sdk.expect("connected");
    sdk.take_events();
    // `device.connect({params: {To: "rec", note: "a b"}})`.
    let invite = json!({
        "payload": {"callsid": TEMP, "sdp": OFFER, "twilio": {"params": "To=rec&note=a%20b"}},
        "type": "invite", "version": "1.6",
    });
    sdk.send(&invite.to_string());
    sdk.expect_quiet();
    let [SessionEvent::Invite {
        temp_callsid,
        sdp,
        params,
        application_sid,
    }] = &sdk.take_events()[..]
    else {
        panic!("expected one invite");
    };
    assert_eq!(temp_callsid, TEMP);
    assert_eq!(sdp, OFFER);
    assert_eq!(application_sid, APP);
    assert_eq!(
        params,
        &[
            ("To".to_owned(), "rec".to_owned()),
            ("note".to_owned(), "a b".to_owned()),
            ("x".to_owned(), "y".to_owned()),
        ]
    );
    // The daemon creates CA…, rings, answers.
    sdk.session.ringing(sdk.now, TEMP, CALL).unwrap();
    sdk.session
        .answer(sdk.now, TEMP, CALL, "v=0 answer", None)
        .unwrap();
    sdk.collect();
    assert_eq!(sdk.expect("ringing"), json!({"callsid": CALL}));
    assert_eq!(
        sdk.expect("answer"),
        json!({"callsid": CALL, "sdp": "v=0 answer"})
    );
    // `call.disconnect()` uses `parameters.CallSid`, set from our `ringing`.
    sdk.wait(8);
    sdk.send(&format!(
        r#"{{"payload":{{"callsid":"{CALL}"}},"type":"hangup","version":"1.6"}}"#
    ));
    sdk.expect_quiet();
    assert_eq!(
        sdk.take_events(),
        [SessionEvent::Hangup {
            callsid: CALL.into(),
            message: None
        }]
    );
}

#[test]
fn outgoing_call_hung_up_by_hark() {
    let mut sdk = Sdk::open();
    sdk.listen(FULL);
    sdk.expect("connected");
    let invite = json!({
        "payload": {"callsid": TEMP, "sdp": OFFER, "twilio": {}}, "type": "invite", "version": "1.6",
    });
    sdk.send(&invite.to_string());
    sdk.session
        .answer(sdk.now, TEMP, CALL, "v=0", None)
        .unwrap();
    sdk.session.hangup(sdk.now, CALL, None).unwrap();
    sdk.collect();
    sdk.expect("answer");
    // `call.ts _onHangup` matches `parameters.CallSid` (or the TJS id).
    assert_eq!(sdk.expect("hangup"), json!({"callsid": CALL}));
}

fn offer_to_alice(sdk: &mut Sdk) {
    let parameters = IncomingParameters {
        call_sid: CALL.into(),
        account_sid: ACCOUNT.into(),
        from: "+15551234567".into(),
        to: "client:alice".into(),
        params: vec![("ticket".into(), "42".into())],
    };
    sdk.session
        .invite_client(sdk.now, CALL, "v=0 hark offer", parameters, None)
        .unwrap();
    sdk.collect();
    let invite = sdk.expect("invite");
    // `device.ts _onSignalingInvite` needs `callsid` and `sdp`, reads `parameters` and
    // `queryToJson(parameters.Params)`.
    assert_eq!(invite["callsid"], CALL);
    assert_eq!(invite["sdp"], "v=0 hark offer");
    assert_eq!(
        invite["parameters"],
        json!({"CallSid": CALL, "AccountSid": ACCOUNT, "From": "+15551234567",
               "To": "client:alice", "Params": "ticket=42"})
    );
}

#[test]
fn incoming_call_accepted_then_hung_up_both_ways() {
    let mut sdk = Sdk::registered_device();
    offer_to_alice(&mut sdk);
    // `call.accept()`: `pstream.answer(sdp, callsid)`; no server frame follows.
    sdk.send(&format!(
        r#"{{"payload":{{"sdp":"v=0 chrome answer","callsid":"{CALL}"}},"type":"answer","version":"1.6"}}"#
    ));
    sdk.expect_quiet();
    assert_eq!(
        sdk.take_events(),
        [SessionEvent::Answer {
            callsid: CALL.into(),
            sdp: "v=0 chrome answer".into()
        }]
    );
    sdk.send(&format!(
        r#"{{"payload":{{"callsid":"{CALL}"}},"type":"hangup","version":"1.6"}}"#
    ));
    assert_eq!(
        sdk.take_events(),
        [SessionEvent::Hangup {
            callsid: CALL.into(),
            message: None
        }]
    );

    // Second call, ended by Hark.
    offer_to_alice(&mut sdk);
    sdk.send(&format!(
        r#"{{"payload":{{"sdp":"v=0","callsid":"{CALL}"}},"type":"answer","version":"1.6"}}"#
    ));
    sdk.session.hangup(sdk.now, CALL, None).unwrap();
    sdk.collect();
    assert_eq!(sdk.expect("hangup"), json!({"callsid": CALL}));
}

#[test]
fn incoming_call_rejected_or_ignored() {
    let mut sdk = Sdk::registered_device();
    offer_to_alice(&mut sdk);
    sdk.send(&format!(
        r#"{{"payload":{{"callsid":"{CALL}"}},"type":"reject","version":"1.6"}}"#
    ));
    sdk.expect_quiet();
    assert_eq!(
        sdk.take_events(),
        [SessionEvent::Reject {
            callsid: CALL.into()
        }]
    );
    // `call.ignore()` sends nothing; Hark's ring timeout cancels.
    offer_to_alice(&mut sdk);
    sdk.wait(20);
    sdk.session.cancel(sdk.now, CALL).unwrap();
    sdk.collect();
    assert_eq!(sdk.expect("cancel"), json!({"callsid": CALL}));
}

#[test]
fn token_update_on_the_same_socket() {
    let mut sdk = Sdk::registered_device();
    // `tokenWillExpire` fires at ttl - 10 s; the page calls `device.updateToken(newToken)`.
    sdk.wait(590);
    sdk.expect_quiet();
    sdk.listen(NO_NBF);
    assert_eq!(
        sdk.expect("connected"),
        json!({"token": {"identity": "alice", "ttl": 10}})
    );
    assert!(sdk.session.is_registered());
    // The session now expires with the new token's `exp`.
    sdk.wait(10);
    assert_eq!(sdk.expect("error")["error"]["code"], 31205);
    sdk.expect("offline");
}

#[test]
fn bad_tokens_get_the_sdk_error_codes_and_no_connected() {
    let mut sdk = Sdk::open();
    // Forged → 31204 (the SDK's AccessTokenInvalid, 20101).
    sdk.listen(FORGED);
    assert_eq!(
        sdk.expect("error"),
        json!({"error": {"code": 31204, "message": "JWT is invalid"}})
    );
    sdk.expect_quiet();
    // The SDK replays a queued register alongside `listen`: it earns another 31204.
    sdk.register(true);
    assert_eq!(sdk.expect("error")["error"]["code"], 31204);
    // Expired → 31205 (AccessTokenExpired, 20104).
    sdk.wait(700);
    sdk.listen(FULL);
    assert_eq!(
        sdk.expect("error"),
        json!({"error": {"code": 31205, "message": "JWT token expired"}})
    );
    sdk.expect_quiet();
    assert!(!sdk.session.is_closed(), "the socket stays open");
    assert!(sdk.take_events().is_empty());
}

#[test]
fn bad_token_then_update_token_recovers() {
    let mut sdk = Sdk::open();
    sdk.listen(NO_IDENTITY);
    assert_eq!(sdk.expect("error")["error"]["code"], 31204);
    sdk.listen(FULL);
    sdk.expect("connected");
    sdk.register(true);
    sdk.expect("ready");
}
