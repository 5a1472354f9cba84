//! REST auth and errors (SPEC §6.1, §6.2): every `/2010-04-01` route, media included, needs
//! Basic `AccountSid:AuthToken` (401 + error 20003 otherwise), another account in the path is
//! 403, an unknown SID is 404 with the error JSON, and an unauthenticated client cannot tell
//! an existing SID from a missing one. `http.media_auth = "none"` opens media only.
//! `/healthz` and `/metrics` are open.

mod common;
mod twilio_app;
mod twilio_client;

use common::*;
use std::time::Duration;
use twilio_client::*;

const OTHER_ACCOUNT: &str = "ACffffffffffffffffffffffffffffffff";
const MISSING_RE: &str = "RE00000000000000000000000000000000";
const MISSING_CA: &str = "CA00000000000000000000000000000000";

/// Records one short call; returns (daemon, webhook server, RecordingSid, CallSid).
fn one_recording(overrides: &[(&str, &str)]) -> (Daemon, WebhookServer, String, String) {
    let wh = WebhookServer::start();
    wh.route("/action", Reply::twiml("<Response><Hangup/></Response>"));
    let d = Daemon::start(
        overrides,
        App::Twiml(record_twiml(&wh.url("/action"), None)),
    );
    let c = composite(1.0, 2.0, 0.5);
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &c.ulaw);
    let actions = record_calls(&d, &wh, &wav, 1, Duration::ZERO);
    let re = actions[0].param("RecordingSid").to_string();
    let ca = actions[0].param("CallSid").to_string();
    (d, wh, re, ca)
}

/// `(method, path after Accounts/{AC}/, is media)` for every route, for `re`/`ca`.
fn routes(re: &str, ca: &str) -> Vec<(&'static str, String, bool)> {
    vec![
        ("GET", "Recordings.json".into(), false),
        ("GET", format!("Recordings.json?CallSid={ca}"), false),
        ("GET", format!("Recordings/{re}.json"), false),
        ("DELETE", format!("Recordings/{re}.json"), false),
        ("GET", format!("Recordings/{re}"), true),
        ("GET", format!("Recordings/{re}.wav"), true),
        ("GET", format!("Recordings/{re}.mp3"), true),
        ("GET", "Calls.json".into(), false),
        ("GET", format!("Calls/{ca}.json"), false),
        ("GET", format!("Calls/{ca}/Recordings.json"), false),
        ("GET", format!("Calls/{ca}/Recordings/{re}.json"), false),
        ("DELETE", format!("Calls/{ca}/Recordings/{re}.json"), false),
        ("GET", "Transcriptions.json".into(), false),
    ]
}

fn assert_401(r: &Resp, what: &str) {
    assert_error(r, 401, 20003, what);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("basic")),
        "{what}: WWW-Authenticate {:?}",
        r.header("www-authenticate")
    );
}

#[test]
fn every_route_needs_the_account_credentials_and_hides_what_exists() {
    let (d, _wh, re, ca) = one_recording(&[]);
    let http = Http::new();
    let bad_auths: [(&str, Auth); 4] = [
        ("no credentials", Auth::None),
        ("wrong token", Auth::Basic(ACCOUNT_SID, "not-the-token")),
        (
            "other account's SID",
            Auth::Basic(OTHER_ACCOUNT, AUTH_TOKEN),
        ),
        ("empty", Auth::Basic("", "")),
    ];
    for (method, rest, _) in routes(&re, &ca) {
        let existing = api_url(&d, ACCOUNT_SID, &rest);
        let missing = api_url(
            &d,
            ACCOUNT_SID,
            &rest.replace(&re, MISSING_RE).replace(&ca, MISSING_CA),
        );
        for (what, auth) in bad_auths {
            let a = http.request(method, &existing, auth, &[]);
            assert_401(&a, &format!("{method} {rest} ({what})"));
            // Same answer, byte for byte, whether or not the SID exists.
            let b = http.request(method, &missing, auth, &[]);
            assert_eq!(
                (a.status, &a.body),
                (b.status, &b.body),
                "{method} {rest} ({what}): existing vs missing SID"
            );
        }
        // A malformed Authorization header is no credentials.
        let r = http.request(
            method,
            &existing,
            Auth::None,
            &[("Authorization", "Basic !!!")],
        );
        assert_401(&r, &format!("{method} {rest} (malformed header)"));

        // Right credentials, another account in the path: 403, before any lookup.
        let other = api_url(&d, OTHER_ACCOUNT, &rest);
        let r = http.request(method, &other, Auth::Account, &[]);
        assert_error(&r, 403, 20003, &format!("{method} {rest} (other account)"));
    }

    // Unknown SIDs with the right credentials: 404 and the error JSON.
    for rest in [
        format!("Recordings/{MISSING_RE}.json"),
        format!("Recordings/{MISSING_RE}"),
        format!("Recordings/{MISSING_RE}.wav"),
        format!("Recordings/{MISSING_RE}.mp3"),
        format!("Calls/{MISSING_CA}.json"),
        format!("Calls/{MISSING_CA}/Recordings/{MISSING_RE}.json"),
        format!("Calls/{MISSING_CA}/Recordings/{re}.json"),
        "Recordings/not-a-sid.json".into(),
        "NoSuchThing.json".into(),
    ] {
        let r = http.get(&api_url(&d, ACCOUNT_SID, &rest), Auth::Account);
        assert_error(&r, 404, 20404, &format!("GET {rest}"));
    }
    let r = http.request(
        "DELETE",
        &api_url(&d, ACCOUNT_SID, &format!("Recordings/{MISSING_RE}.json")),
        Auth::Account,
        &[],
    );
    assert_error(&r, 404, 20404, "DELETE unknown recording");
    // An empty list for an unknown call is a list, not an error.
    let r = http.get(
        &api_url(
            &d,
            ACCOUNT_SID,
            &format!("Calls/{MISSING_CA}/Recordings.json"),
        ),
        Auth::Account,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["recordings"].as_array().map(Vec::len), Some(0));

    // None of the unauthenticated DELETEs removed anything; the right credentials still see
    // everything.
    for (method, rest, media) in routes(&re, &ca) {
        if method != "GET" || rest.starts_with("Transcriptions") {
            continue;
        }
        let r = http.get(&api_url(&d, ACCOUNT_SID, &rest), Auth::Account);
        assert_eq!(r.status, 200, "GET {rest} with credentials: {}", r.text());
        if media {
            assert!(r.body.len() > 44, "GET {rest}: {} bytes", r.body.len());
        }
    }
    assert!(d.recording_path(&re).exists());

    // Open endpoints.
    let r = http.get(&format!("{}/healthz", d.public_url()), Auth::None);
    assert_eq!(r.status, 200, "healthz: {}", r.text());
    let r = http.get(&format!("{}/metrics", d.public_url()), Auth::None);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "metrics content type {:?}",
        r.header("content-type")
    );
    let text = r.text();
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("metric {name} missing in:\n{text}"))
    };
    assert_eq!(value("hark_active_calls"), 0);
    assert_eq!(value("hark_recordings_in_progress"), 0);
    assert_eq!(value("hark_calls_total"), 1);
    // 2 s of speech and 1.5 s of silence at 50 packets/s, at least.
    assert!(value("hark_rtp_packets_total") >= 150, "{text}");
    assert!(value("hark_rtp_bytes_total") >= 150 * 160, "{text}");
    assert_eq!(value("hark_rtp_lost_total"), 0);
    assert_eq!(value("hark_db_errors_total"), 0);
    assert_eq!(value("hark_disk_errors_total"), 0);
    assert_eq!(value("hark_mp3_encodes_total"), 1, "one .mp3 fetched");
    for outcome in ["2xx", "4xx", "5xx", "error"] {
        value(&format!("hark_webhooks_total{{outcome=\"{outcome}\"}}"));
    }
}

#[test]
fn media_auth_none_opens_media_only() {
    let (d, _wh, re, ca) = one_recording(&[("http.media_auth", "none")]);
    let http = Http::new();
    let file = std::fs::read(d.recording_path(&re)).expect("recording");
    for (method, rest, media) in routes(&re, &ca) {
        let url = api_url(&d, ACCOUNT_SID, &rest);
        let r = http.request(method, &url, Auth::None, &[]);
        if media {
            assert_eq!(r.status, 200, "{rest} without credentials: {}", r.text());
            if !rest.ends_with(".mp3") {
                assert!(r.body == file, "{rest}: bytes differ from the file");
            }
            // A path naming another account does not serve this account's media.
            let other = http.get(&api_url(&d, OTHER_ACCOUNT, &rest), Auth::None);
            assert_eq!(other.status, 404, "{rest} under another account");
        } else {
            assert_401(&r, &format!("{method} {rest} with media_auth=none"));
        }
    }
    let r = http.get(
        &api_url(&d, ACCOUNT_SID, &format!("Recordings/{MISSING_RE}.wav")),
        Auth::None,
    );
    assert_error(&r, 404, 20404, "unknown media with media_auth=none");
}
