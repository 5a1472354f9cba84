//! The Transcription REST resource (SPEC §6.4) against a real store.

mod common;

use axum::http::{header, Method, StatusCode};
use common::*;
use serde_json::Value;

const CA1: &str = "CA11111111111111111111111111111111";
const RE1: &str = "RE11111111111111111111111111111111";
const RE2: &str = "RE22222222222222222222222222222222";
const RE_UNKNOWN: &str = "RE99999999999999999999999999999999";
/// RE1, completed.
const TR1: &str = "TR11111111111111111111111111111111";
/// RE1, queued.
const TR2: &str = "TR22222222222222222222222222222222";
/// RE2, failed.
const TR3: &str = "TR33333333333333333333333333333333";
const TR_UNKNOWN: &str = "TR99999999999999999999999999999999";
const BASE: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef";

fn setup() -> Fixture {
    fixture(Default::default(), |s| {
        s.insert_call(&call(CA1, AC, T0)).unwrap();
        let re1 = recording(RE1, CA1, AC, T0 + 1_000);
        let re2 = recording(RE2, CA1, AC, T0 + 20_000);
        s.insert_recording(&re1).unwrap();
        s.insert_recording(&re2).unwrap();
        s.insert_transcription(&transcription(TR1, &re1, "completed", T0 + 10_000))
            .unwrap();
        s.replace_utterances(
            &TR1.parse().unwrap(),
            &[utterance(1, 0.5, 1.0, "hello world")],
        )
        .unwrap();
        s.insert_transcription(&transcription(TR2, &re1, "queued", T0 + 20_000))
            .unwrap();
        s.insert_transcription(&transcription(TR3, &re2, "failed", T0 + 30_000))
            .unwrap();
    })
}

fn routes(account: &str) -> Vec<String> {
    let b = format!("/2010-04-01/Accounts/{account}");
    vec![
        format!("{b}/Transcriptions.json"),
        format!("{b}/Transcriptions/{TR1}.json"),
        format!("{b}/Transcriptions/{TR1}.txt"),
        format!("{b}/Transcriptions/{TR_UNKNOWN}.json"),
        format!("{b}/Recordings/{RE1}/Transcriptions.json"),
        format!("{b}/Recordings/{RE1}/Transcriptions/{TR1}.json"),
    ]
}

async fn get_json(f: &Fixture, uri: &str) -> (StatusCode, Value) {
    let resp = f.send(Method::GET, uri, Some(&basic(AC, TOKEN))).await;
    let status = resp.status();
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/json",
        "{uri}"
    );
    (status, serde_json::from_slice(&body(resp).await).unwrap())
}

async fn sids(f: &Fixture, uri: &str) -> Vec<String> {
    let (status, v) = get_json(f, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {v}");
    v["transcriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["sid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn transcription_routes_need_the_accounts_credentials() {
    let f = setup();
    for uri in routes(AC) {
        for method in [Method::GET, Method::DELETE] {
            for auth in [None, Some(basic(AC, "guess"))] {
                let resp = f.send(method.clone(), &uri, auth.as_deref()).await;
                assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {uri}");
            }
        }
    }
    for uri in routes(AC_OTHER) {
        let resp = f.send(Method::GET, &uri, Some(&basic(AC, TOKEN))).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{uri}");
    }
    // Nothing was deleted by the attempts.
    assert_eq!(
        get_json(&f, &format!("{BASE}/Transcriptions/{TR1}.json"))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn list_is_newest_first_with_exactly_one_collection_key() {
    let f = setup();
    let (status, v) = get_json(&f, &format!("{BASE}/Transcriptions.json")).await;
    assert_eq!(status, StatusCode::OK);
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "end",
            "first_page_uri",
            "next_page_uri",
            "page",
            "page_size",
            "previous_page_uri",
            "start",
            "transcriptions",
            "uri"
        ]
    );
    let items = v["transcriptions"].as_array().unwrap();
    let got: Vec<(&str, &str, &Value)> = items
        .iter()
        .map(|t| {
            (
                t["sid"].as_str().unwrap(),
                t["status"].as_str().unwrap(),
                &t["transcription_text"],
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (TR3, "failed", &Value::Null),
            (TR2, "in-progress", &Value::Null),
            (TR1, "completed", &Value::from("hello world")),
        ]
    );
    assert_eq!(
        v["uri"],
        format!("{BASE}/Transcriptions.json?PageSize=50&Page=0")
    );
    assert!(v["next_page_uri"].is_null());
}

#[tokio::test]
async fn pages_of_one_walk_all_three_by_next_page_uri() {
    let f = setup();
    let mut uri = format!("{BASE}/Transcriptions.json?PageSize=1");
    let mut seen = Vec::new();
    for page in 0.. {
        let (status, v) = get_json(&f, &uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {v}");
        assert_eq!(v["page"], page);
        seen.push(v["transcriptions"][0]["sid"].as_str().unwrap().to_string());
        match v["next_page_uri"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&format!("{BASE}/Transcriptions.json?")),
                    "{next}"
                );
                uri = next.to_string();
            }
            None => break,
        }
        assert!(page < 5, "paging does not end");
    }
    assert_eq!(seen, [TR3, TR2, TR1]);
    // Page numbers reach the same items.
    assert_eq!(
        sids(&f, &format!("{BASE}/Transcriptions.json?PageSize=1&Page=2")).await,
        [TR1]
    );
    let (status, _) = get_json(&f, &format!("{BASE}/Transcriptions.json?PageSize=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_recordings_list_and_instance_are_that_recordings_only() {
    let f = setup();
    let list = |re: &str| format!("{BASE}/Recordings/{re}/Transcriptions.json");
    assert_eq!(sids(&f, &list(RE1)).await, [TR2, TR1]);
    assert_eq!(sids(&f, &list(RE2)).await, [TR3]);
    assert!(sids(&f, &list(RE_UNKNOWN)).await.is_empty());
    let walked = sids(&f, &format!("{}?PageSize=1", list(RE1))).await;
    assert_eq!(walked, [TR2]);

    let (status, one) = get_json(
        &f,
        &format!("{BASE}/Recordings/{RE1}/Transcriptions/{TR1}.json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, direct) = get_json(&f, &format!("{BASE}/Transcriptions/{TR1}.json")).await;
    assert_eq!(one, direct);
    let (status, v) = get_json(
        &f,
        &format!("{BASE}/Recordings/{RE2}/Transcriptions/{TR1}.json"),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_u64()),
        (StatusCode::NOT_FOUND, Some(20404))
    );
}

#[tokio::test]
async fn instance_json_has_the_spec_fields() {
    let f = setup();
    let (status, v) = get_json(&f, &format!("{BASE}/Transcriptions/{TR1}.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v,
        serde_json::json!({
            "sid": TR1,
            "account_sid": AC,
            "api_version": "2010-04-01",
            "date_created": "Tue, 14 Nov 2023 22:13:30 +0000",
            "date_updated": "Tue, 14 Nov 2023 22:13:31 +0000",
            "duration": "8",
            "price": null,
            "price_unit": "USD",
            "recording_sid": RE1,
            "status": "completed",
            "transcription_text": "hello world",
            "type": "fast",
            "uri": format!("{BASE}/Transcriptions/{TR1}.json"),
        })
    );
    let (status, v) = get_json(&f, &format!("{BASE}/Transcriptions/{TR_UNKNOWN}.json")).await;
    assert_eq!(
        (status, v["status"].as_u64()),
        (StatusCode::NOT_FOUND, Some(404))
    );
}

#[tokio::test]
async fn txt_is_the_text_alone_and_404_until_completed() {
    let f = setup();
    let resp = f
        .send(
            Method::GET,
            &format!("{BASE}/Transcriptions/{TR1}.txt"),
            Some(&basic(AC, TOKEN)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert_eq!(body_text(resp).await, "hello world");
    for sid in [TR2, TR3, TR_UNKNOWN] {
        let resp = f
            .send(
                Method::GET,
                &format!("{BASE}/Transcriptions/{sid}.txt"),
                Some(&basic(AC, TOKEN)),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{sid}");
    }
    let resp = f
        .send(
            Method::DELETE,
            &format!("{BASE}/Transcriptions/{TR1}.txt"),
            Some(&basic(AC, TOKEN)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()[header::ALLOW], "GET, HEAD");
}

#[tokio::test]
async fn delete_is_204_then_404_and_takes_the_utterances() {
    let f = setup();
    let auth = basic(AC, TOKEN);
    let uri = format!("{BASE}/Transcriptions/{TR1}.json");
    let resp = f.send(Method::DELETE, &uri, Some(&auth)).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(body(resp).await.is_empty());
    assert_eq!(get_json(&f, &uri).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        f.send(Method::DELETE, &uri, Some(&auth)).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(f
        .state
        .store
        .utterances(&TR1.parse().unwrap())
        .unwrap()
        .is_empty());
    // Through the recording path, only for its own recording.
    let wrong = format!("{BASE}/Recordings/{RE1}/Transcriptions/{TR3}.json");
    assert_eq!(
        f.send(Method::DELETE, &wrong, Some(&auth)).await.status(),
        StatusCode::NOT_FOUND
    );
    let right = format!("{BASE}/Recordings/{RE2}/Transcriptions/{TR3}.json");
    assert_eq!(
        f.send(Method::DELETE, &right, Some(&auth)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        sids(&f, &format!("{BASE}/Transcriptions.json")).await,
        [TR2]
    );
}

#[tokio::test]
async fn deleting_a_recording_deletes_its_transcriptions() {
    let f = setup();
    let resp = f
        .send(
            Method::DELETE,
            &format!("{BASE}/Recordings/{RE1}.json"),
            Some(&basic(AC, TOKEN)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        sids(&f, &format!("{BASE}/Transcriptions.json")).await,
        [TR3]
    );
    assert_eq!(
        get_json(&f, &format!("{BASE}/Transcriptions/{TR1}.json"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn recording_json_links_its_transcriptions() {
    let f = setup();
    let (_, v) = get_json(&f, &format!("{BASE}/Recordings/{RE1}.json")).await;
    let link = v["subresource_uris"]["transcriptions"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(link, format!("{BASE}/Recordings/{RE1}/Transcriptions.json"));
    assert_eq!(sids(&f, &link).await, [TR2, TR1]);
}
