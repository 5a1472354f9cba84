//! SPEC §2.2 failure handling, one test per kind of failure, against an application written
//! with the Twilio Python helper library (tests/twilio_app/app.py). Each test runs one daemon
//! with four applications chosen by the SIP user:
//! - `init`: `voice_url` fails, no fallback → 500 before answer, never answered;
//! - `fb`: `voice_url` fails, `fallback_url` set → the fallback gets `ErrorCode`/`ErrorUrl` (no
//!   fragment) and its `<Say>fallback</Say><Hangup/>` runs;
//! - `act`: `<Gather action=failing>` answered, no fallback → the error announcement, then BYE;
//! - `actfb`: the same with a fallback → the fallback's TwiML runs after answer.

mod common;
mod twilio_app;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use twilio_app::*;

/// Seconds after answer when the `act` callers press 1 (the prompt lasts about 1 s).
const KEY_AT: f64 = 2.0;
const CALL_LIMIT: Duration = Duration::from_secs(40);

/// How the application fails at `/fail`.
enum Failure {
    /// app.py answers `/fail` with this route.
    Route(Value),
    /// `/fail` with a connection-override fragment.
    RouteWithFragment(Value, &'static str),
    /// Nothing listens on the URL's port.
    Refused,
}

/// Speech runs (start, end) in seconds: speech frames joined across gaps < 300 ms.
fn speech_runs(s: &[i16]) -> Vec<(f64, f64)> {
    let mut runs: Vec<(f64, f64)> = Vec::new();
    for (i, f) in s.chunks(FRAME).enumerate() {
        if f.len() < FRAME || !is_speech_frame(f) {
            continue;
        }
        let (a, b) = (secs(i * FRAME), secs((i + 1) * FRAME));
        match runs.last_mut() {
            Some(last) if a - last.1 < 0.3 => last.1 = b,
            _ => runs.push((a, b)),
        }
    }
    runs
}

/// Seconds of speech in runs starting at or after `from`.
fn speech_after(runs: &[(f64, f64)], from: f64) -> f64 {
    runs.iter().filter(|r| r.0 >= from).map(|r| r.1 - r.0).sum()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("probe a free port")
}

fn route_toml(user: &str, keys: &[(&str, &str)]) -> String {
    let mut s = format!("\n[[route]]\nuser = {}\n", daemon_toml_string(user));
    for (k, v) in keys {
        s.push_str(&format!("{k} = {}\n", daemon_toml_string(v)));
    }
    s
}

fn daemon_toml_string(v: &str) -> String {
    common::daemon::toml_string(v)
}

fn gather_twiml(action: &str) -> String {
    format!(
        r#"<Response><Gather numDigits="1" timeout="5" action="{}"><Say>Press a key</Say></Gather><Say>no key</Say></Response>"#,
        action.replace('&', "&amp;")
    )
}

fn run(failure: Failure, code: u32, with_concurrent_call: bool) {
    let mut routes = json!({
        "/fallback": say_hangup("fallback"),
        "/okdone": {"hangup": {}},
    });
    let app = TwilioApp::start(json!({}));
    let failing = match &failure {
        Failure::Route(r) => {
            routes["/fail"] = r.clone();
            app.url("/fail")
        }
        Failure::RouteWithFragment(r, frag) => {
            routes["/fail"] = r.clone();
            format!("{}#{frag}", app.url("/fail"))
        }
        Failure::Refused => format!("http://127.0.0.1:{}/fail", free_port()),
    };
    let error_url = failing.split('#').next().unwrap_or_default().to_string();
    app.set_routes(routes);

    let mut d = Daemon::prepare(
        &[],
        App::VoiceUrl {
            url: failing.clone(),
            method: "POST",
        },
    );
    let fallback = app.url("/fallback");
    let mut extra = route_toml(
        "fb",
        &[("voice_url", &failing), ("fallback_url", &fallback)],
    );
    extra += &route_toml("act", &[("twiml", &gather_twiml(&failing))]);
    extra += &route_toml(
        "actfb",
        &[
            ("twiml", &gather_twiml(&failing)),
            ("fallback_url", &fallback),
        ],
    );
    extra += &route_toml(
        "ok",
        &[(
            "twiml",
            &format!(
                r##"<Response><Record action="{}" finishOnKey="#" maxLength="30"/></Response>"##,
                app.url("/okdone")
            ),
        )],
    );
    let mut cfg = std::fs::read_to_string(&d.config_path).expect("read config");
    cfg.push_str(&extra);
    std::fs::write(&d.config_path, cfg).expect("write config");
    d.launch();

    // A normal recording call on the same daemon, running through all the failures.
    let ok_audio = composite(1.0, 3.4, 1.6);
    let ok_call = with_concurrent_call.then(|| {
        let wav = d.tmp.join("ok.wav");
        write_ulaw_wav(&wav, &ok_audio.ulaw);
        HarkCall::new(&d.uri("ok"))
            .play(&wav)
            .dtmf("#", 5.0)
            .spawn(&d.tmp)
    });

    let silence = d.tmp.join("silence.wav");
    write_ulaw_wav(&silence, &vec![ULAW_SILENCE; 8 * RATE]);

    // init: refused before answer.
    let out = HarkCall::new(&d.uri("init"))
        .play(&silence)
        .run(&d.tmp, CALL_LIMIT);
    assert!(
        !out.success() && out.stderr.contains("call rejected: 500"),
        "init: the failing first document without a fallback is answered 500 before answer; \
         hark call: status {:?}, stdout {}, stderr {}",
        out.status,
        out.stdout,
        out.stderr
    );
    // The tt=1000 override (or a refused connection) fails fast, not after the 15 s default.
    assert!(
        out.elapsed < Duration::from_secs(4),
        "init: refused after {:.1} s",
        out.elapsed.as_secs_f64()
    );

    // fb: the fallback runs.
    let heard_fb = d.tmp.join("heard-fb.wav");
    let out = HarkCall::new(&d.uri("fb"))
        .play(&silence)
        .save_received(&heard_fb)
        .run(&d.tmp, CALL_LIMIT);
    out.assert_success();
    assert!(
        out.stdout.contains("ended by the server"),
        "fb: {}",
        out.stdout
    );
    let fb = app
        .wait_for("/fallback", 1, Duration::from_secs(5))
        .remove(0);
    assert_eq!(fb.param("ErrorCode"), code.to_string(), "fb: ErrorCode");
    assert_eq!(
        fb.param("ErrorUrl"),
        error_url,
        "fb: ErrorUrl, without fragment"
    );
    let runs = speech_runs(&read_wav_any(&heard_fb));
    let total = speech_after(&runs, 0.0);
    assert!(
        (0.3..2.0).contains(&total),
        "fb: the fallback's <Say>fallback</Say> is heard ({total:.2} s of speech in {runs:?})"
    );

    // act: error announcement after answer, then BYE.
    let heard_act = d.tmp.join("heard-act.wav");
    let out = HarkCall::new(&d.uri("act"))
        .play(&silence)
        .dtmf("1", KEY_AT)
        .save_received(&heard_act)
        .run(&d.tmp, CALL_LIMIT);
    out.assert_success();
    assert!(
        out.stdout.contains("ended by the server"),
        "act: {}",
        out.stdout
    );
    let act = read_wav_any(&heard_act);
    let runs = speech_runs(&act);
    assert!(
        speech_after(&runs, 0.0) - speech_after(&runs, 0.1) > 0.4,
        "act: the prompt is heard first: {runs:?}; profile {}",
        profile(&act)
    );
    let announced = speech_after(&runs, KEY_AT - 1.0);
    eprintln!("act: speech runs {runs:?}; profile {}", profile(&act));
    assert!(
        announced > 2.0,
        "act: after the key, the error announcement (≈3 s of speech): {announced:.2} s in \
         {runs:?}; profile {}",
        profile(&act)
    );
    assert_eq!(
        app.requests_to("/fallback").len(),
        1,
        "act has no fallback: {}",
        app.summary()
    );

    // actfb: the fallback after answer.
    let heard_actfb = d.tmp.join("heard-actfb.wav");
    let out = HarkCall::new(&d.uri("actfb"))
        .play(&silence)
        .dtmf("1", KEY_AT)
        .save_received(&heard_actfb)
        .run(&d.tmp, CALL_LIMIT);
    out.assert_success();
    assert!(
        out.stdout.contains("ended by the server"),
        "actfb: {}",
        out.stdout
    );
    let fb2 = app
        .wait_for("/fallback", 2, Duration::from_secs(5))
        .remove(1);
    assert_eq!(fb2.param("ErrorCode"), code.to_string(), "actfb: ErrorCode");
    assert_eq!(fb2.param("ErrorUrl"), error_url, "actfb: ErrorUrl");
    assert_eq!(
        fb2.param("CallStatus"),
        "in-progress",
        "actfb: after answer"
    );
    let actfb = read_wav_any(&heard_actfb);
    let runs = speech_runs(&actfb);
    let after = speech_after(&runs, KEY_AT - 1.0);
    eprintln!("actfb: speech runs {runs:?}; profile {}", profile(&actfb));
    assert!(
        (0.3..2.0).contains(&after),
        "actfb: after the key only the fallback's short <Say>: {after:.2} s in {runs:?}; \
         profile {}",
        profile(&actfb)
    );

    // Requests to /fail carried the gather's digits (when /fail is served at all).
    if !matches!(failure, Failure::Refused) {
        let fails = app.requests_to("/fail");
        let with_digits = fails
            .iter()
            .filter(|r| r.opt_param("Digits").as_deref() == Some("1"))
            .count();
        assert_eq!(
            with_digits,
            2,
            "act + actfb requested the action: {}",
            app.summary()
        );
    }

    if let Some(call) = ok_call {
        call.wait(CALL_LIMIT).assert_success();
        let done = app.wait_for("/okdone", 1, Duration::from_secs(5)).remove(0);
        check_recording(&d, &done.to_recorded(), &decode_all(&ok_audio.ulaw), false);
    }
    app.assert_all_valid(&[]);
    d.assert_alive();
}

fn xml(body: &str) -> Value {
    raw(200, "text/xml", body)
}

#[test]
fn retrieval_11200_http_500() {
    run(
        Failure::Route(raw(500, "text/xml", "<Response><Hangup/></Response>")),
        11200,
        true,
    );
}

#[test]
fn retrieval_11200_connection_refused() {
    run(Failure::Refused, 11200, false);
}

#[test]
fn retrieval_11200_answer_later_than_tt_override() {
    let slow = raw_delayed(200, "text/xml", "<Response><Hangup/></Response>", 3.0);
    run(Failure::RouteWithFragment(slow, "tt=1000"), 11200, false);
}

#[test]
fn parse_12100_unclosed_tag() {
    run(
        Failure::Route(xml("<Response><Say>hello</Response>")),
        12100,
        false,
    );
}

#[test]
fn parse_12100_lowercase_response_root() {
    run(
        Failure::Route(xml("<response><Say>hello</Say></response>")),
        12100,
        false,
    );
}

#[test]
fn parse_12100_entity_bomb_doctype() {
    let mut bomb =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        bomb.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">\n",
            format!("&{prev};").repeat(10)
        ));
    }
    bomb.push_str("]>\n<Response><Say>&lol9;</Say></Response>");
    run(Failure::Route(xml(&bomb)), 12100, false);
}

#[test]
fn parse_12100_document_of_100_kb() {
    let mut doc = String::from("<Response>");
    while doc.len() < 100 * 1024 {
        doc.push_str("<Pause length=\"1\"/>");
    }
    doc.push_str("<Hangup/></Response>");
    run(Failure::Route(xml(&doc)), 12100, false);
}

#[test]
fn schema_12200_unknown_verb() {
    run(
        Failure::Route(xml("<Response><Foo/></Response>")),
        12200,
        false,
    );
}

#[test]
fn schema_12200_lowercase_verb() {
    run(
        Failure::Route(xml("<Response><record/></Response>")),
        12200,
        false,
    );
}

#[test]
fn schema_12200_say_nested_in_record() {
    run(
        Failure::Route(xml("<Response><Record><Say>hi</Say></Record></Response>")),
        12200,
        false,
    );
}

#[test]
fn content_type_12300_application_json() {
    run(
        Failure::Route(raw(200, "application/json", "{\"say\": \"hello\"}")),
        12300,
        false,
    );
}
