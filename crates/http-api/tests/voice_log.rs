//! The per-call transcript API (SPEC §8): every error row and both body formats.

mod common;

use axum::http::{header, Method, StatusCode};
use axum::response::Response;
use chrono::{Datelike, TimeZone, Utc};
use common::*;
use http_api::{VoiceLogConfig, VoiceLogToken};
use serde_json::Value;
use store::{CallEvent, Store};

const CA1: &str = "CA11111111111111111111111111111111";
const CA2: &str = "CA22222222222222222222222222222222";
const CA3: &str = "CA33333333333333333333333333333333";
const RE1: &str = "RE11111111111111111111111111111111";
const RE2: &str = "RE22222222222222222222222222222222";
const RE3: &str = "RE33333333333333333333333333333333";
const CA4: &str = "CA44444444444444444444444444444444";
const RE4: &str = "RE44444444444444444444444444444444";
const CA5: &str = "CA55555555555555555555555555555555";
const RE5: &str = "RE55555555555555555555555555555555";
const PATH: &str = "/public/api/v1/monitor/voice_log";

const TEXT: &str = "system : Please leave a message after the tone.\n\
                    caller : Hi, this is Alice.\n\
                    caller : Call me back at five.\n\
                    system : Goodbye.\n";
const JSON: &str = r#"{"utterances":[{"order":1,"speak_start_sec":0.1,"speaker_type":"system","text":"Please leave a message after the tone.","voice_duration_sec":2.4},{"order":2,"speak_start_sec":3.0,"speaker_type":"caller","text":"Hi, this is Alice.","voice_duration_sec":1.6},{"order":3,"speak_start_sec":5.3,"speaker_type":"caller","text":"Call me back at five.","voice_duration_sec":2.1},{"order":4,"speak_start_sec":12.5,"speaker_type":"system","text":"Goodbye.","voice_duration_sec":0.7}]}"#;

fn token(id: &str, secret: &str) -> VoiceLogToken {
    VoiceLogToken {
        id: id.into(),
        token: secret.into(),
        ..Default::default()
    }
}

fn tokens() -> VoiceLogConfig {
    VoiceLogConfig {
        tokens: vec![
            token("main", "tok-main"),
            VoiceLogToken {
                rate_per_minute: Some(2),
                ..token("rate", "tok-rate")
            },
            VoiceLogToken {
                monthly_quota: Some(1),
                ..token("quota", "tok-quota")
            },
            VoiceLogToken {
                account_sid: Some(AC_OTHER.into()),
                ..token("foreign", "tok-foreign")
            },
            VoiceLogToken {
                account_sid: Some(AC.into()),
                ..token("mine", "tok-mine")
            },
        ],
    }
}

fn say(call_sid: &str, at_ms: i64, text: &str, duration_sec: f64) -> CallEvent {
    CallEvent {
        call_sid: call_sid.parse().unwrap(),
        at_ms,
        speaker: "system".into(),
        text: text.into(),
        duration_sec,
    }
}

/// CA1 (answered at T0+500, `X-Request-Id: req 1/x`): a greeting, a recording from T0+3000
/// with two utterances, a goodbye. CA2: transcription in progress. CA3: another account's.
fn fill(s: &Store) {
    s.insert_call_with_request_id(&call(CA1, AC, T0), Some("req 1/x"))
        .unwrap();
    let re1 = recording(RE1, CA1, AC, T0 + 3_000);
    s.insert_recording(&re1).unwrap();
    let mut tr1 = transcription(
        "TR11111111111111111111111111111111",
        &re1,
        "queued",
        T0 + 12_000,
    );
    s.insert_transcription(&tr1).unwrap();
    tr1.status = store::TranscriptionStatus::Completed;
    s.finish_transcription(
        &tr1,
        &[
            utterance(1, 0.46, 1.63, "Hi, this is Alice."),
            utterance(2, 2.8, 2.1, "Call me back at five."),
        ],
    )
    .unwrap();
    s.insert_call_event(&say(
        CA1,
        T0 + 600,
        "Please leave a message after the tone.",
        2.4,
    ))
    .unwrap();
    s.insert_call_event(&say(CA1, T0 + 13_000, "Goodbye.", 0.7))
        .unwrap();

    s.insert_call(&call(CA2, AC, T0)).unwrap();
    let re2 = recording(RE2, CA2, AC, T0 + 1_000);
    s.insert_recording(&re2).unwrap();
    s.insert_transcription(&transcription(
        "TR22222222222222222222222222222222",
        &re2,
        "in-progress",
        T0,
    ))
    .unwrap();

    // Calls whose client ids are 256 ASCII and 255 three-byte characters long.
    for (ca, re, tr, id) in [
        (
            CA4,
            RE4,
            "TR44444444444444444444444444444444",
            "a".repeat(256),
        ),
        (
            CA5,
            RE5,
            "TR55555555555555555555555555555555",
            "あ".repeat(255),
        ),
    ] {
        s.insert_call_with_request_id(&call(ca, AC, T0), Some(&id))
            .unwrap();
        let rec = recording(re, ca, AC, T0 + 1_000);
        s.insert_recording(&rec).unwrap();
        s.insert_transcription(&transcription(tr, &rec, "completed", T0))
            .unwrap();
        s.replace_utterances(
            &tr.parse().unwrap(),
            &[utterance(1, 0.0, 1.0, "hello world")],
        )
        .unwrap();
    }

    s.insert_call(&call(CA3, AC_OTHER, T0)).unwrap();
    let re3 = recording(RE3, CA3, AC_OTHER, T0 + 1_000);
    s.insert_recording(&re3).unwrap();
    s.insert_transcription(&transcription(
        "TR33333333333333333333333333333333",
        &re3,
        "completed",
        T0,
    ))
    .unwrap();
}

fn setup() -> Fixture {
    fixture(tokens(), fill)
}

async fn get(f: &Fixture, id: &str, auth: Option<&str>) -> Response {
    f.send(Method::GET, &format!("{PATH}/{id}"), auth).await
}

/// Asserts the error shape and returns the response headers' Retry-After, if any.
async fn expect_error(resp: Response, status: StatusCode) -> Option<u64> {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    let retry = resp
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    let v: Value = serde_json::from_slice(&body(resp).await).unwrap();
    assert_eq!(v["status"], status.as_u16(), "{v}");
    assert!(!v["error"].as_str().unwrap().is_empty(), "{v}");
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    retry
}

#[tokio::test]
async fn text_lines_merge_hark_and_caller_by_time() {
    let f = setup();
    for id in [CA1, RE1, "req%201%2Fx"] {
        let resp = get(&f, id, Some("Token tok-main")).await;
        assert_eq!(resp.status(), StatusCode::OK, "{id}");
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(body_text(resp).await, TEXT, "{id}");
    }
    // Explicit text, and a token restricted to this very account.
    let resp = get(&f, &format!("{CA1}?format=text"), Some("token tok-mine")).await;
    assert_eq!(body_text(resp).await, TEXT);
}

#[tokio::test]
async fn format_json_gives_utterances_with_one_decimal_seconds() {
    let f = setup();
    let resp = get(&f, &format!("{CA1}?format=json"), Some("Token tok-main")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(body_text(resp).await, JSON);
}

#[tokio::test]
async fn missing_or_invalid_token_is_401() {
    let f = setup();
    let basic_auth = basic(AC, TOKEN);
    for auth in [
        None,
        Some("Token wrong"),
        Some("Token tok-mai"),
        Some("Token tok-main2"),
        Some("Token "),
        Some("Bearer tok-main"),
        Some("tok-main"),
        Some(basic_auth.as_str()),
    ] {
        for id in [CA1, "unknown"] {
            let resp = get(&f, id, auth).await;
            assert_eq!(
                resp.headers().get(header::WWW_AUTHENTICATE).unwrap(),
                "Token"
            );
            expect_error(resp, StatusCode::UNAUTHORIZED).await;
        }
    }
    // No tokens configured: nothing authenticates.
    let closed = fixture(VoiceLogConfig::default(), fill);
    expect_error(
        get(&closed, CA1, Some("Token tok-main")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let empty = fixture(
        VoiceLogConfig {
            tokens: vec![token("e", "")],
        },
        fill,
    );
    expect_error(
        get(&empty, CA1, Some("Token ")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn token_of_another_account_or_a_call_of_another_account_is_403() {
    let f = setup();
    for id in [CA1, "unknown"] {
        expect_error(
            get(&f, id, Some("Token tok-foreign")).await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    for id in [CA3, RE3] {
        expect_error(
            get(&f, id, Some("Token tok-main")).await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
}

#[tokio::test]
async fn out_of_range_unknown_and_unfinished_ids_are_404() {
    let f = setup();
    // A call carries this 256-character id, but it is out of range.
    let long = "a".repeat(256);
    let longest = "b".repeat(255);
    for id in [
        long.as_str(),
        longest.as_str(),
        "unknown",
        CA2,
        RE2,
        "%FF",
        "%zz",
    ] {
        expect_error(
            get(&f, id, Some("Token tok-main")).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    // Its call is there (by CallSid); and 255 characters count as 255 even at 765 bytes.
    for id in [CA4.to_string(), "%E3%81%82".repeat(255)] {
        let resp = get(&f, &id, Some("Token tok-main")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(body_text(resp).await, "caller : hello world\n");
    }
    for uri in [PATH.to_string(), format!("{PATH}/")] {
        let resp = f.send(Method::GET, &uri, Some("Token tok-main")).await;
        expect_error(resp, StatusCode::NOT_FOUND).await;
    }
    // Authentication comes first even for an empty id.
    let resp = f.send(Method::GET, &format!("{PATH}/"), None).await;
    expect_error(resp, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn rate_per_minute_spent_is_429_with_retry_after() {
    let f = setup();
    for _ in 0..2 {
        assert_eq!(
            get(&f, CA1, Some("Token tok-rate")).await.status(),
            StatusCode::OK
        );
    }
    let retry = expect_error(
        get(&f, CA1, Some("Token tok-rate")).await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await
    .expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    // Refused requests do not extend the wait; other tokens are not affected.
    let again = expect_error(
        get(&f, "unknown", Some("Token tok-rate")).await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await
    .unwrap();
    assert!(again <= retry, "{again} > {retry}");
    assert_eq!(
        get(&f, CA1, Some("Token tok-main")).await.status(),
        StatusCode::OK
    );
}

fn month_and_rest_now() -> (String, i64) {
    let now = Utc::now();
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    let next = Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).unwrap();
    (now.format("%Y-%m").to_string(), (next - now).num_seconds())
}

#[tokio::test]
async fn monthly_quota_spent_is_429_until_next_month_and_persisted() {
    let f = setup();
    // Quota 1: the first request (even a 404) spends it.
    expect_error(
        get(&f, "unknown", Some("Token tok-quota")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let retry = expect_error(
        get(&f, CA1, Some("Token tok-quota")).await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await
    .expect("Retry-After");
    let (month, rest) = month_and_rest_now();
    assert!((retry as i64 - rest).abs() <= 5, "{retry} vs {rest}");
    assert_eq!(f.state.store.count_token_use("quota", &month).unwrap(), 1);
    assert_eq!(
        f.state.store.count_token_use("main", &month).unwrap(),
        0,
        "no quota: not counted"
    );

    // The count lives in the database: a new server over the same file still refuses.
    let g = fixture(tokens(), |s| {
        fill(s);
        s.record_token_use("quota", &month).unwrap();
    });
    expect_error(
        get(&g, CA1, Some("Token tok-quota")).await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    // A previous month's use does not count.
    let h = fixture(tokens(), |s| {
        fill(s);
        s.record_token_use("quota", "2000-01").unwrap();
    });
    assert_eq!(
        get(&h, CA1, Some("Token tok-quota")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn broken_store_is_500() {
    let f = setup();
    let raw = rusqlite::Connection::open(f.dir.join("hark.db")).unwrap();
    raw.execute_batch("DROP TABLE call_events").unwrap();
    drop(raw);
    expect_error(
        get(&f, CA1, Some("Token tok-main")).await,
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;
    // And the quota counter's table, for a token with a quota.
    let g = setup();
    let raw = rusqlite::Connection::open(g.dir.join("hark.db")).unwrap();
    raw.execute_batch("DROP TABLE token_use").unwrap();
    drop(raw);
    expect_error(
        get(&g, CA1, Some("Token tok-quota")).await,
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;
}

#[tokio::test]
async fn only_get_is_allowed() {
    let f = setup();
    let resp = f
        .send(
            Method::POST,
            &format!("{PATH}/{CA1}"),
            Some("Token tok-main"),
        )
        .await;
    assert_eq!(resp.headers()[header::ALLOW], "GET, HEAD");
    expect_error(resp, StatusCode::METHOD_NOT_ALLOWED).await;
}
