//! The status-callback outbox (SPEC §9): a webhook receiver that refuses connections while two
//! recordings run, then answers 500 twice, then 200. Every callback (in-progress and
//! completed of both recordings) is delivered exactly once — one 200 per idempotency token,
//! same parameters on every retry — and in order per recording.

mod common;
mod twilio_app;
mod twilio_client;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use common::webhook::twilio_signature;
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use twilio_client::*;

/// One request the receiver answered.
#[derive(Debug, Clone)]
struct Hit {
    at: Instant,
    token: String,
    params: Vec<(String, String)>,
    status: u16,
    signature_ok: bool,
}

impl Hit {
    fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.params))
    }
}

struct Shared {
    base: String,
    failures_left: Mutex<u32>,
    hits: Mutex<Vec<Hit>>,
}

/// A receiver on a fixed port that answers 500 to its first `failures` requests, then 200.
struct Receiver {
    _server: LocalServer,
    shared: Arc<Shared>,
}

impl Receiver {
    fn start(port: u16, failures: u32) -> Receiver {
        let mut server = LocalServer::bind(port, 1);
        let shared = Arc::new(Shared {
            base: server.base.clone(),
            failures_left: Mutex::new(failures),
            hits: Mutex::new(Vec::new()),
        });
        server.serve(
            axum::Router::new()
                .fallback(handle)
                .with_state(shared.clone()),
        );
        Receiver {
            _server: server,
            shared,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().expect("hits").clone()
    }

    fn ok_count(&self) -> usize {
        self.hits().iter().filter(|h| h.status == 200).count()
    }
}

async fn handle(
    State(sh): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let url = format!(
        "{}{}",
        sh.base,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let signature_ok = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        == Some(twilio_signature(AUTH_TOKEN, &url, &params).as_str());
    let token = headers
        .get("i-twilio-idempotency-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let status = {
        let mut left = sh.failures_left.lock().expect("failures");
        if *left > 0 {
            *left -= 1;
            500
        } else {
            200
        }
    };
    sh.hits.lock().expect("hits").push(Hit {
        at: Instant::now(),
        token,
        params,
        status,
        signature_ok,
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[test]
fn callbacks_survive_refused_connections_and_500s_delivered_once_in_order() {
    let test_start = Instant::now();
    let wh = WebhookServer::start();
    wh.route("/action", Reply::twiml("<Response><Hangup/></Response>"));
    // Nothing listens here until both recordings are complete.
    let port = alloc_port_block();
    let rsc = format!("http://127.0.0.1:{port}/rsc");
    let d = Daemon::start(
        &[],
        App::Twiml(record_twiml(&wh.url("/action"), Some(&rsc))),
    );
    let c = composite(1.0, 2.0, 0.5);
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &c.ulaw);
    let actions = record_calls(&d, &wh, &wav, 2, Duration::from_millis(300));
    let sids: BTreeSet<String> = actions
        .iter()
        .map(|a| a.param("RecordingSid").to_string())
        .collect();
    assert_eq!(sids.len(), 2);

    let recv = Receiver::start(port, 2);
    wait_until(Duration::from_secs(45), || {
        (recv.ok_count() >= 4).then_some(())
    })
    .unwrap_or_else(|| panic!("4 callbacks not delivered in 45 s: {:#?}", recv.hits()));
    // Anything sent twice would show up within a few poll rounds.
    std::thread::sleep(Duration::from_secs(3));
    let hits = recv.hits();
    assert!(
        hits.iter().all(|h| h.signature_ok),
        "bad signatures: {hits:#?}"
    );
    assert_eq!(
        hits.iter().filter(|h| h.status == 500).count(),
        2,
        "{hits:#?}"
    );

    // One token per callback; every retry of it carries the same parameters; one 200 each.
    let mut by_token: BTreeMap<&str, Vec<&Hit>> = BTreeMap::new();
    for h in &hits {
        assert!(!h.token.is_empty(), "no idempotency token: {h:?}");
        by_token.entry(h.token.as_str()).or_default().push(h);
    }
    assert_eq!(by_token.len(), 4, "4 callbacks: {hits:#?}");
    let mut delivered: BTreeMap<(String, String), Instant> = BTreeMap::new();
    let mut first_try: BTreeMap<(String, String), Instant> = BTreeMap::new();
    for (token, tries) in &by_token {
        let oks = tries.iter().filter(|h| h.status == 200).count();
        assert_eq!(oks, 1, "token {token}: {oks} × 200: {tries:#?}");
        assert_eq!(
            tries.last().map(|h| h.status),
            Some(200),
            "nothing after the 200 for {token}"
        );
        assert!(
            tries.iter().all(|h| h.params == tries[0].params),
            "token {token}: parameters changed between retries: {tries:#?}"
        );
        let sid = tries[0].param("RecordingSid").to_string();
        assert!(sids.contains(&sid), "unknown recording {sid}");
        let status = tries[0].param("RecordingStatus").to_string();
        let key = (sid, status);
        assert!(
            delivered
                .insert(key.clone(), tries[tries.len() - 1].at)
                .is_none(),
            "two tokens for {key:?}"
        );
        first_try.insert(key, tries[0].at);
    }
    // In order per recording: completed is not even tried before in-progress got its 200.
    for sid in &sids {
        let ip = (sid.clone(), "in-progress".to_string());
        let done = (sid.clone(), "completed".to_string());
        assert!(
            delivered.contains_key(&ip) && delivered.contains_key(&done),
            "{sid}: {:?}",
            delivered.keys()
        );
        assert!(
            first_try[&done] >= delivered[&ip],
            "{sid}: completed sent before in-progress was delivered"
        );
        let completed = by_token
            .values()
            .flat_map(|v| v.iter())
            .find(|h| h.param("RecordingSid") == sid && h.param("RecordingStatus") == "completed")
            .expect("completed");
        let samples = read_recording(&d.recording_path(sid));
        assert_eq!(
            completed.param("RecordingDuration"),
            rounded_seconds(samples.len()).to_string()
        );
    }

    let http = Http::new();
    let metrics = http
        .get(&format!("{}/metrics", d.public_url()), Auth::None)
        .text();
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("metric {name} missing in:\n{metrics}"))
    };
    assert_eq!(value("hark_webhooks_total{outcome=\"5xx\"}"), 2);
    assert!(value("hark_webhooks_total{outcome=\"error\"}") >= 2);
    assert_eq!(value("hark_outbox_pending"), 0);
    eprintln!(
        "refused: {}, 500: 2, delivered: 4; test took {:.1} s",
        value("hark_webhooks_total{outcome=\"error\"}"),
        test_start.elapsed().as_secs_f64()
    );
    assert!(
        test_start.elapsed() < Duration::from_secs(60),
        "took {:?}",
        test_start.elapsed()
    );
}
