//! Every error row of the per-call transcript API (SPEC §8,
//! `GET /public/api/v1/monitor/voice_log/{request_id}`): 401 (no header, another scheme, an
//! unknown token), 403 (a token of another account), 404 (an id of 256 characters, an unknown
//! id, a transcription still running), 429 with `Retry-After` (rate per minute; monthly quota,
//! which survives a restart), 405, and 500 when the database is unreadable. Tokens come from
//! `transcripts.api_token` and `[[transcripts.tokens]]` in the config file.

mod common;
mod twilio_app;
mod twilio_client;

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::response::IntoResponse;
use axum::Router;
use base64::Engine;
use common::*;
use twilio_client::{Auth, Http, Resp};

const MAIN: &str = "vl-main-4c2d";
const OTHER_ACCOUNT: &str = "ACffffffffffffffffffffffffffffffff";

/// A transcription server that answers after `delay`: keeps a job in progress that long.
struct SlowEngine {
    server: LocalServer,
}

impl SlowEngine {
    fn start(delay: Duration) -> SlowEngine {
        let app = Router::new().fallback(move || async move {
            tokio::time::sleep(delay).await;
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                r#"{"text":"call me back","segments":[{"start":0.2,"end":1.0,"text":"call me back"}]}"#,
            )
                .into_response()
        });
        let server = LocalServer::start(1, app);
        SlowEngine { server }
    }
}

fn get(http: &Http, d: &Daemon, id: &str, authorization: Option<&str>) -> Resp {
    let url = format!("{}/public/api/v1/monitor/voice_log/{id}", d.public_url());
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    http.request("GET", &url, Auth::None, &headers)
}

fn token(t: &str) -> String {
    format!("Token {t}")
}

/// The error shape: JSON `{"error": "...", "status": code}`.
fn assert_error(r: &Resp, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{what}: content type"
    );
    let v = r.json();
    assert_eq!(v["status"], status, "{what}: {v}");
    assert!(
        v["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: {v}"
    );
}

/// (year, month) of a Unix day number (proleptic Gregorian, UTC).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[test]
fn every_voice_log_error_row() {
    let engine = SlowEngine::start(Duration::from_secs(6));
    let wh = WebhookServer::start();
    wh.route("/done", Reply::twiml("<Response><Hangup/></Response>"));
    let twiml = format!(
        r##"<Response><Record transcribe="true" finishOnKey="#" timeout="10" maxLength="30" action="{}"/></Response>"##,
        wh.url("/done")
    );
    let mut d = Daemon::prepare(
        &[
            ("transcription.engine", "openai"),
            ("transcription.openai_url", &engine.server.base),
            ("transcription.timeout_secs", "30"),
            ("transcripts.api_token", MAIN),
        ],
        App::Twiml(twiml),
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&d.config_path)
        .expect("config");
    write!(
        f,
        r#"
[[transcripts.tokens]]
id = "partner"
token = "vl-partner-01"
account_sid = "{OTHER_ACCOUNT}"

[[transcripts.tokens]]
id = "same"
token = "vl-same-02"
account_sid = "{ACCOUNT_SID}"

[[transcripts.tokens]]
id = "rated"
token = "vl-rated-03"
rate_per_minute = 2

[[transcripts.tokens]]
id = "quota"
token = "vl-quota-04"
monthly_quota = 3
"#
    )
    .expect("append tokens");
    drop(f);
    d.launch();
    let http = Http::new();

    // A call whose transcription stays in progress for 6 s.
    let done = call_then_pound(&d, &wh, &data_dir().join("speech_8k_ulaw.wav"));
    let call_sid = done.param("CallSid").to_string();
    let re = done.param("RecordingSid").to_string();

    // 404: queued or running is "no transcript yet", by CallSid and by RecordingSid.
    let main = token(MAIN);
    assert_error(
        &get(&http, &d, &call_sid, Some(&main)),
        404,
        "in progress (CallSid)",
    );
    assert_error(
        &get(&http, &d, &re, Some(&main)),
        404,
        "in progress (RecordingSid)",
    );

    // 401.
    for (auth, what) in [
        (None, "no Authorization"),
        (Some(format!("Bearer {MAIN}")), "Bearer scheme"),
        (
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{MAIN}"))
            )),
            "Basic scheme",
        ),
        (
            Some("Token vl-main-4c2".to_string()),
            "a prefix of the token",
        ),
        (Some("Token nope".to_string()), "unknown token"),
        (Some("Token ".to_string()), "empty token"),
        (Some(MAIN.to_string()), "no scheme"),
    ] {
        let r = get(&http, &d, &call_sid, auth.as_deref());
        assert_error(&r, 401, what);
        assert_eq!(r.header("www-authenticate"), Some("Token"), "{what}");
    }

    // 403: a token of another account, for a real call and for an unknown id.
    let partner = token("vl-partner-01");
    assert_error(
        &get(&http, &d, &call_sid, Some(&partner)),
        403,
        "other account",
    );
    assert_error(
        &get(&http, &d, "whatever", Some(&partner)),
        403,
        "other account, unknown id",
    );

    // 404: ids outside 1..=255 characters, unknown ids.
    let long = "a".repeat(256);
    assert_error(&get(&http, &d, &long, Some(&main)), 404, "256 characters");
    let long_multibyte = "é".repeat(256);
    assert_error(
        &get(&http, &d, &long_multibyte, Some(&main)),
        404,
        "256 two-byte characters",
    );
    assert_error(
        &get(&http, &d, &"a".repeat(255), Some(&main)),
        404,
        "255, unknown",
    );
    assert_error(
        &get(&http, &d, "CA00000000000000000000000000000000", Some(&main)),
        404,
        "unknown CallSid",
    );
    assert_error(&get(&http, &d, "", Some(&main)), 404, "empty id");

    // 405 for anything but GET/HEAD.
    let url = format!(
        "{}/public/api/v1/monitor/voice_log/{call_sid}",
        d.public_url()
    );
    let post = http.request("POST", &url, Auth::None, &[("Authorization", &main)]);
    assert_error(&post, 405, "POST");
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    // Then the transcript: 200 for the main token and for a token pinned to this account.
    let ok = wait_until(Duration::from_secs(20), || {
        let r = get(&http, &d, &call_sid, Some(&main));
        (r.status == 200).then_some(r)
    })
    .expect("voice_log 200 once the engine answered");
    assert_eq!(ok.text(), "caller : call me back\n");
    let same = get(&http, &d, &re, Some(&token("vl-same-02")));
    assert_eq!(same.status, 200, "a token pinned to this account");
    assert_eq!(same.text(), ok.text());

    // 429 on rate_per_minute = 2: every authenticated request counts, whatever its outcome.
    let rated = token("vl-rated-03");
    assert_eq!(get(&http, &d, &call_sid, Some(&rated)).status, 200);
    assert_eq!(get(&http, &d, "unknown-id", Some(&rated)).status, 404);
    let r = get(&http, &d, &call_sid, Some(&rated));
    assert_error(&r, 429, "third request in a minute");
    let wait: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!((55..=60).contains(&wait), "Retry-After {wait}");
    assert_eq!(
        get(&http, &d, &call_sid, Some(&main)).status,
        200,
        "other tokens are not limited"
    );

    // 429 on monthly_quota = 3, with Retry-After up to the next month (UTC); persisted.
    let quota = token("vl-quota-04");
    for i in 0..3 {
        let s = get(
            &http,
            &d,
            if i == 1 { "x" } else { &call_sid },
            Some(&quota),
        )
        .status;
        assert!(s == 200 || s == 404, "request {i}: {s}");
    }
    let check_quota = |d: &Daemon, what: &str| {
        let r = get(&http, d, &call_sid, Some(&quota));
        assert_error(&r, 429, what);
        let wait: i64 = r
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .expect("Retry-After seconds");
        let at = now_unix() + wait;
        let (y, m, day) = civil(at.div_euclid(86_400));
        let (ny, nm, _) = civil(now_unix().div_euclid(86_400));
        let next = if nm == 12 { (ny + 1, 1) } else { (ny, nm + 1) };
        let secs_of_day = at.rem_euclid(86_400);
        assert!(
            (y, m) == next && day == 1 && secs_of_day <= 2,
            "{what}: Retry-After {wait} s points to {y}-{m}-{day} +{secs_of_day} s, not the start of {next:?}"
        );
    };
    check_quota(&d, "fourth request this month");
    d.restart();
    check_quota(&d, "after a restart");
    assert_eq!(get(&http, &d, &call_sid, Some(&main)).status, 200);

    // 500: a table the transcript is read from is renamed away under the running daemon (with
    // SQLite's own client, the way an operator's mistake or a bad migration would).
    let db = d.storage.join("hark.db");
    let st = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('ALTER TABLE call_events RENAME TO call_events_gone'); c.commit()")
        .arg(&db)
        .status()
        .expect("python3");
    assert!(st.success(), "rename call_events");
    let r = get(&http, &d, &call_sid, Some(&main));
    assert_error(&r, 500, "store failure");
    assert!(
        !r.text().contains("call_events"),
        "no internals in the body: {}",
        r.text()
    );
    d.assert_alive();
}
