//! Frames as the SDK 2.18.5 writes and reads them.

use super::*;

fn parse(text: &str) -> ClientFrame {
    match ClientText::parse(text) {
        Ok(ClientText::Frame(frame)) => frame,
        other => panic!("expected a frame from {text:?}, got {other:?}"),
    }
}

#[test]
fn heartbeat_is_its_own_case() {
    assert!(matches!(ClientText::parse("\n"), Ok(ClientText::Heartbeat)));
}

#[test]
fn listen_as_the_sdk_sends_it() {
    let text = r#"{"payload":{"browserinfo":{"browser":{"platform":"Linux x86_64","userAgent":"Mozilla/5.0"},"p":"browser","plugin":"rtc","v":"2.18.5"},"reconnectTimeout":0,"token":"a.b.c"},"type":"listen","version":"1.6"}"#;
    let ClientFrame::Listen {
        token,
        reconnect_timeout_secs,
        browser_info,
    } = parse(text)
    else {
        panic!("not a listen");
    };
    assert_eq!(token, "a.b.c");
    assert_eq!(reconnect_timeout_secs, 0);
    assert_eq!(browser_info.unwrap()["v"], "2.18.5");
}

#[test]
fn register_and_unregister() {
    let on = r#"{"payload":{"media":{"audio":true}},"type":"register","version":"1.6"}"#;
    let off = r#"{"payload":{"media":{"audio":false}},"type":"register","version":"1.6"}"#;
    assert_eq!(parse(on), ClientFrame::Register { audio: true });
    assert_eq!(parse(off), ClientFrame::Register { audio: false });
}

#[test]
fn invite_with_params_and_without() {
    let text = r#"{"payload":{"callsid":"TJSce7d3a8e-1c0b-4d2e-9b0c-2f1e4c3a2b1d","sdp":"v=0\r\n","twilio":{"params":"To=rec&note=a%20b%26c%3Dd&emoji=%F0%9F%99%82"}},"type":"invite","version":"1.6"}"#;
    let ClientFrame::Invite(invite) = parse(text) else {
        panic!("not an invite");
    };
    assert_eq!(invite.callsid, "TJSce7d3a8e-1c0b-4d2e-9b0c-2f1e4c3a2b1d");
    assert_eq!(invite.reconnect, None);
    assert_eq!(
        invite.decoded_params(),
        vec![
            ("To".to_owned(), "rec".to_owned()),
            ("note".to_owned(), "a b&c=d".to_owned()),
            ("emoji".to_owned(), "🙂".to_owned()),
        ]
    );
    let bare =
        r#"{"payload":{"callsid":"TJS1","sdp":"v=0","twilio":{}},"type":"invite","version":"1.6"}"#;
    let ClientFrame::Invite(invite) = parse(bare) else {
        panic!("not an invite");
    };
    assert!(invite.decoded_params().is_empty());
}

#[test]
fn reconnect_invite() {
    let text = r#"{"payload":{"callsid":"CA0123","reconnect":"opaque","sdp":"v=0","twilio":{}},"type":"invite","version":"1.6"}"#;
    let ClientFrame::Invite(invite) = parse(text) else {
        panic!("not an invite");
    };
    assert_eq!(invite.reconnect.as_deref(), Some("opaque"));
}

#[test]
fn call_frames() {
    assert_eq!(
        parse(r#"{"payload":{"sdp":"v=0","callsid":"CA1"},"type":"answer","version":"1.6"}"#),
        ClientFrame::Answer {
            callsid: "CA1".into(),
            sdp: "v=0".into()
        }
    );
    assert_eq!(
        parse(r#"{"payload":{"callsid":"CA1"},"type":"hangup","version":"1.6"}"#),
        ClientFrame::Hangup {
            callsid: "CA1".into(),
            message: None
        }
    );
    assert_eq!(
        parse(r#"{"payload":{"callsid":"CA1","message":"bye"},"type":"hangup","version":"1.6"}"#),
        ClientFrame::Hangup {
            callsid: "CA1".into(),
            message: Some("bye".into())
        }
    );
    assert_eq!(
        parse(r#"{"payload":{"callsid":"CA1"},"type":"reject","version":"1.6"}"#),
        ClientFrame::Reject {
            callsid: "CA1".into()
        }
    );
    assert_eq!(
        parse(r#"{"payload":{"callsid":"CA1","dtmf":"12#"},"type":"dtmf","version":"1.6"}"#),
        ClientFrame::Dtmf {
            callsid: "CA1".into(),
            digits: "12#".into()
        }
    );
    assert_eq!(
        parse(r#"{"payload":{"sdp":"v=0","callsid":"CA1"},"type":"reinvite","version":"1.6"}"#),
        ClientFrame::Reinvite {
            callsid: "CA1".into(),
            sdp: "v=0".into()
        }
    );
    let ClientFrame::Message(m) = parse(
        r#"{"payload":{"callsid":"CA1","content":{"a":1},"contenttype":"application/json","messagetype":"user-defined-message","voiceeventsid":"KX1"},"type":"message","version":"1.6"}"#,
    ) else {
        panic!("not a message");
    };
    assert_eq!(m.content, json!({"a": 1}));
    assert_eq!(m.voice_event_sid, "KX1");
}

#[test]
fn client_frames_round_trip() {
    let frames = [
        ClientFrame::Listen {
            token: "t".into(),
            reconnect_timeout_secs: 0,
            browser_info: Some(json!({"p": "browser"})),
        },
        ClientFrame::Register { audio: true },
        ClientFrame::Invite(ClientInvite {
            callsid: "TJS1".into(),
            sdp: "v=0".into(),
            params: Some("To=x".into()),
            reconnect: None,
        }),
        ClientFrame::Hangup {
            callsid: "CA1".into(),
            message: None,
        },
        ClientFrame::Dtmf {
            callsid: "CA1".into(),
            digits: "1".into(),
        },
    ];
    for frame in frames {
        assert_eq!(ClientFrame::parse(&frame.to_text()).unwrap(), frame);
    }
}

#[test]
fn malformed_frames_name_the_fault() {
    assert!(matches!(
        ClientText::parse("{not json"),
        Err(FrameError::NotJson(_))
    ));
    assert!(matches!(
        ClientText::parse("[1,2]"),
        Err(FrameError::NotObject)
    ));
    assert!(matches!(
        ClientText::parse(r#"{"payload":{}}"#),
        Err(FrameError::MissingType)
    ));
    assert!(matches!(
        ClientText::parse(r#"{"type":"close","version":"1.6","payload":{}}"#),
        Err(FrameError::UnknownType(t)) if t == "close"
    ));
    assert!(matches!(
        ClientText::parse(r#"{"type":"invite","version":"1.6","payload":{"callsid":"TJS1"}}"#),
        Err(FrameError::MissingField {
            frame: "invite",
            field: "sdp"
        })
    ));
    assert!(matches!(
        ClientText::parse(r#"{"type":"register","payload":{"media":{"audio":"yes"}}}"#),
        Err(FrameError::WrongType {
            frame: "register",
            field: "media.audio",
            ..
        })
    ));
    assert!(matches!(
        ClientText::parse(r#"{"type":"listen","payload":{"token":7}}"#),
        Err(FrameError::WrongType {
            frame: "listen",
            field: "token",
            ..
        })
    ));
    assert!(matches!(
        ClientText::parse(r#"{"type":"hangup","payload":"x"}"#),
        Err(FrameError::WrongType {
            frame: "hangup",
            field: "payload",
            ..
        })
    ));
    assert!(matches!(ClientText::parse(""), Err(FrameError::NotJson(_))));
}

fn value(frame: &ServerFrame) -> Value {
    serde_json::from_str(&frame.to_text()).unwrap()
}

#[test]
fn server_frames_as_the_sdk_reads_them() {
    assert_eq!(
        value(&ServerFrame::Connected {
            identity: "alice".into(),
            ttl_secs: 600
        }),
        json!({"type":"connected","version":"1.6","payload":{"token":{"identity":"alice","ttl":600}}})
    );
    assert_eq!(
        value(&ServerFrame::Ready),
        json!({"type":"ready","version":"1.6","payload":{}})
    );
    assert_eq!(
        value(&ServerFrame::Answer {
            callsid: "CA1".into(),
            sdp: Some("v=0".into()),
            reconnect: None
        }),
        json!({"type":"answer","version":"1.6","payload":{"callsid":"CA1","sdp":"v=0"}})
    );
    assert_eq!(
        value(&ServerFrame::Hangup {
            callsid: "TJS1".into(),
            error: Some(SignalError::new(31201, "no outgoing grant"))
        }),
        json!({"type":"hangup","version":"1.6","payload":{"callsid":"TJS1","error":{"code":31201,"message":"no outgoing grant"}}})
    );
    assert_eq!(
        value(&ServerFrame::Error {
            error: SignalError::new(31204, "bad token"),
            callsid: None
        }),
        json!({"type":"error","version":"1.6","payload":{"error":{"code":31204,"message":"bad token"}}})
    );
    assert_eq!(
        value(&ServerFrame::Ack {
            callsid: "CA1".into(),
            voice_event_sid: "KX1".into()
        }),
        json!({"type":"ack","version":"1.6","payload":{"acktype":"message","callsid":"CA1","voiceeventsid":"KX1"}})
    );
}

#[test]
fn server_frames_round_trip() {
    let frames = [
        ServerFrame::Connected {
            identity: "alice".into(),
            ttl_secs: 600,
        },
        ServerFrame::Ready,
        ServerFrame::Offline,
        ServerFrame::Ringing {
            callsid: "CA1".into(),
        },
        ServerFrame::Answer {
            callsid: "CA1".into(),
            sdp: Some("v=0".into()),
            reconnect: Some("rc".into()),
        },
        ServerFrame::Invite {
            callsid: "CA1".into(),
            sdp: "v=0".into(),
            parameters: IncomingParameters {
                call_sid: "CA1".into(),
                account_sid: "AC1".into(),
                from: "client:bob".into(),
                to: "client:alice".into(),
                params: vec![("k".into(), "v w".into())],
            },
            reconnect: None,
        },
        ServerFrame::Cancel {
            callsid: "CA1".into(),
        },
        ServerFrame::Hangup {
            callsid: "CA1".into(),
            error: Some(SignalError::new(31201, "no")),
        },
        ServerFrame::Hangup {
            callsid: "CA1".into(),
            error: None,
        },
        ServerFrame::Error {
            error: SignalError::token_expired(),
            callsid: None,
        },
        ServerFrame::Ack {
            callsid: "CA1".into(),
            voice_event_sid: "KX1".into(),
        },
    ];
    for frame in frames {
        assert_eq!(ServerFrame::parse(&frame.to_text()).unwrap(), frame);
    }
    assert!(matches!(
        ServerFrame::parse(r#"{"type":"listen","payload":{}}"#),
        Err(FrameError::UnknownType(_))
    ));
    assert!(matches!(
        ServerFrame::parse(r#"{"type":"error","payload":{"error":{"code":-1}}}"#),
        Err(FrameError::WrongType {
            frame: "error",
            field: "error.code",
            ..
        })
    ));
}

#[test]
fn truncated_and_mangled_frames_never_panic() {
    let samples = [
        r#"{"payload":{"browserinfo":{"p":"browser"},"reconnectTimeout":0,"token":"a.b.c"},"type":"listen","version":"1.6"}"#,
        r#"{"payload":{"callsid":"TJS1","sdp":"v=0","twilio":{"params":"To=%F0%9F%99&x"}},"type":"invite","version":"1.6"}"#,
        r#"{"payload":{"media":{"audio":true}},"type":"register","version":"1.6"}"#,
        r#"{"payload":{"callsid":"CA1","content":[1,{"a":null}],"messagetype":"m","voiceeventsid":"K"},"type":"message","version":"1.6"}"#,
    ];
    for sample in samples {
        for cut in 0..=sample.len() {
            let Some(prefix) = sample.get(..cut) else {
                continue;
            };
            let _ = ClientText::parse(prefix);
            let _ = ServerFrame::parse(prefix);
        }
        for (i, c) in sample.char_indices() {
            for replacement in ["\"", "1", "null", "{", "]", "\\u0000"] {
                let mangled = format!(
                    "{}{}{}",
                    &sample[..i],
                    replacement,
                    &sample[i + c.len_utf8()..]
                );
                let _ = ClientText::parse(&mangled);
            }
        }
    }
}

#[test]
fn incoming_invite_params_read_back_by_query_to_json() {
    let frame = ServerFrame::Invite {
        callsid: "CA1".into(),
        sdp: "v=0".into(),
        parameters: IncomingParameters {
            call_sid: "CA1".into(),
            account_sid: "AC1".into(),
            from: "+15551234567".into(),
            to: "client:alice".into(),
            params: vec![("note".into(), "a b&c=d+e".into())],
        },
        reconnect: None,
    };
    let v = value(&frame);
    assert_eq!(v["payload"]["parameters"]["From"], "+15551234567");
    assert_eq!(v["payload"]["parameters"]["To"], "client:alice");
    // `queryToJson` turns `+` into a space and percent-decodes the value.
    assert_eq!(v["payload"]["parameters"]["Params"], "note=a+b%26c%3Dd%2Be");
    assert_eq!(
        decode_params(v["payload"]["parameters"]["Params"].as_str().unwrap()),
        vec![("note".to_owned(), "a b&c=d+e".to_owned())]
    );
}
