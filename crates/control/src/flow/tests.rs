use super::*;
use crate::twiml::{parse_document, ParseLimits};

const DOC_URL: &str = "https://h/app/vm.xml";

/// A `<Response>` document of `body` (also used by the IVR flow tests).
pub(super) fn doc(body: &str) -> Document {
    parse_document(
        &format!("<Response>{body}</Response>"),
        &ParseLimits::default(),
    )
    .unwrap()
}

fn flow(body: &str) -> CallFlow {
    CallFlow::new(doc(body), Some(DOC_URL.to_string()))
}

fn static_flow(body: &str) -> CallFlow {
    CallFlow::new(doc(body), None)
}

/// The recording `recorded()` reports, and its URL.
const RE: &str = "RE00000000000000000000000000000001";
const RE_URL: &str =
    "https://pub/2010-04-01/Accounts/AC1/Recordings/RE00000000000000000000000000000001";

fn recorded() -> RecordResult {
    RecordResult {
        recording_sid: RecordingSid::from_bits(1),
        recording_url: RE_URL.into(),
        duration_secs: 7,
        digits: "#".into(),
        absent: false,
        hung_up: false,
    }
}

fn absent() -> RecordResult {
    RecordResult {
        duration_secs: 0,
        digits: String::new(),
        absent: true,
        ..recorded()
    }
}

fn hung_up() -> RecordResult {
    RecordResult {
        digits: "hangup".into(),
        hung_up: true,
        ..recorded()
    }
}

fn expect_record(step: Step) -> RecordVerb {
    match step {
        Step::Record(r) => r,
        other => panic!("expected Record, got {other:?}"),
    }
}

fn extra(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn verbs_run_top_to_bottom_then_end() {
    let mut f = flow("<Play loop=\"0\">a.wav</Play><Pause length=\"3\"/>");
    assert_eq!(
        f.next_step(),
        Step::Play {
            url: "https://h/app/a.wav".into(),
            loops: 0,
            digits: None
        }
    );
    assert_eq!(f.next_step(), Step::Pause { secs: 3 });
    assert_eq!(f.next_step(), Step::End);
    assert_eq!(f.next_step(), Step::End);
    assert!(f.is_ended());
}

#[test]
fn hangup_is_followed_only_by_end() {
    let mut f = flow("<Hangup/><Pause/>");
    assert_eq!(f.next_step(), Step::Hangup);
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn unresolvable_play_is_skipped() {
    // Static document: relative media has no base; http document: local files refused.
    let mut f = static_flow("<Play>beep.wav</Play><Play>/srv/beep.wav</Play>");
    assert_eq!(
        f.next_step(),
        Step::Play {
            url: "file:///srv/beep.wav".into(),
            loops: 1,
            digits: None
        }
    );
    let mut f = flow("<Play>file:///etc/passwd</Play><Pause/>");
    assert_eq!(f.next_step(), Step::Pause { secs: 1 });
}

#[test]
fn play_with_digits_sends_digits_and_ignores_body() {
    let mut f = flow("<Play digits=\"1w2\"/><Play digits=\"9\" loop=\"2\">a.wav</Play>");
    assert_eq!(
        f.next_step(),
        Step::Play {
            url: String::new(),
            loops: 1,
            digits: Some("1w2".into())
        }
    );
    assert_eq!(
        f.next_step(),
        Step::Play {
            url: String::new(),
            loops: 2,
            digits: Some("9".into())
        }
    );
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn absent_recording_continues_with_next_verb() {
    let mut f = flow("<Record/><Play>bye.wav</Play>");
    expect_record(f.next_step());
    f.record_finished(absent());
    assert_eq!(
        f.next_step(),
        Step::Play {
            url: "https://h/app/bye.wav".into(),
            loops: 1,
            digits: None
        }
    );
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn absent_and_hung_up_requests_nothing() {
    let mut f = flow("<Record action=\"next\"/><Play>bye.wav</Play>");
    expect_record(f.next_step());
    f.record_finished(RecordResult {
        hung_up: true,
        ..absent()
    });
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn hung_up_fetches_action_with_discard_then_ends() {
    let mut f = flow("<Record action=\"next\" method=\"GET\"/><Play>bye.wav</Play>");
    expect_record(f.next_step());
    f.record_finished(hung_up());
    assert_eq!(
        f.next_step(),
        Step::Fetch {
            url: "https://h/app/next".into(),
            method: HttpMethod::Get,
            extra: extra(&[
                ("RecordingUrl", RE_URL),
                ("RecordingSid", RE),
                ("RecordingDuration", "7"),
                ("Digits", "hangup"),
            ]),
            discard_answer: true,
        }
    );
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn hung_up_without_digits_reports_hangup() {
    let mut f = flow("<Record action=\"next\"/>");
    expect_record(f.next_step());
    f.record_finished(RecordResult {
        digits: String::new(),
        ..hung_up()
    });
    match f.next_step() {
        Step::Fetch { extra, .. } => {
            assert_eq!(extra[3], ("Digits".to_string(), "hangup".to_string()))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn hung_up_without_action_ends() {
    let mut f = static_flow("<Record/><Play>/x.wav</Play>");
    expect_record(f.next_step());
    f.record_finished(hung_up());
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn action_answer_replaces_document_and_runs_from_its_first_verb() {
    let mut f = flow("<Record action=\"next\"/><Play>never.wav</Play>");
    assert_eq!(
        expect_record(f.next_step()).action.as_deref(),
        Some("https://h/app/next")
    );
    f.record_finished(recorded());
    let step = f.next_step();
    assert_eq!(
        step,
        Step::Fetch {
            url: "https://h/app/next".into(),
            method: HttpMethod::Post,
            extra: extra(&[
                ("RecordingUrl", RE_URL),
                ("RecordingSid", RE),
                ("RecordingDuration", "7"),
                ("Digits", "#"),
            ]),
            discard_answer: false,
        }
    );
    f.document_fetched(
        doc("<Play>thanks.wav</Play><Hangup/>"),
        "https://other/dir/next.xml".into(),
    );
    assert_eq!(f.document_url(), Some("https://other/dir/next.xml"));
    // Relative URLs now resolve against the new document.
    assert_eq!(
        f.next_step(),
        Step::Play {
            url: "https://other/dir/thanks.wav".into(),
            loops: 1,
            digits: None
        }
    );
    assert_eq!(f.next_step(), Step::Hangup);
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn static_document_without_action_continues_after_record() {
    let mut f = static_flow("<Record/><Play>/srv/bye.wav</Play>");
    assert_eq!(expect_record(f.next_step()).action, None);
    f.record_finished(recorded());
    assert_eq!(
        f.next_step(),
        Step::Play {
            url: "file:///srv/bye.wav".into(),
            loops: 1,
            digits: None
        }
    );
}

#[test]
fn static_document_relative_action_is_dropped() {
    let mut f = static_flow("<Record action=\"next\"/><Pause/>");
    assert_eq!(expect_record(f.next_step()).action, None);
    f.record_finished(recorded());
    assert_eq!(f.next_step(), Step::Pause { secs: 1 });
}

#[test]
fn relative_action_and_callbacks_resolve_against_document_url() {
    let mut f = flow(
        "<Record action=\"next\" recordingStatusCallback=\"/status\" transcribeCallback=\"../t\"/>",
    );
    let r = expect_record(f.next_step());
    assert_eq!(r.action.as_deref(), Some("https://h/app/next"));
    assert_eq!(
        r.recording_status_callback.as_deref(),
        Some("https://h/status")
    );
    assert_eq!(r.transcribe_callback.as_deref(), Some("https://h/t"));
    assert!(r.transcribe);
}

#[test]
fn default_action_is_the_document_url() {
    let mut f = flow("<Record/>");
    assert_eq!(
        expect_record(f.next_step()).action.as_deref(),
        Some(DOC_URL)
    );
}

#[test]
fn next_step_during_record_ends_the_flow() {
    let mut f = flow("<Record/><Play>a.wav</Play>");
    expect_record(f.next_step());
    assert_eq!(f.next_step(), Step::End);
    // A late result cannot revive it.
    f.record_finished(recorded());
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn next_step_while_awaiting_document_ends_the_flow() {
    let mut f = flow("<Record/>");
    expect_record(f.next_step());
    f.record_finished(recorded());
    assert!(matches!(
        f.next_step(),
        Step::Fetch {
            discard_answer: false,
            ..
        }
    ));
    assert_eq!(f.next_step(), Step::End);
    f.document_fetched(doc("<Pause/>"), DOC_URL.into());
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn unsolicited_results_end_the_flow() {
    let mut f = flow("<Pause/><Pause/>");
    f.record_finished(recorded());
    assert_eq!(f.next_step(), Step::End);
    let mut f = flow("<Pause/><Pause/>");
    f.document_fetched(doc("<Hangup/>"), DOC_URL.into());
    assert_eq!(f.next_step(), Step::End);
}

#[test]
fn action_loop_is_bounded_by_documents_per_call() {
    // <Record/> with the default action re-fetches itself forever.
    let mut f = flow("<Record/>");
    let mut fetches = 0;
    loop {
        match f.next_step() {
            Step::Record(_) => f.record_finished(recorded()),
            Step::Fetch { url, .. } => {
                fetches += 1;
                f.document_fetched(doc("<Record/>"), url);
            }
            Step::End => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(fetches, MAX_DOCUMENTS_PER_CALL);
}

#[test]
fn verbs_are_bounded_per_call() {
    let body = "<Pause/>".repeat(MAX_VERBS_PER_CALL as usize + 5);
    let document = parse_document(
        &format!("<Response>{body}</Response>"),
        &ParseLimits {
            max_bytes: 1 << 20,
            max_length_cap: 14_400,
        },
    )
    .unwrap();
    let mut f = CallFlow::new(document, None);
    let mut pauses = 0;
    while f.next_step() == (Step::Pause { secs: 1 }) {
        pauses += 1;
    }
    assert_eq!(pauses, MAX_VERBS_PER_CALL);
    assert_eq!(f.next_step(), Step::End);
}
