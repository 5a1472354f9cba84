//! The live call-control API (SPEC §7) against a fake `CallControl` that records what it was
//! asked (`common::bot`).

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::response::Response;
use common::bot::*;
use common::*;
use http_api::control::{self, OperationRequest, RecordResponse};
use serde_json::{json, Value};
use tower::ServiceExt;

impl Bot {
    async fn post(&self, rest: &str, body: &str) -> Response {
        send(
            &self.fx.app,
            Method::POST,
            &calls(rest),
            Some(&bearer(API_TOKEN)),
            body,
        )
        .await
    }

    /// 400 with Graph's error shape; returns the message. The daemon was not asked anything.
    async fn rejected(&self, action: &str, body: &str) -> String {
        let before = self.fake.calls_made();
        let resp = self.post(&format!("{CA1}/{action}"), body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let v = json_of(resp).await;
        assert_eq!(v["error"]["code"], "invalidRequest");
        assert_eq!(self.fake.calls_made(), before, "{body}");
        v["error"]["message"].as_str().unwrap().to_string()
    }
}

fn assert_graph_error(v: &Value, code: &str) {
    let e = &v["error"];
    assert_eq!(e["code"], code, "{v}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(
        e["innerError"]["request-id"].as_str().map(str::len),
        Some(36)
    );
    // `YYYY-MM-DDTHH:MM:SS`
    assert_eq!(e["innerError"]["date"].as_str().map(str::len), Some(19));
}

/// Every route of the API with a body it would accept.
fn every_route() -> Vec<(Method, String, String)> {
    let rr = r##"{"stopTones":["#"]}"##.to_string();
    let pp = r#"{"prompts":[{"mediaInfo":{"uri":"https://a/b.wav"}}]}"#.to_string();
    vec![
        (Method::GET, calls(CA1), String::new()),
        (Method::DELETE, calls(CA1), String::new()),
        (Method::POST, calls(&format!("{CA1}/recordResponse")), rr),
        (Method::POST, calls(&format!("{CA1}/playPrompt")), pp),
        (
            Method::POST,
            calls(&format!("{CA1}/subscribeToTone")),
            "{}".into(),
        ),
        (
            Method::GET,
            calls(&format!("{CA1}/operations/op-done")),
            String::new(),
        ),
        (
            Method::GET,
            calls(&format!("{CA9}/operations/x")),
            String::new(),
        ),
        (
            Method::GET,
            "/v1.0/communications/other".into(),
            String::new(),
        ),
        (
            Method::GET,
            format!("/v1.0/communications/recordings/{RE1}"),
            String::new(),
        ),
    ]
}

#[tokio::test]
async fn missing_or_wrong_bearer_token_is_401_on_every_route() {
    let b = bot();
    let basic_auth = basic(AC, TOKEN);
    let recording_token = control::recording_access_token(SECRET, RE1, now() + 60);
    for (method, uri, body) in every_route() {
        let wrong = [
            None,
            Some(bearer("bot-token-12")),
            Some(bearer("bot-token-1234")),
            Some(basic_auth.clone()),
            Some(API_TOKEN.to_string()),
        ];
        for auth in wrong {
            let resp = send(&b.fx.app, method.clone(), &uri, auth.as_deref(), &body).await;
            assert_eq!(
                resp.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {uri} {auth:?}"
            );
            assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");
            assert_graph_error(&json_of(resp).await, "InvalidAuthenticationToken");
        }
        // A recording's access token opens that recording only.
        if !uri.contains("/recordings/") {
            let resp = send(
                &b.fx.app,
                method.clone(),
                &uri,
                Some(&bearer(&recording_token)),
                &body,
            )
            .await;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {uri}");
        }
    }
    assert_eq!(b.fake.calls_made(), 0);
}

#[tokio::test]
async fn empty_configured_token_admits_nobody() {
    let b = bot_with_token("");
    for auth in ["Bearer ", "Bearer", "Bearer \"\""] {
        let resp = send(&b.fx.app, Method::GET, &calls(CA1), Some(auth), "").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth}");
    }
    let resp = send(&b.fx.app, Method::DELETE, &calls(CA1), None, "").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(b.fake.calls_made(), 0);
}

#[tokio::test]
async fn without_bot_config_the_graph_routes_are_404() {
    let fx = fixture(Default::default(), |_| {});
    for (method, uri, body) in every_route() {
        let resp = send(
            &fx.app,
            method.clone(),
            &uri,
            Some(&bearer(API_TOKEN)),
            &body,
        )
        .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{method} {uri}");
        assert_graph_error(&json_of(resp).await, "itemNotFound");
    }
}

#[tokio::test]
async fn get_call_is_graph_shaped_with_plain_from_and_to() {
    let b = bot();
    let resp = send(
        &b.fx.app,
        Method::GET,
        &calls(CA1),
        Some(&bearer(API_TOKEN)),
        "",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    let v = json_of(resp).await;
    assert_eq!(v["@odata.type"], "#microsoft.graph.call");
    assert_eq!(v["id"], CA1);
    assert_eq!(v["state"], "established");
    assert_eq!(v["from"], "+15551230001");
    assert_eq!(v["to"], "sip:bot@hark.example");
    assert_eq!(v["source"]["identity"]["phone"]["id"], "+15551230001");
    assert_eq!(
        v["targets"][0]["identity"]["user"]["id"],
        "sip:bot@hark.example"
    );
}

#[tokio::test]
async fn unknown_calls_and_operations_are_404_item_not_found() {
    let b = bot();
    let t = bearer(API_TOKEN);
    let cases = [
        (Method::GET, calls(CA9), ""),
        (Method::GET, calls("not-a-call-sid"), ""),
        (Method::DELETE, calls(CA9), ""),
        (Method::POST, calls(&format!("{CA9}/recordResponse")), "{}"),
        (
            Method::POST,
            calls("x/playPrompt"),
            r#"{"prompts":[{"mediaInfo":{"uri":"http://a/b"}}]}"#,
        ),
        (
            Method::GET,
            calls(&format!("{CA1}/operations/op-unknown")),
            "",
        ),
        (Method::GET, calls(&format!("{CA9}/operations/op-done")), ""),
        (Method::GET, calls(&format!("{CA1}/hold")), ""),
    ];
    for (method, uri, body) in cases {
        let resp = send(&b.fx.app, method.clone(), &uri, Some(&t), body).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{method} {uri}");
        assert_graph_error(&json_of(resp).await, "itemNotFound");
    }
    assert!(b.fake.hang_ups.lock().unwrap().is_empty());
}

#[tokio::test]
async fn delete_hangs_up_with_204() {
    let b = bot();
    let resp = send(
        &b.fx.app,
        Method::DELETE,
        &calls(CA1),
        Some(&bearer(API_TOKEN)),
        "",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(body(resp).await.is_empty());
    assert_eq!(*b.fake.hang_ups.lock().unwrap(), vec![CA1.to_string()]);
}

#[tokio::test]
async fn record_response_answers_200_with_location_and_record_operation() {
    let b = bot();
    let body = r##"{"prompts":[{"@odata.type":"#microsoft.graph.mediaPrompt",
        "mediaInfo":{"uri":"https://bot.example/q.wav","resourceId":"q1"}}],
        "bargeInAllowed":true,"initialSilenceTimeoutInSeconds":10,"maxSilenceTimeoutInSeconds":2,
        "maxRecordDurationInSeconds":120,"playBeep":false,"stopTones":["#","1"],
        "clientContext":"c-1","somethingNew":true}"##;
    let resp = b.post(&format!("{CA1}/recordResponse"), body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::LOCATION],
        format!("https://hark.example/v1.0/communications/calls/{CA1}/operations/op-1").as_str()
    );
    let v = json_of(resp).await;
    assert_eq!(
        v,
        json!({
            "@odata.type": "#microsoft.graph.recordOperation",
            "@odata.id": format!("/communications/calls/{CA1}/operations/op-1"),
            "id": "op-1",
            "status": "running",
            "resultInfo": null,
            "recordingLocation": null,
            "recordingAccessToken": null,
            "clientContext": "c-1",
        })
    );
    let ops = b.fake.ops.lock().unwrap();
    assert_eq!(
        *ops,
        vec![(
            CA1.to_string(),
            OperationRequest::RecordResponse(RecordResponse {
                prompt_uri: Some("https://bot.example/q.wav".into()),
                barge_in_allowed: true,
                initial_silence_timeout_secs: 10,
                max_silence_timeout_secs: 2,
                max_record_duration_secs: 120,
                play_beep: false,
                stop_tones: vec!['#', '1'],
                client_context: Some("c-1".into()),
            })
        )]
    );
}

#[tokio::test]
async fn play_prompt_and_subscribe_to_tone_start_operations() {
    let b = bot();
    let resp = b
        .post(
            &format!("{CA1}/playPrompt"),
            r#"{"prompts":[{"mediaInfo":{"uri":"https://a/1.wav"}},{"mediaInfo":{"uri":"https://a/2.wav"}}]}"#,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .ends_with("/operations/op-1"));
    let v = json_of(resp).await;
    assert_eq!(v["@odata.type"], "#microsoft.graph.playPromptOperation");
    assert_eq!(v["status"], "running");
    assert!(v.get("recordingLocation").is_none());

    let resp = b
        .post(
            &format!("{CA1}/subscribeToTone"),
            r#"{"clientContext":"t"}"#,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v = json_of(resp).await;
    assert_eq!(
        v["@odata.type"],
        "#microsoft.graph.subscribeToToneOperation"
    );
    assert_eq!(v["clientContext"], "t");

    let ops = b.fake.ops.lock().unwrap();
    assert_eq!(ops.len(), 2);
    match &ops[0].1 {
        OperationRequest::PlayPrompt(p) => {
            assert_eq!(p.prompt_uris, vec!["https://a/1.wav", "https://a/2.wav"])
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ops[1].1,
        OperationRequest::SubscribeToTone {
            client_context: Some("t".into())
        }
    );
}

#[tokio::test]
async fn every_validation_row_is_400_naming_the_field() {
    let b = bot();
    let prompt = r#"{"mediaInfo":{"uri":"https://a/b.wav"}}"#;
    let m = b
        .rejected(
            "recordResponse",
            &format!(r#"{{"prompts":[{prompt},{prompt}]}}"#),
        )
        .await;
    assert!(m.contains("prompts") && m.contains("at most one"), "{m}");
    for name in [
        "initialSilenceTimeoutInSeconds",
        "maxSilenceTimeoutInSeconds",
        "maxRecordDurationInSeconds",
    ] {
        for bad in ["0", "121"] {
            let m = b
                .rejected("recordResponse", &format!(r#"{{"{name}":{bad}}}"#))
                .await;
            assert_eq!(m, format!("{name} must be between 1 and 120, got {bad}"));
        }
        let m = b
            .rejected("recordResponse", &format!(r#"{{"{name}":"5"}}"#))
            .await;
        assert_eq!(m, format!("{name} must be an integer"));
    }
    let long = "x".repeat(257);
    for action in ["recordResponse", "subscribeToTone"] {
        let m = b
            .rejected(action, &format!(r#"{{"clientContext":"{long}"}}"#))
            .await;
        assert_eq!(
            m,
            "clientContext is 257 characters long; at most 256 are allowed"
        );
    }
    for bad in ["12", "x"] {
        let m = b
            .rejected("recordResponse", &format!(r#"{{"stopTones":["{bad}"]}}"#))
            .await;
        assert_eq!(
            m,
            format!("stopTones[0] must be one character of 0-9, * or #, got \"{bad}\"")
        );
    }
    for (body, msg) in [
        (
            r#"{"bargeInAllowed":"yes"}"#,
            "bargeInAllowed must be a boolean",
        ),
        (r#"{"playBeep":0}"#, "playBeep must be a boolean"),
        (
            r#"{"stopTones":"1"}"#,
            "stopTones must be an array of strings",
        ),
        (
            r#"{"prompts":"https://a"}"#,
            "prompts must be an array of mediaPrompt objects",
        ),
        (
            r#"{"prompts":[{"mediaInfo":{}}]}"#,
            "prompts[0].mediaInfo.uri is required",
        ),
        (r#"{"clientContext":1}"#, "clientContext must be a string"),
    ] {
        assert_eq!(b.rejected("recordResponse", body).await, msg);
    }
    for action in ["recordResponse", "playPrompt", "subscribeToTone"] {
        let m = b.rejected(action, "this is not json").await;
        assert!(
            m.starts_with("the request body is not a JSON object"),
            "{m}"
        );
    }
    assert_eq!(
        b.rejected("playPrompt", "{}").await,
        "prompts must hold at least one prompt"
    );
    assert_eq!(
        b.rejected(
            "playPrompt",
            r#"{"prompts":[{"mediaInfo":{"uri":"file:///x"}}]}"#
        )
        .await,
        "prompts[0].mediaInfo.uri must be an http or https URL"
    );
}

#[tokio::test]
async fn operation_on_a_twiml_call_is_400_with_the_daemons_message() {
    let b = bot();
    let resp = b.post(&format!("{CA2}/recordResponse"), "{}").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v = json_of(resp).await;
    assert_graph_error(&v, "invalidRequest");
    assert_eq!(v["error"]["message"], "call CA2 is driven by TwiML");
}

#[tokio::test]
async fn get_operation_shows_its_current_state() {
    let b = bot();
    let uri = calls(&format!("{CA1}/operations/op-done"));
    let resp = send(&b.fx.app, Method::GET, &uri, Some(&bearer(API_TOKEN)), "").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v = json_of(resp).await;
    assert_eq!(v, control::operation_json(&finished_record_op()));
    assert_eq!(v["status"], "completed");
    assert_eq!(v["resultInfo"]["subcode"], 8514);
    assert_eq!(v["completionReason"], "stopToneDetected");
    assert_eq!(
        v["recordingLocation"],
        format!("https://hark.example/v1.0/communications/recordings/{RE1}")
    );
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let b = bot();
    let t = bearer(API_TOKEN);
    for (method, uri, allow) in [
        (Method::POST, calls(CA1), "GET, HEAD, DELETE"),
        (Method::GET, calls(&format!("{CA1}/recordResponse")), "POST"),
        (
            Method::DELETE,
            calls(&format!("{CA1}/operations/op-done")),
            "GET, HEAD",
        ),
    ] {
        let resp = send(&b.fx.app, method.clone(), &uri, Some(&t), "").await;
        assert_eq!(
            resp.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}"
        );
        assert_eq!(resp.headers()[header::ALLOW], allow);
    }
    assert_eq!(b.fake.calls_made(), 0);
}

#[tokio::test]
async fn recording_access_token_opens_exactly_its_recording_until_it_expires() {
    let b = bot();
    let uri = |sid: &str| format!("/v1.0/communications/recordings/{sid}");
    let good = control::recording_access_token(SECRET, RE1, now() + 60);
    let resp = send(&b.fx.app, Method::GET, &uri(RE1), Some(&bearer(&good)), "").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/octet-stream"
    );
    assert_eq!(body(resp).await, WAV);

    let req = Request::get(uri(RE1))
        .header(header::AUTHORIZATION, bearer(&good))
        .header(header::RANGE, "bytes=0-3")
        .body(Body::empty())
        .unwrap();
    let resp = b.fx.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(body(resp).await, b"RIFF");

    let rejected = [
        control::recording_access_token(SECRET, RE2, now() + 60),
        control::recording_access_token(SECRET, RE1, now() - 1),
        control::recording_access_token(b"another secret", RE1, now() + 60),
        "garbage".to_string(),
        format!("{good}x"),
        API_TOKEN.to_string(),
    ];
    for token in rejected {
        let resp = send(&b.fx.app, Method::GET, &uri(RE1), Some(&bearer(&token)), "").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{token}");
        assert_graph_error(&json_of(resp).await, "InvalidAuthenticationToken");
    }
    let resp = send(&b.fx.app, Method::GET, &uri(RE1), None, "").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // A valid token for a recording that does not exist.
    let t9 = control::recording_access_token(SECRET, RE9, now() + 60);
    let resp = send(&b.fx.app, Method::GET, &uri(RE9), Some(&bearer(&t9)), "").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
