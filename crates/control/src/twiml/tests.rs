//! Document-level tests: the malformed-TwiML corpus and every `<Record>` row of SPEC §3.1.

use super::*;

fn limits() -> ParseLimits {
    ParseLimits::default()
}

fn parse(xml: &str) -> Result<Document, TwimlError> {
    parse_document(xml, &limits())
}

fn record(attrs: &str) -> (RecordVerb, Vec<AttrWarning>) {
    let doc = parse(&format!("<Response><Record {attrs}/></Response>")).unwrap();
    match doc.verbs.as_slice() {
        [Verb::Record(r)] => (r.clone(), doc.warnings),
        other => panic!("expected one Record, got {other:?}"),
    }
}

fn warned(warnings: &[AttrWarning], attribute: &str, value: &str) -> bool {
    warnings
        .iter()
        .any(|w| w.attribute == attribute && w.value == value)
}

fn assert_not_well_formed(xml: &str) {
    match parse(xml) {
        Err(e @ TwimlError::NotWellFormed { .. }) => assert_eq!(e.code(), 12100, "{xml:?}"),
        other => panic!("expected NotWellFormed for {xml:?}, got {other:?}"),
    }
}

// --- malformed corpus ---

#[test]
fn unclosed_tags_are_12100() {
    assert_not_well_formed("<Response><Record>");
    assert_not_well_formed("<Response>");
    assert_not_well_formed("<Response><Play>x</Play>");
    assert_not_well_formed("<Response><Record/");
}

#[test]
fn mismatched_and_unmatched_end_tags_are_12100() {
    assert_not_well_formed("<Response><Play>x</Pause></Response>");
    assert_not_well_formed("<Response></Record></Response>");
    assert_not_well_formed("<Response/></Response>");
}

#[test]
fn empty_and_non_xml_documents_are_12100() {
    assert_not_well_formed("");
    assert_not_well_formed("   \n");
    assert_not_well_formed("Hello, this is not XML");
    assert_not_well_formed("<!-- only a comment -->");
}

#[test]
fn text_before_or_after_root_is_12100() {
    assert_not_well_formed("oops<Response/>");
    assert_not_well_formed("<Response/>trailing garbage");
    assert_not_well_formed("<Response/><![CDATA[x]]>");
}

#[test]
fn two_roots_are_12100() {
    assert_not_well_formed("<Response/><Response/>");
    assert_not_well_formed("<Response></Response>\n<Hangup/>");
}

#[test]
fn billion_laughs_doctype_is_refused_without_expansion() {
    let mut xml =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        xml.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">\n",
            format!("&{prev};").repeat(10)
        ));
    }
    xml.push_str("]>\n<Response><Play>&lol9;</Play></Response>");
    match parse(&xml) {
        Err(TwimlError::NotWellFormed { message, .. }) => {
            assert!(message.contains("DOCTYPE"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn even_a_harmless_doctype_is_refused() {
    assert_not_well_formed("<!DOCTYPE Response><Response/>");
}

#[test]
fn undeclared_entity_is_12100() {
    assert_not_well_formed("<Response><Play>&xxe;</Play></Response>");
}

#[test]
fn size_limit_is_checked_before_parsing() {
    // 100 KB of garbage with a 64 KB limit: TooLarge, not NotWellFormed.
    let xml = "x".repeat(100 * 1024);
    let err = parse(&xml).unwrap_err();
    assert_eq!(
        err,
        TwimlError::TooLarge {
            size: 102_400,
            limit: 65_536
        }
    );
    assert_eq!(err.code(), 12100);
}

#[test]
fn document_exactly_at_the_limit_is_accepted() {
    let head = "<Response><!--";
    let tail = "--></Response>";
    let xml = format!(
        "{head}{}{tail}",
        "a".repeat(64 * 1024 - head.len() - tail.len())
    );
    assert_eq!(xml.len(), 65_536);
    assert_eq!(parse(&xml).unwrap().verbs, vec![]);
}

#[test]
fn non_utf8_body_is_12100_with_position() {
    let body = b"<Response><Play>caf\xe9.wav</Play></Response>";
    assert_eq!(
        parse_document_bytes(body, &limits()),
        Err(TwimlError::NotWellFormed {
            position: 19,
            message: "document is not valid UTF-8".into()
        })
    );
    let big = vec![b' '; 70_000];
    assert!(matches!(
        parse_document_bytes(&big, &limits()),
        Err(TwimlError::TooLarge { size: 70_000, .. })
    ));
}

#[test]
fn root_must_be_response_case_sensitive() {
    assert_eq!(
        parse("<response/>"),
        Err(TwimlError::BadRoot("response".into()))
    );
    assert_eq!(
        parse("<Record/>"),
        Err(TwimlError::BadRoot("Record".into()))
    );
    assert_eq!(TwimlError::BadRoot("x".into()).code(), 12100);
}

#[test]
fn lowercase_record_is_unknown_verb_12200() {
    let err = parse("<Response><record/></Response>").unwrap_err();
    assert_eq!(err, TwimlError::UnknownVerb("record".into()));
    assert_eq!(err.code(), 12200);
}

#[test]
fn unknown_and_unsupported_verbs_are_12200() {
    for name in ["Foo", "dial", "Enqueue", "Connect", "say", "GATHER"] {
        let err = parse(&format!("<Response><{name}/></Response>")).unwrap_err();
        assert_eq!(err, TwimlError::UnknownVerb(name.into()));
        assert_eq!(err.code(), 12200);
    }
}

#[test]
fn play_inside_record_is_bad_nesting() {
    let err = parse("<Response><Record><Play>x</Play></Record></Response>").unwrap_err();
    assert_eq!(
        err,
        TwimlError::BadNesting {
            parent: "Record".into(),
            child: "Play".into()
        }
    );
    assert_eq!(err.code(), 12200);
}

#[test]
fn children_of_pause_hangup_play_are_bad_nesting() {
    for (parent, xml) in [
        ("Pause", "<Pause><Hangup/></Pause>"),
        ("Hangup", "<Hangup><Pause/></Hangup>"),
        ("Play", "<Play>a.wav<Pause/></Play>"),
    ] {
        let err = parse(&format!("<Response>{xml}</Response>")).unwrap_err();
        assert!(
            matches!(&err, TwimlError::BadNesting { parent: p, .. } if p == parent),
            "{err:?}"
        );
    }
}

#[test]
fn text_in_record_or_response_is_bad_nesting() {
    assert_eq!(
        parse("<Response><Record>hello</Record></Response>"),
        Err(TwimlError::BadNesting {
            parent: "Record".into(),
            child: "#text".into()
        })
    );
    assert_eq!(
        parse("<Response>hello<Hangup/></Response>"),
        Err(TwimlError::BadNesting {
            parent: "Response".into(),
            child: "#text".into()
        })
    );
}

#[test]
fn well_formedness_is_reported_before_schema_errors() {
    assert_not_well_formed("<Response><Foo/>");
}

#[test]
fn whitespace_comments_pis_and_declaration_are_ignored() {
    let xml =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- hi -->\n<Response>\n  <!-- c -->\n  \
               <?pi x?>\n  <Pause length=\"2\"/>\n  <Record></Record>\n  <Hangup/>\n</Response>\n";
    let doc = parse(xml).unwrap();
    assert_eq!(
        doc.verbs,
        vec![
            Verb::Pause { length_secs: 2 },
            Verb::Record(RecordVerb::default()),
            Verb::Hangup
        ]
    );
    assert!(doc.warnings.is_empty());
}

#[test]
fn empty_response_has_no_verbs() {
    assert_eq!(parse("<Response/>").unwrap().verbs, vec![]);
}

// --- <Play>, <Pause> ---

fn play(xml: &str) -> (PlayVerb, Vec<AttrWarning>) {
    let doc = parse(&format!("<Response>{xml}</Response>")).unwrap();
    match doc.verbs.as_slice() {
        [Verb::Play(p)] => (p.clone(), doc.warnings),
        other => panic!("{other:?}"),
    }
}

#[test]
fn play_body_is_trimmed_and_unescaped() {
    let (p, w) = play("<Play>\n  https://h/a.wav?x=1&amp;y=2 \n</Play>");
    assert_eq!(
        p,
        PlayVerb {
            url: "https://h/a.wav?x=1&y=2".into(),
            loop_count: 1,
            digits: None
        }
    );
    assert!(w.is_empty());
}

#[test]
fn play_without_body_is_missing_content() {
    let err = parse("<Response><Play>  </Play></Response>").unwrap_err();
    assert!(matches!(
        err,
        TwimlError::MissingContent { verb: "Play", .. }
    ));
    assert_eq!(err.code(), 12200);
    assert!(matches!(
        parse("<Response><Play/></Response>"),
        Err(TwimlError::MissingContent { .. })
    ));
}

#[test]
fn play_loop_values() {
    assert_eq!(play("<Play loop=\"0\">a</Play>").0.loop_count, 0);
    assert_eq!(play("<Play loop=\"3\">a</Play>").0.loop_count, 3);
    let (p, w) = play("<Play loop=\"5000\">a</Play>");
    assert_eq!(p.loop_count, MAX_LOOPS);
    assert!(warned(&w, "loop", "5000"));
    for bad in ["-1", "x", "1.5", ""] {
        let (p, w) = play(&format!("<Play loop=\"{bad}\">a</Play>"));
        assert_eq!(p.loop_count, 1, "{bad:?}");
        assert!(warned(&w, "loop", bad), "{bad:?}");
    }
}

#[test]
fn play_digits_without_body_is_valid() {
    let (p, w) = play("<Play digits=\"ww12*#AD\"/>");
    assert_eq!(
        p,
        PlayVerb {
            url: String::new(),
            loop_count: 1,
            digits: Some("ww12*#AD".into())
        }
    );
    assert!(w.is_empty());
}

#[test]
fn play_digits_with_body_ignores_body_with_warning() {
    let (p, w) = play("<Play digits=\"1\">a.wav</Play>");
    assert_eq!((p.url.as_str(), p.digits.as_deref()), ("a.wav", Some("1")));
    assert_eq!(w.len(), 1);
    assert!(warned(&w, "digits", "1") && w[0].reason.contains("body is ignored"));
}

#[test]
fn play_invalid_digit_chars_are_dropped_with_warning() {
    let (p, w) = play("<Play digits=\"1-2 W3x\"/>");
    assert_eq!(p.digits.as_deref(), Some("123"));
    assert!(warned(&w, "digits", "1-2 W3x"));
    assert!(w[0].reason.contains("\"123\""), "{}", w[0].reason);
    // Nothing valid left and no body: the verb has no content.
    let err = parse("<Response><Play digits=\"xyz\"/></Response>").unwrap_err();
    assert!(matches!(
        err,
        TwimlError::MissingContent { verb: "Play", .. }
    ));
    // Nothing valid left but a body: the body plays.
    let (p, w) = play("<Play digits=\"e\">a.wav</Play>");
    assert_eq!((p.url.as_str(), p.digits), ("a.wav", None));
    assert_eq!(w.len(), 1);
}

#[test]
fn pause_length_values() {
    let pause = |xml: &str| {
        let doc = parse(&format!("<Response>{xml}</Response>")).unwrap();
        (doc.verbs, doc.warnings)
    };
    assert_eq!(pause("<Pause/>").0, vec![Verb::Pause { length_secs: 1 }]);
    assert_eq!(
        pause("<Pause length=\"10\"/>").0,
        vec![Verb::Pause { length_secs: 10 }]
    );
    for bad in ["0", "-2", "abc"] {
        let (verbs, w) = pause(&format!("<Pause length=\"{bad}\"/>"));
        assert_eq!(verbs, vec![Verb::Pause { length_secs: 1 }], "{bad:?}");
        assert!(warned(&w, "length", bad));
    }
}

// --- <Record> attributes, SPEC §3.1 ---

#[test]
fn record_defaults() {
    let (r, w) = record("");
    assert_eq!(
        r,
        RecordVerb {
            action: None,
            method: HttpMethod::Post,
            timeout_secs: 5,
            finish_on_key: "1234567890*#".into(),
            max_length_secs: 3600,
            play_beep: true,
            trim_silence: true,
            recording_status_callback: None,
            recording_status_callback_method: HttpMethod::Post,
            recording_status_callback_events: StatusEvents {
                in_progress: false,
                completed: true,
                absent: false
            },
            transcribe: false,
            transcribe_callback: None,
            transcribe_language: None,
        }
    );
    assert!(w.is_empty());
}

#[test]
fn record_action_kept_as_written_and_unescaped() {
    assert_eq!(
        record("action=\"next?a=1&amp;b=2\"").0.action.as_deref(),
        Some("next?a=1&b=2")
    );
    assert_eq!(record("action=\"\"").0.action, None);
}

#[test]
fn record_method_case_insensitive_else_post() {
    assert_eq!(record("method=\"get\"").0.method, HttpMethod::Get);
    assert_eq!(record("method=\"POST\"").0.method, HttpMethod::Post);
    let (r, w) = record("method=\"PUT\"");
    assert_eq!(r.method, HttpMethod::Post);
    assert_eq!(
        w,
        vec![AttrWarning {
            verb: "Record",
            attribute: "method",
            value: "PUT".into(),
            reason: "must be GET or POST; using POST".into()
        }]
    );
}

#[test]
fn record_timeout_zero_allowed_negative_or_text_is_default() {
    assert_eq!(record("timeout=\"0\"").0.timeout_secs, 0);
    assert_eq!(record("timeout=\"30\"").0.timeout_secs, 30);
    for bad in ["-1", "2.5", "soon"] {
        let (r, w) = record(&format!("timeout=\"{bad}\""));
        assert_eq!(r.timeout_secs, 5, "{bad:?}");
        assert!(warned(&w, "timeout", bad));
    }
}

#[test]
fn record_finish_on_key_drops_invalid_chars() {
    let (r, w) = record("finishOnKey=\"#*\"");
    assert_eq!((r.finish_on_key.as_str(), w.len()), ("#*", 0));
    let (r, w) = record("finishOnKey=\"1a#B\"");
    assert_eq!(r.finish_on_key, "1#");
    assert!(warned(&w, "finishOnKey", "1a#B"));
    let (r, w) = record("finishOnKey=\"\"");
    assert_eq!((r.finish_on_key.as_str(), w.len()), ("", 0));
}

#[test]
fn record_max_length_rows() {
    assert_eq!(record("maxLength=\"20\"").0.max_length_secs, 20);
    assert_eq!(record("maxLength=\"2\"").0.max_length_secs, 2);
    // SPEC §11 item 7.
    let (r, w) = record("maxLength=\"1\"");
    assert_eq!(r.max_length_secs, 3600);
    assert!(warned(&w, "maxLength", "1"));
    let (r, w) = record("maxLength=\"20000\"");
    assert_eq!(r.max_length_secs, 14_400);
    assert!(warned(&w, "maxLength", "20000"));
    // [D] 0 = the cap, no warning.
    let (r, w) = record("maxLength=\"0\"");
    assert_eq!((r.max_length_secs, w.len()), (14_400, 0));
    assert_eq!(record("maxLength=\"14400\"").0.max_length_secs, 14_400);
    for bad in ["-5", "ten", "60s"] {
        let (r, w) = record(&format!("maxLength=\"{bad}\""));
        assert_eq!(r.max_length_secs, 3600, "{bad:?}");
        assert!(warned(&w, "maxLength", bad));
    }
}

#[test]
fn record_max_length_respects_a_small_configured_cap() {
    let limits = ParseLimits {
        max_bytes: 1024,
        max_length_cap: 600,
    };
    let doc = parse_document(
        "<Response><Record/><Record maxLength=\"1\"/></Response>",
        &limits,
    )
    .unwrap();
    let maxes: Vec<u32> = doc
        .verbs
        .iter()
        .map(|v| match v {
            Verb::Record(r) => r.max_length_secs,
            _ => 0,
        })
        .collect();
    assert_eq!(maxes, vec![600, 600]);
}

#[test]
fn record_play_beep_and_transcribe_booleans() {
    assert!(!record("playBeep=\"FALSE\"").0.play_beep);
    assert!(record("playBeep=\"true\"").0.play_beep);
    let (r, w) = record("playBeep=\"no\"");
    assert!(r.play_beep && warned(&w, "playBeep", "no"));
    assert!(record("transcribe=\"True\"").0.transcribe);
    let (r, w) = record("transcribe=\"1\"");
    assert!(!r.transcribe && warned(&w, "transcribe", "1"));
}

#[test]
fn record_trim_values() {
    assert!(!record("trim=\"do-not-trim\"").0.trim_silence);
    assert!(record("trim=\"trim-silence\"").0.trim_silence);
    let (r, w) = record("trim=\"yes\"");
    assert!(r.trim_silence && warned(&w, "trim", "yes"));
}

#[test]
fn record_status_callback_and_method() {
    let (r, w) = record("recordingStatusCallback=\"/cb\" recordingStatusCallbackMethod=\"GET\"");
    assert_eq!(r.recording_status_callback.as_deref(), Some("/cb"));
    assert_eq!(r.recording_status_callback_method, HttpMethod::Get);
    assert!(w.is_empty());
    assert_eq!(
        record("recordingStatusCallback=\"\"")
            .0
            .recording_status_callback,
        None
    );
    let (r, w) = record("recordingStatusCallbackMethod=\"PATCH\"");
    assert_eq!(r.recording_status_callback_method, HttpMethod::Post);
    assert!(warned(&w, "recordingStatusCallbackMethod", "PATCH"));
}

#[test]
fn record_status_events_are_exactly_the_listed_set() {
    let ev = |v: &str| record(&format!("recordingStatusCallbackEvent=\"{v}\""));
    let (r, w) = ev("in-progress completed,absent");
    assert_eq!(
        r.recording_status_callback_events,
        StatusEvents {
            in_progress: true,
            completed: true,
            absent: true
        }
    );
    assert!(w.is_empty());
    let (r, _) = ev("absent");
    assert_eq!(
        r.recording_status_callback_events,
        StatusEvents {
            in_progress: false,
            completed: false,
            absent: true
        }
    );
    let (r, w) = ev("in-progress, bogus");
    assert_eq!(
        r.recording_status_callback_events,
        StatusEvents {
            in_progress: true,
            completed: false,
            absent: false
        }
    );
    assert!(warned(&w, "recordingStatusCallbackEvent", "bogus"));
    let completed_only = StatusEvents {
        in_progress: false,
        completed: true,
        absent: false,
    };
    let (r, w) = ev("bogus");
    assert_eq!(
        (r.recording_status_callback_events, w.len()),
        (completed_only, 1)
    );
    let (r, w) = ev("");
    assert_eq!(
        (r.recording_status_callback_events, w.len()),
        (completed_only, 1)
    );
}

#[test]
fn record_transcribe_language_is_a_bcp47_tag_or_a_warning() {
    assert_eq!(
        record("transcribeLanguage=\"ja-JP\"")
            .0
            .transcribe_language
            .as_deref(),
        Some("ja-JP")
    );
    let (r, warnings) = record("transcribeLanguage=\"not a tag!\"");
    assert_eq!(r.transcribe_language, None);
    assert_eq!(warnings.len(), 1);
    assert_eq!(record("").0.transcribe_language, None);
}

#[test]
fn record_transcribe_callback_implies_transcribe() {
    let (r, _) = record("transcribeCallback=\"/t\"");
    assert!(r.transcribe);
    assert_eq!(r.transcribe_callback.as_deref(), Some("/t"));
    assert!(
        record("transcribe=\"false\" transcribeCallback=\"/t\"")
            .0
            .transcribe
    );
    assert!(!record("transcribeCallback=\"\"").0.transcribe);
}

#[test]
fn record_unknown_attributes_are_ignored_but_names_are_case_sensitive() {
    let (r, w) = record("foo=\"bar\" MaxLength=\"1\" TIMEOUT=\"x\"");
    assert_eq!(r, RecordVerb::default());
    assert!(w.is_empty());
}

#[test]
fn record_duplicate_attribute_is_not_well_formed() {
    assert_not_well_formed("<Response><Record timeout=\"1\" timeout=\"2\"/></Response>");
}

#[test]
fn verbs_keep_document_order() {
    let doc = parse("<Response><Play>a</Play><Record/><Pause/><Hangup/></Response>").unwrap();
    let kinds: Vec<&str> = doc
        .verbs
        .iter()
        .map(|v| match v {
            Verb::Play(_) => "Play",
            Verb::Record(_) => "Record",
            Verb::Pause { .. } => "Pause",
            Verb::Hangup => "Hangup",
            Verb::Say(_) => "Say",
            Verb::Gather(_) => "Gather",
            Verb::Redirect(_) => "Redirect",
            Verb::Reject(_) => "Reject",
            Verb::Dial(_) => "Dial",
        })
        .collect();
    assert_eq!(kinds, ["Play", "Record", "Pause", "Hangup"]);
}

#[test]
fn deeply_nested_document_does_not_recurse() {
    let depth = 50_000;
    let xml = format!(
        "<Response>{}{}</Response>",
        "<a>".repeat(depth),
        "</a>".repeat(depth)
    );
    let limits = ParseLimits {
        max_bytes: 1 << 20,
        max_length_cap: 14_400,
    };
    assert_eq!(
        parse_document(&xml, &limits),
        Err(TwimlError::UnknownVerb("a".into()))
    );
}

// --- <Redirect>, <Reject>, mixed documents ---

#[test]
fn redirect_body_and_method() {
    let doc = parse("<Response><Redirect method=\"GET\"> next?a=1&amp;b=2 </Redirect></Response>")
        .unwrap();
    assert_eq!(
        doc.verbs,
        vec![Verb::Redirect(RedirectVerb {
            url: "next?a=1&b=2".into(),
            method: HttpMethod::Get
        })]
    );
    let doc = parse("<Response><Redirect method=\"put\">/x</Redirect></Response>").unwrap();
    assert_eq!(
        doc.verbs,
        vec![Verb::Redirect(RedirectVerb {
            url: "/x".into(),
            method: HttpMethod::Post
        })]
    );
    assert!(warned(&doc.warnings, "method", "put"));
}

#[test]
fn redirect_without_url_is_missing_content_12200() {
    for xml in ["<Redirect/>", "<Redirect> </Redirect>"] {
        let err = parse(&format!("<Response>{xml}</Response>")).unwrap_err();
        assert!(matches!(
            err,
            TwimlError::MissingContent {
                verb: "Redirect",
                ..
            }
        ));
        assert_eq!(err.code(), 12200);
    }
    assert_eq!(
        parse("<Response><Redirect>x<Pause/></Redirect></Response>"),
        Err(TwimlError::BadNesting {
            parent: "Redirect".into(),
            child: "Pause".into()
        })
    );
}

#[test]
fn reject_reason_values() {
    let reject = |xml: &str| {
        let doc = parse(&format!("<Response>{xml}</Response>")).unwrap();
        match doc.verbs.as_slice() {
            [Verb::Reject(r)] => (r.reason, doc.warnings),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(reject("<Reject/>").0, RejectReason::Rejected);
    assert_eq!(reject("<Reject reason=\"busy\"/>").0, RejectReason::Busy);
    assert_eq!(
        reject("<Reject reason=\"Rejected\"/>").0,
        RejectReason::Rejected
    );
    let (r, w) = reject("<Reject reason=\"nope\"/>");
    assert_eq!(r, RejectReason::Rejected);
    assert!(warned(&w, "reason", "nope"));
    assert_eq!(RejectReason::Busy.sip_status(), 486);
    assert_eq!(RejectReason::Rejected.sip_status(), 603);
    assert!(matches!(
        parse("<Response><Reject>no</Reject></Response>"),
        Err(TwimlError::BadNesting { .. })
    ));
}

#[test]
fn ivr_document_parses_every_verb_in_order() {
    let doc = parse(
        "<Response><Say>Welcome</Say><Gather numDigits=\"1\"><Say>Press 1</Say></Gather>\
         <Redirect>/again</Redirect><Reject reason=\"busy\"/></Response>",
    )
    .unwrap();
    assert_eq!(doc.verbs.len(), 4);
    assert!(matches!(&doc.verbs[0], Verb::Say(s) if s.text == "Welcome"));
    assert!(
        matches!(&doc.verbs[1], Verb::Gather(g) if g.num_digits == Some(1) && g.prompts.len() == 1)
    );
    assert!(matches!(&doc.verbs[2], Verb::Redirect(r) if r.url == "/again"));
    assert!(matches!(&doc.verbs[3], Verb::Reject(r) if r.reason == RejectReason::Busy));
}

// ---- Dial ----

#[test]
fn dial_attributes_and_nouns() {
    let doc = parse(
        r#"<Response><Dial action="/after" method="GET" timeout="12" callerId="+15550100"
            record="record-from-answer-dual" recordingStatusCallback="/rec"
            recordingStatusCallbackEvent="in-progress completed" recordingTrack="inbound"
            trim="trim-silence" timeLimit="600" hangupOnStar="true" answerOnBridge="true"
            ringTone="gb">
            <Sip username="u" password="p">sip:agent@10.0.0.1:5070</Sip>
            <Client url="/whisper"><Identity>alice</Identity><Parameter name="k" value="v"/></Client>
            <Number sendDigits="ww1">+15550123</Number>
        </Dial></Response>"#,
    )
    .unwrap();
    let Verb::Dial(d) = &doc.verbs[0] else {
        panic!("not a Dial: {:?}", doc.verbs)
    };
    assert!(doc.warnings.is_empty(), "{:?}", doc.warnings);
    assert_eq!(d.action.as_deref(), Some("/after"));
    assert_eq!(d.method, HttpMethod::Get);
    assert_eq!(d.timeout_secs, 12);
    assert_eq!(d.caller_id.as_deref(), Some("+15550100"));
    assert_eq!(
        d.record,
        Some(crate::twiml::DialRecord {
            from_ringing: false,
            dual: true
        })
    );
    assert!(d.recording_status_callback_events.in_progress);
    assert_eq!(d.recording_track, crate::twiml::RecordingTrack::Inbound);
    assert!(d.trim_silence && d.hangup_on_star && d.answer_on_bridge);
    assert_eq!(d.time_limit_secs, 600);
    assert_eq!(d.ring_tone, "gb");
    use crate::twiml::DialTarget;
    assert_eq!(
        d.nouns[0].target,
        DialTarget::Sip {
            uri: "sip:agent@10.0.0.1:5070".into(),
            username: Some("u".into()),
            password: Some("p".into())
        }
    );
    assert_eq!(
        d.nouns[1].target,
        DialTarget::Client {
            identity: "alice".into(),
            parameters: vec![("k".into(), "v".into())]
        }
    );
    assert_eq!(d.nouns[1].url.as_deref(), Some("/whisper"));
    assert_eq!(
        d.nouns[2].target,
        DialTarget::Number {
            number: "+15550123".into(),
            send_digits: Some("ww1".into())
        }
    );
}

#[test]
fn dial_defaults_bare_number_and_errors() {
    let doc = parse("<Response><Dial>+15550123</Dial></Response>").unwrap();
    let Verb::Dial(d) = &doc.verbs[0] else {
        panic!("not a Dial")
    };
    assert_eq!(d.timeout_secs, 30);
    assert_eq!(d.record, None);
    assert!(!d.trim_silence, "<Dial> does not trim by default");
    assert_eq!(d.time_limit_secs, 14_400);
    assert_eq!(d.nouns.len(), 1);
    let err = parse("<Response><Dial/></Response>").unwrap_err();
    assert_eq!(err.code(), 12200);
    let err = parse("<Response><Dial><Say>x</Say></Dial></Response>").unwrap_err();
    assert_eq!(err.code(), 12200);
    let err = parse("<Response><Dial><Sip>tel:+1</Sip></Dial></Response>").unwrap_err();
    assert_eq!(err.code(), 12200);
    let doc = parse(
        r#"<Response><Dial timeout="1" record="sometimes"><Client>bob</Client></Dial></Response>"#,
    )
    .unwrap();
    let Verb::Dial(d) = &doc.verbs[0] else {
        panic!("not a Dial")
    };
    assert_eq!(d.timeout_secs, 5, "raised to Twilio's minimum");
    assert_eq!(d.record, None);
    assert_eq!(doc.warnings.len(), 2);
}
