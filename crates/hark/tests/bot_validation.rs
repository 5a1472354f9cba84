//! Bad requests to the live call-control API (SPEC §7) on a live bot call: each a clear 4xx in
//! Graph's error shape naming what is wrong, none of them starts an operation, and afterwards the
//! call is still up and a valid operation still works.

mod bot_support;
mod common;

use bot_support::*;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Asserts a Graph error: status, `error.code`, and a message naming `needle`.
fn graph_error(r: &Resp, status: u16, code: &str, needle: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["code"], code, "{what}: {v}");
    let msg = v["error"]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains(needle),
        "{what}: message {msg:?} lacks {needle:?}"
    );
    assert!(
        v["error"]["innerError"]["request-id"].is_string(),
        "{what}: {v}"
    );
}

#[test]
fn bad_requests_are_4xx_and_leave_the_call_working() {
    let bot = Bot::start();
    let mut d = bot_daemon(&bot);
    let speech = speech_ulaw();
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &speech);
    let caller = HarkCall::new(&d.uri("bot")).play(&wav).spawn(&d.tmp);
    let id = bot.wait_established(Duration::from_secs(10));
    let p = prompt("http://127.0.0.1:9/x.wav");

    // Bodies: 400 naming the field.
    let mut bad: Vec<(&str, Value, &str)> = vec![
        (
            "recordResponse",
            json!({"prompts": [p.clone(), p.clone()]}),
            "prompts",
        ),
        (
            "recordResponse",
            json!({"clientContext": "c".repeat(257)}),
            "clientContext",
        ),
        (
            "playPrompt",
            json!({"prompts": [p.clone()], "clientContext": "é".repeat(257)}),
            "clientContext",
        ),
        (
            "subscribeToTone",
            json!({"clientContext": "c".repeat(257)}),
            "clientContext",
        ),
        (
            "recordResponse",
            json!({"stopTones": ["#", "x"]}),
            "stopTones[1]",
        ),
        ("recordResponse", json!({"playBeep": "yes"}), "playBeep"),
        (
            "recordResponse",
            json!({"maxRecordDurationInSeconds": 2.5}),
            "maxRecordDurationInSeconds",
        ),
        (
            "recordResponse",
            json!({"prompts": [prompt("file:///etc/passwd")]}),
            "prompts[0].mediaInfo.uri",
        ),
        ("playPrompt", json!({"prompts": []}), "prompts"),
        ("playPrompt", json!({}), "prompts"),
    ];
    for field in [
        "initialSilenceTimeoutInSeconds",
        "maxSilenceTimeoutInSeconds",
        "maxRecordDurationInSeconds",
    ] {
        for v in [0, 121, -1] {
            bad.push(("recordResponse", json!({ field: v }), field));
        }
    }
    for (action, body, field) in &bad {
        let r = post_action(&bot, &d, &id, action, body);
        graph_error(
            &r,
            400,
            "invalidRequest",
            field,
            &format!("{action} {body}"),
        );
    }
    let r = bot.request(
        "POST",
        &call_url(&d, &id, "/recordResponse"),
        Auth::Bearer(API_TOKEN),
        Some("application/json"),
        b"{not json".to_vec(),
    );
    graph_error(&r, 400, "invalidRequest", "JSON", "malformed JSON");

    // Unknown things: 404.
    let r = get_bearer(
        &bot,
        &call_url(&d, &id, "/operations/00000000-0000-0000-0000-000000000000"),
        API_TOKEN,
    );
    graph_error(&r, 404, "itemNotFound", "Operation", "unknown operation");
    let ghost = "CA0123456789abcdef0123456789abcdef";
    for (method, tail) in [("GET", ""), ("DELETE", ""), ("POST", "/recordResponse")] {
        let r = bot.request(
            method,
            &call_url(&d, ghost, tail),
            Auth::Bearer(API_TOKEN),
            Some("application/json"),
            b"{}".to_vec(),
        );
        graph_error(
            &r,
            404,
            "itemNotFound",
            ghost,
            &format!("{method} unknown call"),
        );
    }
    let r = get_bearer(&bot, &call_url(&d, "not-a-call", ""), API_TOKEN);
    assert_eq!(r.status, 404);

    // Credentials: 401 before anything else (a valid body on the live call does nothing).
    let valid = serde_json::to_vec(&json!({"maxRecordDurationInSeconds": 1})).expect("json");
    for (auth, what) in [
        (Auth::Bearer("wrong"), "wrong token"),
        (Auth::Bearer(""), "empty token"),
        (Auth::None, "no Authorization"),
        (
            Auth::Basic(ACCOUNT_SID, AUTH_TOKEN),
            "Basic with the account",
        ),
    ] {
        for (method, tail) in [
            ("POST", "/recordResponse"),
            ("GET", ""),
            ("DELETE", ""),
            ("GET", "/operations/x"),
        ] {
            let r = bot.request(
                method,
                &call_url(&d, &id, tail),
                auth,
                Some("application/json"),
                valid.clone(),
            );
            graph_error(&r, 401, "InvalidAuthenticationToken", "token", what);
            assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{what}");
        }
    }

    // None of that touched the call: still up, no operation notified, nothing sent to the bot
    // beyond the call's two state changes.
    std::thread::sleep(Duration::from_millis(300));
    let states: Vec<Option<String>> = bot
        .notes()
        .iter()
        .map(|n| n.state().map(str::to_string))
        .collect();
    assert_eq!(
        states,
        vec![Some("establishing".into()), Some("established".into())]
    );
    let g = get_bearer(&bot, &call_url(&d, &id, ""), API_TOKEN);
    assert_eq!(g.status, 200);
    assert_eq!(g.json()["state"], "established");

    // A valid operation still works; 256 characters of clientContext are allowed.
    let ctx = "c".repeat(256);
    let op = start_op(
        &bot,
        &d,
        &id,
        "recordResponse",
        &json!({"maxRecordDurationInSeconds": 1, "playBeep": false, "clientContext": ctx}),
    );
    let n = bot.wait_op(&id, &op, Duration::from_secs(10));
    assert_eq!(n.status(), Some("completed"), "{}", n.data);
    assert_eq!(n.result(), (200, 8515), "{}", n.data);
    assert_eq!(n.data["clientContext"], ctx.as_str());

    let del = bot.request(
        "DELETE",
        &call_url(&d, &id, ""),
        Auth::Bearer(API_TOKEN),
        None,
        Vec::new(),
    );
    assert_eq!(del.status, 204);
    caller.wait(Duration::from_secs(10)).assert_success();
    bot.wait_terminated(&id, Duration::from_secs(10));
    // After the call: operations on it are 404 (it is over), GET says terminated.
    let r = post_action(&bot, &d, &id, "recordResponse", &json!({}));
    assert_eq!(r.status, 404, "{}", r.text());
    bot.assert_no_bad_bodies();
    d.assert_alive();
}

#[test]
fn empty_api_token_admits_nobody() {
    let bot = Bot::start();
    let cb = bot.callback_url();
    let mut d = Daemon::start(
        &[("app.bot_callback_uri", cb.as_str())],
        App::Twiml("<Response><Hangup/></Response>".into()),
    );
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &speech_ulaw());
    let caller = HarkCall::new(&d.uri("bot")).play(&wav).spawn(&d.tmp);
    let id = bot.wait_established(Duration::from_secs(10));
    for token in ["", "x"] {
        let r = get_bearer(&bot, &call_url(&d, &id, ""), token);
        assert_eq!(r.status, 401, "token {token:?}");
    }
    // The call is not stranded: Twilio's update still hangs it up.
    let r = twilio_update(&bot, &d, &id, &[("Status", "completed")]);
    assert_eq!(r.status, 200, "{}", r.text());
    caller.wait(Duration::from_secs(10)).assert_success();
    d.assert_alive();
}

#[test]
fn recording_access_token_expires() {
    let bot = Bot::start();
    let cb = bot.callback_url();
    let mut d = Daemon::start(
        &[
            ("app.bot_callback_uri", cb.as_str()),
            ("bot.api_token", API_TOKEN),
            ("bot.recording_token_ttl_secs", "2"),
        ],
        App::Twiml("<Response><Hangup/></Response>".into()),
    );
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &speech_ulaw());
    let caller = HarkCall::new(&d.uri("bot")).play(&wav).spawn(&d.tmp);
    let id = bot.wait_established(Duration::from_secs(10));
    let op = start_op(
        &bot,
        &d,
        &id,
        "recordResponse",
        &json!({"maxRecordDurationInSeconds": 1, "playBeep": false}),
    );
    let n = bot.wait_op(&id, &op, Duration::from_secs(10));
    let location = n.data["recordingLocation"].as_str().expect("location");
    let token = n.data["recordingAccessToken"].as_str().expect("token");
    assert_eq!(get_bearer(&bot, location, token).status, 200);
    // v1.<expiry unix seconds>.<mac>: wait until it has passed.
    let expires: u64 = token
        .split('.')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("expiry in the token");
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    assert!(expires <= now() + 3, "token lives past the configured 2 s");
    while now() <= expires {
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = get_bearer(&bot, location, token);
    assert_eq!(r.status, 401, "expired token: {}", r.text());
    let r = twilio_update(&bot, &d, &id, &[("Status", "completed")]);
    assert_eq!(r.status, 200);
    caller.wait(Duration::from_secs(10)).assert_success();
    d.assert_alive();
}
