//! Issue 12 item 2: the unchanged Voice SDK (vendored 2.18.5) in headless Chromium opens Hark's
//! `/signal` over WSS (`http.tls_cert`/`http.tls_key`, a throw-away certificate) with an
//! AccessToken minted by twilio-python: a valid token registers the identity; a forged token
//! (wrong secret) and an expired one are refused with the SDK's error codes (20101 for 31204,
//! 20104 for 31205), and nothing registers.

mod common;
mod twilio_app;

use common::browser::{client_daemon, PageRun, StaticServer};
use common::*;
use std::time::Duration;

const KEY_SID: &str = "SKabcdef0123456789abcdef0123456789";
const KEY_SECRET: &str = "browser-signal-secret-41b7";
const APP_SID: &str = "AP0123456789abcdef0123456789abcdef";

fn register(server: &StaticServer, d: &Daemon, token: &str) -> serde_json::Value {
    let url = format!(
        "{}?token={token}&chunderw=127.0.0.1:{}",
        server.url("/device.html"),
        d.http_port
    );
    PageRun::new(&url)
        .timeout(Duration::from_secs(20))
        .run()
        .expect_result()
        .clone()
}

#[test]
fn sdk_registers_with_a_valid_token_and_is_refused_forged_and_expired_ones() {
    common::browser::require_browser();
    let certs = TempDir::new("signal-cert");
    let hangup = r#"twiml = "<Response><Hangup/></Response>""#;
    let d = client_daemon(&certs, (KEY_SID, KEY_SECRET), APP_SID, hangup);
    let server = StaticServer::page_with_sdk("device.html");

    let ok = register(
        &server,
        &d,
        &twilio_app::access_token(KEY_SID, KEY_SECRET, APP_SID, "alice", 600),
    );
    assert_eq!(ok["registered"], true, "{ok}");
    assert_eq!(ok["identity"], "alice", "{ok}");
    assert_eq!(ok["state"], "registered", "{ok}");
    assert_eq!(ok["errors"], serde_json::json!([]), "{ok}");

    let forged = register(
        &server,
        &d,
        &twilio_app::access_token(KEY_SID, "not-the-secret", APP_SID, "mallory", 600),
    );
    assert_eq!(forged["registered"], false, "{forged}");
    assert_eq!(
        forged["errors"][0]["code"], 20101,
        "AccessTokenInvalid: {forged}"
    );
    assert_eq!(forged["errors"][0]["original"], 31204, "{forged}");

    let expired = register(
        &server,
        &d,
        &twilio_app::access_token(KEY_SID, KEY_SECRET, APP_SID, "alice", -300),
    );
    assert_eq!(expired["registered"], false, "{expired}");
    assert_eq!(
        expired["errors"][0]["code"], 20104,
        "AccessTokenExpired: {expired}"
    );
    assert_eq!(expired["errors"][0]["original"], 31205, "{expired}");

    let log = d.log();
    assert!(log.contains("client registered"), "{log}");
}
