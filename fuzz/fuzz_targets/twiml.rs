//! TwiML document parse (control crate): never panics, and what it accepts is within the
//! bounds the parser promises.
//!
//! Invariants:
//! - errors carry Twilio's codes (12100 or 12200); TooLarge only above `max_bytes`;
//! - `parse_document_bytes` and `parse_document` agree on UTF-8; other bytes are 12100;
//! - the result is deterministic and `max_length_cap` changes nothing but `<Record>`'s
//!   `maxLength` (and the warnings about it);
//! - accepted values are in range: Record maxLength in 2..=cap (or the cap), finishOnKey keys
//!   only, transcribeCallback implies transcribe; Play/Say loop ≤ MAX_LOOPS, Play digits only
//!   `0-9*#A-Dw` and a Play has a URL or digits; Say text ≤ MAX_SAY_BYTES with whitespace
//!   collapsed, a voice and a language; Pause ≥ 1 s; Gather timeout ≥ 1, one finish key,
//!   numDigits ≥ 1; Redirect has a trimmed URL; Dial timeout 5..=600, timeLimit 1..=14400,
//!   at least one noun.
#![no_main]

use control::twiml::PlayVerb;
use control::twiml::{MAX_LOOPS, MAX_SAY_BYTES};
use control::{
    parse_document, parse_document_bytes, Document, ParseLimits, Prompt, SayVerb, TwimlError, Verb,
};
use libfuzzer_sys::fuzz_target;

const FINISH_KEYS: &str = "0123456789*#";
const PLAY_DIGITS: &str = "0123456789*#ABCDw";

fn check_play(p: &PlayVerb) {
    assert!(p.loop_count <= MAX_LOOPS);
    if let Some(d) = &p.digits {
        assert!(
            !d.is_empty() && d.chars().all(|c| PLAY_DIGITS.contains(c)),
            "{d:?}"
        );
    } else {
        assert!(!p.url.is_empty(), "Play without URL or digits");
    }
}

fn check_say(s: &SayVerb) {
    assert!(s.text.len() <= MAX_SAY_BYTES);
    assert!(
        !s.text.contains("  ") && !s.text.starts_with(' '),
        "{:?}",
        s.text
    );
    assert!(!s.text.contains(['\t', '\r', '\n']), "{:?}", s.text);
    assert!(s.loop_count <= MAX_LOOPS);
    assert!(!s.voice.is_empty() && s.voice.len() <= 64);
    assert!(!s.language.is_empty());
}

fn check(doc: &Document, limits: &ParseLimits) {
    for v in &doc.verbs {
        match v {
            Verb::Record(r) => {
                let cap = limits.max_length_cap;
                assert!(
                    r.max_length_secs == cap || (2..=cap).contains(&r.max_length_secs),
                    "maxLength {} with cap {cap}",
                    r.max_length_secs
                );
                assert!(r.finish_on_key.chars().all(|c| FINISH_KEYS.contains(c)));
                assert!(r.transcribe_callback.is_none() || r.transcribe);
                let e = r.recording_status_callback_events;
                assert!(e.in_progress || e.completed || e.absent);
                if let Some(l) = &r.transcribe_language {
                    assert!(!l.is_empty() && l.len() <= 35);
                }
                for u in [
                    &r.action,
                    &r.recording_status_callback,
                    &r.transcribe_callback,
                ] {
                    assert!(u.as_ref().is_none_or(|u| !u.is_empty()));
                }
            }
            Verb::Play(p) => check_play(p),
            Verb::Pause { length_secs } => assert!(*length_secs >= 1),
            Verb::Hangup => {}
            Verb::Say(s) => check_say(s),
            Verb::Gather(g) => {
                assert!(g.timeout_secs >= 1);
                assert!(g.finish_on_key.is_none_or(|k| FINISH_KEYS.contains(k)));
                assert!(g.num_digits.is_none_or(|n| n >= 1));
                for p in &g.prompts {
                    match p {
                        Prompt::Say(s) => check_say(s),
                        Prompt::Play(p) => check_play(p),
                        Prompt::Pause { length_secs } => assert!(*length_secs >= 1),
                    }
                }
            }
            Verb::Redirect(r) => {
                assert!(!r.url.is_empty());
                assert_eq!(r.url.trim_matches([' ', '\t', '\r', '\n']), r.url);
            }
            Verb::Reject(r) => assert!(matches!(r.reason.sip_status(), 486 | 603)),
            Verb::Dial(d) => {
                assert!(
                    (5..=600).contains(&d.timeout_secs),
                    "Dial timeout {}",
                    d.timeout_secs
                );
                assert!((1..=14_400).contains(&d.time_limit_secs));
                assert!(!d.nouns.is_empty());
                assert!(d.transcribe_callback.is_none() || d.transcribe);
                let e = d.recording_status_callback_events;
                assert!(e.in_progress || e.completed || e.absent);
            }
        }
    }
    for w in &doc.warnings {
        assert!(!w.verb.is_empty() && !w.attribute.is_empty());
    }
}

fn same_except_record_length(a: &Document, b: &Document) -> bool {
    a.verbs.len() == b.verbs.len()
        && a.verbs.iter().zip(&b.verbs).all(|(x, y)| match (x, y) {
            (Verb::Record(x), Verb::Record(y)) => {
                let mut y = y.clone();
                y.max_length_secs = x.max_length_secs;
                *x == y
            }
            _ => x == y,
        })
}

fn check_error(e: &TwimlError, len: usize, limits: &ParseLimits) {
    assert!(matches!(e.code(), 12100 | 12200), "{e:?}");
    if let TwimlError::TooLarge { size, limit } = e {
        assert!(*size > *limit && *limit == limits.max_bytes && *size == len);
    } else {
        assert!(len <= limits.max_bytes);
    }
    let _ = e.to_string();
}

fuzz_target!(|data: &[u8]| {
    let limits = ParseLimits::default();
    let small = ParseLimits {
        max_length_cap: 60,
        ..limits
    };
    let parsed = parse_document_bytes(data, &limits);
    match std::str::from_utf8(data) {
        Ok(text) => assert_eq!(
            parse_document(text, &limits),
            parsed,
            "str and bytes differ"
        ),
        Err(_) => assert!(
            matches!(
                parsed,
                Err(TwimlError::TooLarge { .. } | TwimlError::NotWellFormed { .. })
            ),
            "non-UTF-8 input: {parsed:?}"
        ),
    }
    assert_eq!(
        parse_document_bytes(data, &limits),
        parsed,
        "not deterministic"
    );
    let capped = parse_document_bytes(data, &small);
    match (&parsed, &capped) {
        (Ok(a), Ok(b)) => {
            check(a, &limits);
            check(b, &small);
            assert!(
                same_except_record_length(a, b),
                "max_length_cap changed more than Record"
            );
        }
        (Err(a), Err(b)) => {
            check_error(a, data.len(), &limits);
            assert_eq!(a, b, "max_length_cap changed the error");
        }
        _ => panic!("max_length_cap changed the outcome: {parsed:?} vs {capped:?}"),
    }
});
