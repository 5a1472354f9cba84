//! Flow tests for `<Say>`, `<Gather>`, `<Redirect>`, `<Reject>`, fallback handling and
//! non-TwiML answers.

use super::tests::doc;
use super::*;
use crate::twiml::{parse_document, ParseLimits};

const DOC_URL: &str = "https://h/app/ivr.xml";
const FALLBACK: &str = "https://fb/fallback";

fn flow(body: &str) -> CallFlow {
    CallFlow::new(doc(body), Some(DOC_URL.to_string()))
}

fn flow_with_fallback(body: &str) -> CallFlow {
    CallFlow::with_options(doc(body), Some(DOC_URL.to_string()), fallback())
}

fn fallback() -> FlowOptions {
    FlowOptions {
        fallback_url: Some(FALLBACK.into()),
        fallback_method: HttpMethod::Post,
    }
}

fn extra(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn fetch(url: &str, method: HttpMethod, pairs: &[(&str, &str)]) -> Step {
    Step::Fetch {
        url: url.into(),
        method,
        extra: extra(pairs),
        discard_answer: false,
    }
}

fn expect_gather(step: Step) -> GatherStep {
    match step {
        Step::Gather(g) => g,
        other => panic!("expected Gather, got {other:?}"),
    }
}

fn say(text: &str) -> Step {
    Step::Say {
        text: text.into(),
        voice: "man".into(),
        language: "en".into(),
        loops: 1,
    }
}

// --- <Say> ---

#[test]
fn say_step_carries_voice_language_and_loops() {
    let mut f = flow(
        "<Say voice=\"alice\" loop=\"5000\">Hello</Say><Say voice=\"Polly.Mizuki\" \
         language=\"ja-JP\" loop=\"0\">こんにちは</Say>",
    );
    assert_eq!(
        f.next_step(),
        Step::Say {
            text: "Hello".into(),
            voice: "alice".into(),
            language: "en-US".into(),
            loops: 1000
        }
    );
    assert_eq!(
        f.next_step(),
        Step::Say {
            text: "こんにちは".into(),
            voice: "Polly.Mizuki".into(),
            language: "ja-JP".into(),
            loops: 0
        }
    );
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn empty_say_is_skipped() {
    let mut f = flow("<Say>  </Say><Pause/>");
    assert_eq!(f.next_step(), Step::Pause { secs: 1 });
}

// --- <Gather> ---

#[test]
fn gather_step_resolves_prompts_and_skips_unplayable_ones() {
    let mut f = flow(
        "<Gather timeout=\"3\" finishOnKey=\"*\" numDigits=\"4\"><Say>Enter PIN</Say>\
         <Play>pin.wav</Play><Play>file:///etc/passwd</Play><Say/><Pause length=\"2\"/>\
         <Play digits=\"1\"/></Gather>",
    );
    assert_eq!(
        expect_gather(f.next_step()),
        GatherStep {
            prompts: vec![
                PromptStep::Say {
                    text: "Enter PIN".into(),
                    voice: "man".into(),
                    language: "en".into(),
                    loops: 1
                },
                PromptStep::Play {
                    url: "https://h/app/pin.wav".into(),
                    loops: 1,
                    digits: None
                },
                PromptStep::Pause { secs: 2 },
                PromptStep::Play {
                    url: String::new(),
                    loops: 1,
                    digits: Some("1".into())
                },
            ],
            timeout_secs: 3,
            finish_on_key: Some('*'),
            num_digits: Some(4),
        }
    );
}

#[test]
fn gather_digits_request_the_action_with_digits_and_finish_key() {
    let mut f = flow("<Gather action=\"menu\" method=\"GET\"/><Say>never</Say>");
    expect_gather(f.next_step());
    f.gather_finished("12".into(), Some('#'));
    assert_eq!(
        f.next_step(),
        fetch(
            "https://h/app/menu",
            HttpMethod::Get,
            &[("Digits", "12"), ("FinishedOnKey", "#")]
        )
    );
    f.document_fetched(doc("<Say>Thanks</Say>"), "https://h/app/menu".into());
    assert_eq!(f.next_step(), say("Thanks"));
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn gather_default_action_is_the_document_url() {
    let mut f = flow("<Gather numDigits=\"1\"/>");
    expect_gather(f.next_step());
    f.gather_finished("5".into(), None);
    assert_eq!(
        f.next_step(),
        fetch(
            DOC_URL,
            HttpMethod::Post,
            &[("Digits", "5"), ("FinishedOnKey", "")]
        )
    );
}

#[test]
fn gather_without_input_falls_through_to_next_verb() {
    let mut f = flow("<Gather action=\"menu\"><Say>Press 1</Say></Gather><Say>Goodbye</Say>");
    expect_gather(f.next_step());
    f.gather_finished(String::new(), None);
    assert_eq!(f.next_step(), say("Goodbye"));
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn gather_without_input_and_action_on_empty_result_requests_empty_digits() {
    let mut f = flow("<Gather action=\"menu\" actionOnEmptyResult=\"true\"/><Say>no</Say>");
    expect_gather(f.next_step());
    f.gather_finished(String::new(), None);
    assert_eq!(
        f.next_step(),
        fetch(
            "https://h/app/menu",
            HttpMethod::Post,
            &[("Digits", ""), ("FinishedOnKey", "")]
        )
    );
}

#[test]
fn gather_in_a_static_document_without_action_continues() {
    let mut f = CallFlow::new(doc("<Gather/><Pause/>"), None);
    expect_gather(f.next_step());
    f.gather_finished("42".into(), Some('#'));
    assert_eq!(f.next_step(), Step::Pause { secs: 1 });
    // A relative action cannot be resolved either.
    let mut f = CallFlow::new(doc("<Gather action=\"menu\"/><Pause/>"), None);
    expect_gather(f.next_step());
    f.gather_finished("42".into(), None);
    assert_eq!(f.next_step(), Step::Pause { secs: 1 });
}

#[test]
fn gather_misuse_ends_the_flow() {
    let mut f = flow("<Gather/><Pause/>");
    expect_gather(f.next_step());
    assert_eq!(f.next_step(), Step::End);
    f.gather_finished("1".into(), None);
    assert_eq!(f.next_step(), Step::End);
    let mut f = flow("<Pause/><Pause/>");
    f.gather_finished("1".into(), None);
    assert_eq!(f.next_step(), Step::End);
}

// --- <Redirect>, <Reject>, <Hangup> ---

#[test]
fn redirect_fetches_resolved_url_and_later_verbs_are_unreachable() {
    let mut f = flow("<Redirect method=\"GET\">../next.xml</Redirect><Say>never</Say>");
    assert_eq!(
        f.next_step(),
        fetch("https://h/next.xml", HttpMethod::Get, &[])
    );
    f.document_fetched(doc("<Hangup/>"), "https://h/next.xml".into());
    assert_eq!(f.next_step(), Step::Hangup);
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn unresolvable_redirect_is_an_application_error() {
    let mut f = CallFlow::new(doc("<Redirect>next</Redirect><Say>x</Say>"), None);
    assert_eq!(
        f.next_step(),
        Step::AppError {
            code: ERROR_INVALID_URL
        }
    );
    assert_eq!(f.next_step(), Step::End);
    let mut f = CallFlow::with_options(doc("<Redirect>next</Redirect>"), None, fallback());
    assert_eq!(
        f.next_step(),
        fetch(
            FALLBACK,
            HttpMethod::Post,
            &[("ErrorCode", "11100"), ("ErrorUrl", "next")]
        )
    );
}

#[test]
fn redirect_loop_is_bounded_by_documents_per_call() {
    let mut f = flow("<Redirect>ivr.xml</Redirect>");
    let mut fetches = 0;
    loop {
        match f.next_step() {
            Step::Fetch { url, .. } => {
                fetches += 1;
                f.document_fetched(doc("<Redirect>ivr.xml</Redirect>"), url);
            }
            Step::End => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(fetches, MAX_DOCUMENTS_PER_CALL);
}

#[test]
fn reject_maps_reason_to_sip_status_then_ends() {
    let mut f = flow("<Reject reason=\"busy\"/><Say>never</Say>");
    assert_eq!(f.next_step(), Step::Reject { status: 486 });
    assert_eq!(f.next_step(), Step::End);
    let mut f = flow("<Reject/>");
    assert_eq!(f.next_step(), Step::Reject { status: 603 });
    assert!(f.is_ended());
}

#[test]
fn needs_media_table() {
    let media = [
        Step::Play {
            url: "u".into(),
            loops: 1,
            digits: None,
        },
        Step::Pause { secs: 1 },
        say("x"),
        Step::Record(RecordVerb::default()),
        Step::Gather(GatherStep {
            prompts: vec![],
            timeout_secs: 5,
            finish_on_key: None,
            num_digits: None,
        }),
        Step::Hangup,
    ];
    for step in media {
        assert!(step.needs_media(), "{step:?}");
    }
    let signalling = [
        Step::Reject { status: 603 },
        fetch("u", HttpMethod::Post, &[]),
        Step::AppError { code: 11200 },
        Step::End,
    ];
    for step in signalling {
        assert!(!step.needs_media(), "{step:?}");
    }
}

#[test]
fn document_starting_with_reject_never_needs_media() {
    let mut f = flow("<Reject/><Say>x</Say>");
    let steps: Vec<Step> = std::iter::from_fn(|| Some(f.next_step()))
        .take_while(|s| *s != Step::End)
        .collect();
    assert_eq!(steps, vec![Step::Reject { status: 603 }]);
    assert!(steps.iter().all(|s| !s.needs_media()));
}

// --- failures and the fallback URL (SPEC §2.2) ---

#[test]
fn initial_failure_without_fallback_is_app_error_then_end() {
    let mut f = CallFlow::initial_failure(11200, "https://h/voice", FlowOptions::default());
    assert_eq!(f.next_step(), Step::AppError { code: 11200 });
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn initial_failure_with_fallback_requests_it_and_runs_its_answer() {
    let mut f = CallFlow::initial_failure(12100, "https://h/voice#ct=500&rc=2", fallback());
    assert_eq!(
        f.next_step(),
        fetch(
            FALLBACK,
            HttpMethod::Post,
            &[("ErrorCode", "12100"), ("ErrorUrl", "https://h/voice")]
        )
    );
    f.document_fetched(doc("<Say>Sorry</Say>"), FALLBACK.into());
    assert_eq!(f.next_step(), say("Sorry"));
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn fallback_method_is_honoured() {
    let options = FlowOptions {
        fallback_url: Some(FALLBACK.into()),
        fallback_method: HttpMethod::Get,
    };
    let mut f = CallFlow::initial_failure(12300, "https://h/voice", options);
    assert!(matches!(
        f.next_step(),
        Step::Fetch {
            method: HttpMethod::Get,
            ..
        }
    ));
}

#[test]
fn failing_fallback_is_app_error_not_another_fallback() {
    let mut f = CallFlow::initial_failure(11200, "https://h/voice", fallback());
    assert!(matches!(f.next_step(), Step::Fetch { .. }));
    f.fetch_failed(11200, FALLBACK);
    assert_eq!(f.next_step(), Step::AppError { code: 11200 });
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn unparseable_fallback_answer_is_app_error_with_its_code() {
    let mut f = CallFlow::initial_failure(11200, "https://h/voice", fallback());
    assert!(matches!(f.next_step(), Step::Fetch { .. }));
    let err = parse_document("<Response><Foo/></Response>", &ParseLimits::default()).unwrap_err();
    f.document_failed(&err, FALLBACK);
    assert_eq!(f.next_step(), Step::AppError { code: 12200 });
}

#[test]
fn failed_action_request_goes_to_fallback_spec_11_item_10() {
    let mut f = flow_with_fallback("<Gather action=\"menu\"/>");
    expect_gather(f.next_step());
    f.gather_finished("1".into(), None);
    assert!(matches!(f.next_step(), Step::Fetch { .. }));
    f.fetch_failed(11200, "https://h/app/menu");
    assert_eq!(
        f.next_step(),
        fetch(
            FALLBACK,
            HttpMethod::Post,
            &[("ErrorCode", "11200"), ("ErrorUrl", "https://h/app/menu")]
        )
    );
    // The fallback answered; a later failure may use the fallback again.
    f.document_fetched(doc("<Redirect>/broken</Redirect>"), FALLBACK.into());
    assert_eq!(
        f.next_step(),
        fetch("https://fb/broken", HttpMethod::Post, &[])
    );
    f.fetch_failed(12300, "https://fb/broken");
    assert_eq!(
        f.next_step(),
        fetch(
            FALLBACK,
            HttpMethod::Post,
            &[("ErrorCode", "12300"), ("ErrorUrl", "https://fb/broken")]
        )
    );
}

#[test]
fn failed_action_request_without_fallback_is_app_error() {
    let mut f = flow("<Redirect>next</Redirect>");
    assert!(matches!(f.next_step(), Step::Fetch { .. }));
    let err = parse_document("not xml", &ParseLimits::default()).unwrap_err();
    f.document_failed(&err, "https://h/app/next");
    assert_eq!(f.next_step(), Step::AppError { code: 12100 });
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn unsolicited_failure_report_ends_the_flow() {
    let mut f = flow_with_fallback("<Pause/><Pause/>");
    f.fetch_failed(11200, "https://h/x");
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn discarded_fetch_cannot_trigger_the_fallback() {
    let mut f = flow_with_fallback("<Record action=\"next\"/>");
    assert!(matches!(f.next_step(), Step::Record(_)));
    f.record_finished(RecordResult {
        recording_sid: RecordingSid::from_bits(1),
        recording_url: "u".into(),
        duration_secs: 3,
        digits: String::new(),
        absent: false,
        hung_up: true,
    });
    assert!(matches!(
        f.next_step(),
        Step::Fetch {
            discard_answer: true,
            ..
        }
    ));
    f.fetch_failed(11200, "https://h/app/next");
    assert_eq!(f.next_step(), Step::End);
}

// --- text/plain and audio/* answers ---

#[test]
fn text_answer_is_said_then_hung_up() {
    let mut f = flow("<Redirect>next</Redirect>");
    assert!(matches!(f.next_step(), Step::Fetch { .. }));
    f.text_fetched("  The office\n is closed. ", "https://h/app/next".into());
    assert_eq!(f.next_step(), say("The office is closed."));
    assert_eq!(f.next_step(), Step::Hangup);
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn empty_text_answer_just_hangs_up() {
    let mut f = flow("<Redirect>next</Redirect>");
    assert!(matches!(f.next_step(), Step::Fetch { .. }));
    f.text_fetched(" \n", "https://h/app/next".into());
    assert_eq!(f.next_step(), Step::Hangup);
}

#[test]
fn long_text_answer_is_truncated() {
    let mut f = flow("<Redirect>next</Redirect>");
    assert!(matches!(f.next_step(), Step::Fetch { .. }));
    f.text_fetched(&"x".repeat(10_000), "https://h/app/next".into());
    match f.next_step() {
        Step::Say { text, .. } => assert_eq!(text.len(), crate::twiml::MAX_SAY_BYTES),
        other => panic!("{other:?}"),
    }
}

#[test]
fn audio_answer_is_played_then_hung_up() {
    let mut f = flow("<Redirect>greeting</Redirect>");
    assert!(matches!(f.next_step(), Step::Fetch { .. }));
    f.audio_fetched("https://h/app/greeting".into());
    assert_eq!(
        f.next_step(),
        Step::Play {
            url: "https://h/app/greeting".into(),
            loops: 1,
            digits: None
        }
    );
    assert_eq!(f.next_step(), Step::Hangup);
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn initial_text_answer_via_document_constructor() {
    let mut f = CallFlow::new(
        Document::say_then_hangup("Hi"),
        Some("https://h/voice".into()),
    );
    assert_eq!(f.next_step(), say("Hi"));
    assert_eq!(f.next_step(), Step::Hangup);
}

#[test]
fn verbs_bound_counts_gathers() {
    // A <Gather> that always falls through, repeated past the bound in one document.
    let body = "<Gather/>".repeat(MAX_VERBS_PER_CALL as usize + 3);
    let document = parse_document(
        &format!("<Response>{body}</Response>"),
        &ParseLimits {
            max_bytes: 1 << 20,
            max_length_cap: 14_400,
        },
    )
    .unwrap();
    let mut f = CallFlow::new(document, None);
    let mut gathers = 0;
    while let Step::Gather(_) = f.next_step() {
        gathers += 1;
        f.gather_finished(String::new(), None);
    }
    assert_eq!(gathers, MAX_VERBS_PER_CALL);
}
