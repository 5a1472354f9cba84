//! Issue 12 item 1–2 groundwork: `[[api_key]]` credentials on the REST API through the official
//! twilio-python client (`Client(api_key_sid, api_key_secret, account_sid)`), and the HTTP
//! listener serving HTTPS with `http.tls_cert`/`http.tls_key` (a throw-away self-signed
//! certificate made with the openssl CLI).

mod common;
mod twilio_app;
mod twilio_client;

use common::*;
use serde_json::Value;
use std::time::Duration;
use twilio_client::*;

const KEY_SID: &str = "SKabcdef0123456789abcdef0123456789";
const KEY_SECRET: &str = "e2e-api-key-secret-7c1d";

#[test]
fn twilio_python_client_with_an_api_key_lists_fetches_and_downloads() {
    let wh = WebhookServer::start();
    wh.route("/action", Reply::twiml("<Response><Hangup/></Response>"));
    let d = Daemon::prepare(&[], App::Twiml(record_twiml(&wh.url("/action"), None)));
    d.append_config(&format!(
        "\n[[api_key]]\nsid = \"{KEY_SID}\"\nsecret = \"{KEY_SECRET}\"\n"
    ));
    let mut d = d;
    d.launch();
    let (wav, _) = looped_speech(&d.tmp, "speech.wav", 1);
    let actions = record_calls(&d, &wh, &wav, 1, Duration::ZERO);
    let (rec, call) = (
        actions[0].param("RecordingSid"),
        actions[0].param("CallSid"),
    );

    let out = TempDir::new("api-key-client");
    let args: Vec<String> = [
        "--base-url",
        &d.public_url(),
        "--account-sid",
        ACCOUNT_SID,
        "--key-sid",
        KEY_SID,
        "--key-secret",
        KEY_SECRET,
        "--recording",
        rec,
        "--call",
        call,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = run_script("api_key_check.py", &args, &out, Duration::from_secs(60));
    run.assert_success();
    let report: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("report is not JSON ({e}): {}", run.stdout));
    assert_eq!(report["recordings"], serde_json::json!([rec]));
    assert_eq!(report["calls"], serde_json::json!([call]));
    let on_disk = std::fs::read(d.recording_path(rec)).expect("recording on disk");
    assert_eq!(report["media_bytes"], on_disk.len());
    // A wrong secret, and the key's secret used as the account's auth token, are both 401/20003.
    for case in ["wrong_secret", "secret_as_auth_token"] {
        assert_eq!(report[case]["status"], 401, "{case}: {}", report[case]);
        assert_eq!(report[case]["code"], 20003, "{case}: {}", report[case]);
    }
}

#[test]
fn https_listener_serves_healthz_and_the_api_with_the_configured_certificate() {
    let certs = TempDir::new("https-cert");
    let (cert, key) = tls::self_signed_cert(&certs, "hark");
    let cert_s = cert.display().to_string();
    let key_s = key.display().to_string();
    let d = Daemon::start(
        &[("http.tls_cert", &cert_s), ("http.tls_key", &key_s)],
        App::Twiml("<Response><Hangup/></Response>".into()),
    );
    let base = format!("https://127.0.0.1:{}", d.http_port);
    // `http.public_url = ""` is derived with the https scheme (logged with `hark is serving`,
    // which may come just after the daemon first answers SIP).
    let want = format!("public_url={base} ");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !d.log().contains(&want) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {want:?} in the log:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let pem = std::fs::read(&cert).expect("read cert");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("cert parses"))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    rt.block_on(async {
        let r = trusting
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("GET /healthz over https");
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.expect("healthz JSON");
        assert_eq!(v["database"], "ok", "{v}");
        // The REST API is behind the same TLS, with the same auth.
        let list = format!("{base}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json");
        let r = trusting.get(&list).send().await.expect("GET Calls.json");
        assert_eq!(r.status(), 401);
        let r = trusting
            .get(&list)
            .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
            .send()
            .await
            .expect("GET Calls.json");
        assert_eq!(r.status(), 200);

        // A client that does not trust the certificate is refused by its own TLS check, and
        // plain HTTP on the HTTPS port gets no HTTP answer.
        let default = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        assert!(default.get(format!("{base}/healthz")).send().await.is_err());
        let plain = default
            .get(format!("http://127.0.0.1:{}/healthz", d.http_port))
            .send()
            .await;
        assert!(
            plain.as_ref().map_or(true, |r| r.status() != 200),
            "plain HTTP answered: {plain:?}"
        );
    });
    // A failed handshake does not stop the listener.
    rt.block_on(async {
        let r = trusting
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("GET /healthz after bad clients");
        assert_eq!(r.status(), 200);
    });
}
