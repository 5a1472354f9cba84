//! Twilio's live call update (`POST …/Calls/{CallSid}.json`) against a fake `CallControl`.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::response::Response;
use common::bot::*;
use common::*;
use http_api::control::CallUpdate;
use serde_json::Value;
use tower::ServiceExt;

fn form_post(uri: &str, auth: Option<&str>, form: &str) -> Request<Body> {
    let mut req =
        Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    req.body(Body::from(form.to_string())).unwrap()
}

impl Bot {
    async fn update(&self, sid: &str, auth: Option<&str>, form: &str) -> Response {
        self.fx
            .app
            .clone()
            .oneshot(form_post(&twilio_call(sid), auth, form))
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn twilio_call_update_with_twiml_redirects_and_returns_the_call() {
    let b = bot();
    let auth = basic(AC, TOKEN);
    let resp = b
        .update(
            CA1,
            Some(&auth),
            "Twiml=%3CResponse%3E%3CHangup%2F%3E%3C%2FResponse%3E",
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v = json_of(resp).await;
    assert_eq!(v["sid"], CA1);
    assert_eq!(v["status"], "in-progress");
    assert_eq!(
        v["uri"],
        format!("/2010-04-01/Accounts/{AC}/Calls/{CA1}.json")
    );

    let resp = b.update(CA1, Some(&auth), "Status=completed").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = b
        .update(
            CA1,
            Some(&auth),
            "Url=https%3A%2F%2Fapp.example%2Fnext&Method=GET",
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);

    let updates = b.fake.updates.lock().unwrap();
    let want = [
        CallUpdate {
            twiml: Some("<Response><Hangup/></Response>".into()),
            url: None,
            method: None,
            status: None,
        },
        CallUpdate {
            twiml: None,
            url: None,
            method: None,
            status: Some(store::CallStatus::Completed),
        },
        CallUpdate {
            twiml: None,
            url: Some("https://app.example/next".into()),
            method: Some(store::HttpMethod::Get),
            status: None,
        },
    ];
    assert_eq!(updates.len(), 3);
    for (got, want) in updates.iter().zip(want) {
        assert_eq!(got, &(CA1.to_string(), want));
    }
}

#[tokio::test]
async fn twilio_call_update_errors() {
    let b = bot();
    let auth = basic(AC, TOKEN);
    let twilio_error = |v: &Value, status: u16, code: u64| {
        assert_eq!(v["status"], status, "{v}");
        assert_eq!(v["code"], code, "{v}");
    };
    let resp = b.update(CA1, Some(&auth), "Status=busy").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    twilio_error(&json_of(resp).await, 400, 21400);
    let resp = b.update(CA1, Some(&auth), "Method=POST").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    twilio_error(&json_of(resp).await, 400, 21400);
    assert!(b.fake.updates.lock().unwrap().is_empty());

    let resp = b.update(CA9, Some(&auth), "Status=completed").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    twilio_error(&json_of(resp).await, 404, 20404);
    let resp = b.update(CA2, Some(&auth), "Twiml=%3CResponse%2F%3E").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v = json_of(resp).await;
    twilio_error(&v, 400, 21220);
    assert_eq!(v["message"], "Call is not in-progress. Cannot redirect.");

    for bad in [None, Some(basic(AC, "wrong")), Some(bearer(API_TOKEN))] {
        let resp = b.update(CA1, bad.as_deref(), "Status=completed").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        twilio_error(&json_of(resp).await, 401, 20003);
    }
    assert!(b.fake.updates.lock().unwrap().is_empty());

    // The GET of the same resource is unchanged and lists POST among its methods.
    let resp = send(&b.fx.app, Method::GET, &twilio_call(CA1), Some(&auth), "").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = send(&b.fx.app, Method::PUT, &twilio_call(CA1), Some(&auth), "").await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()[header::ALLOW], "GET, HEAD, POST");
}

#[tokio::test]
async fn twilio_call_update_without_bot_config_is_404() {
    let fx = fixture(Default::default(), |s| {
        s.insert_call(&call(CA1, AC, T0)).unwrap()
    });
    let resp = fx
        .app
        .clone()
        .oneshot(form_post(
            &twilio_call(CA1),
            Some(&basic(AC, TOKEN)),
            "Status=completed",
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
