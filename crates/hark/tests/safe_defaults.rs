//! Issue 14 item 5, safe defaults: with `http.listen` beyond loopback `hark serve` refuses a
//! weak auth token (naming the key) before it listens; the SSRF guard keeps `<Play>` and
//! `<Redirect>` away from private addresses the operator did not name (a server on 127.0.0.2
//! sees no request), and `webhook.allow_private` opens them. (The generated token of a config
//! without one: `default_config_voicemail.rs`.)

mod common;

use common::daemon::serve_expect_exit;
use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn a_weak_token_beyond_loopback_is_refused_before_listening() {
    for (token, listen) in [("changeme", "0.0.0.0:0"), ("short", "0.0.0.0:0")] {
        let d = Daemon::prepare(
            &[("account.auth_token", token), ("http.listen", listen)],
            App::Twiml("<Response><Hangup/></Response>".into()),
        );
        let (code, out) = serve_expect_exit(Some(&d.config_path), &[], Duration::from_secs(10));
        assert!(
            code.is_some_and(|c| c != 0),
            "{token}: exit {code:?}\n{out}"
        );
        assert!(out.contains("`account.auth_token`"), "{out}");
        assert!(!out.contains("listening"), "nothing was bound:\n{out}");
    }
}

/// A plain HTTP server on 127.0.0.2 (a private address no config URL names) that logs request
/// lines and answers every one with a short µ-law WAV.
struct PrivateServer {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
    hits: Arc<AtomicUsize>,
}

impl PrivateServer {
    fn start(wav: Vec<u8>) -> PrivateServer {
        let listener = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let hits = Arc::new(AtomicUsize::new(0));
        let (log, count) = (requests.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(64) {
                let Ok(mut s) = stream else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                count.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut l) = log.lock() {
                    l.push(head.lines().next().unwrap_or("").to_string());
                }
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    wav.len()
                );
                let _ = s.write_all(&wav);
            }
        });
        PrivateServer {
            base,
            requests,
            hits,
        }
    }
}

fn call_once(d: &Daemon) {
    let silence = d.tmp.join("silence.wav");
    write_ulaw_wav(&silence, &vec![0xFF; 8000 * 6]);
    let out = HarkCall::new(&d.uri("rec"))
        .play(&silence)
        .hangup_after(6.0)
        .run(&d.tmp, Duration::from_secs(30));
    assert!(out.success(), "{out:#?}\n{}", d.log());
}

#[test]
fn the_private_test_server_answers() {
    let private = PrivateServer::start(b"RIFF".to_vec());
    let out = std::process::Command::new("curl")
        .args(["-s", "-m", "3", &format!("{}/probe", private.base)])
        .output()
        .expect("curl");
    assert_eq!(out.stdout, b"RIFF");
    assert_eq!(private.hits.load(Ordering::SeqCst), 1);
}

#[test]
fn play_and_redirect_to_unnamed_private_addresses_are_refused_unless_allowed() {
    // Half a second of tone: the <Play> is over long before the caller hangs up.
    let tmp = TempDir::new("ssrf-wav");
    let wav_path = tmp.join("beep.wav");
    let tone: Vec<u8> = (0..4000)
        .map(|i| if i % 8 < 4 { 0x10 } else { 0x90 })
        .collect();
    write_ulaw_wav(&wav_path, &tone);
    let wav = std::fs::read(&wav_path).expect("test WAV");
    let private = PrivateServer::start(wav);
    let wh = WebhookServer::start();
    let doc = format!(
        "<Response><Play>{0}/secret.wav</Play><Redirect>{0}/next</Redirect></Response>",
        private.base
    );
    wh.route("/voice", Reply::twiml(&doc));
    wh.route(
        "/fallback",
        Reply::twiml("<Response><Say>Fallback.</Say><Hangup/></Response>"),
    );
    let fallback = wh.url("/fallback");
    let app = App::VoiceUrl {
        url: wh.url("/voice"),
        method: "POST",
    };

    let guarded = Daemon::start(&[("app.fallback_url", fallback.as_str())], app.clone());
    call_once(&guarded);
    assert_eq!(
        private.hits.load(Ordering::SeqCst),
        0,
        "no request reached 127.0.0.2: {:?}",
        private.requests.lock().map(|r| r.clone())
    );
    // The refused <Redirect> is a failed fetch: the fallback runs with 11200.
    let fallbacks = wh.wait_for("/fallback", 1, Duration::from_secs(5));
    assert_eq!(fallbacks[0].param("ErrorCode"), "11200");
    let log = guarded.log();
    assert!(
        log.contains("127.0.0.2 is a private address"),
        "the refusal is logged with the reason:\n{log}"
    );

    let allowed = Daemon::start(
        &[
            ("app.fallback_url", fallback.as_str()),
            ("webhook.allow_private", "127.0.0.2/32"),
        ],
        app,
    );
    call_once(&allowed);
    let seen = wait_until(Duration::from_secs(5), || {
        let r = private.requests.lock().ok()?.clone();
        (r.len() >= 2).then_some(r)
    })
    .unwrap_or_else(|| {
        panic!(
            "both fetches reach 127.0.0.2 once allowed: {:?}\n{}",
            private.requests.lock().map(|r| r.clone()),
            allowed.log()
        )
    });
    assert!(
        seen.iter().any(|l| l.starts_with("GET /secret.wav")),
        "{seen:?}"
    );
    assert!(seen.iter().any(|l| l.starts_with("POST /next")), "{seen:?}");
}
