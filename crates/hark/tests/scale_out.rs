//! Scale-out (issue 15) with real parts on loopback: recordings go to an S3 server (s3s-fs)
//! before the `<Record>` action request and are served from it with Range; a failed upload is
//! retried from the queue; a crash's recording is uploaded on restart; two nodes share one
//! PostgreSQL database (each lists what the other recorded and serves its media, live call
//! control reaches the node running the call); a draining node answers OPTIONS and INVITE 503
//! and SIGTERM lets a call finish.

mod common;

use std::path::Path;
use std::time::Duration;

use common::sip::{options_request, pcmu_offer, udp_exchange};
use common::*;
use media_store::testing::S3Server;
use store::testing::PostgresServer;

const BUCKET: &str = "recordings";
const BOT_TOKEN: &str = "scale-out-bot-token-7f3k";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `storage.backend = "s3"` at `server`.
fn s3_overrides(server: &S3Server) -> Vec<(String, String)> {
    let s = server.settings();
    vec![
        ("storage.backend".into(), "s3".into()),
        ("storage.s3.endpoint".into(), s.endpoint),
        ("storage.s3.bucket".into(), s.bucket),
        ("storage.s3.region".into(), s.region),
        ("storage.s3.access_key_id".into(), s.access_key_id),
        ("storage.s3.secret_access_key".into(), s.secret_access_key),
        ("storage.s3.path_style".into(), "true".into()),
    ]
}

fn borrowed(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, x)| (k.as_str(), x.as_str())).collect()
}

fn record_app(wh: &WebhookServer) -> App {
    wh.route("/done", Reply::twiml("<Response/>").fetch_recording());
    App::Twiml(format!(
        r##"<Response><Record action="{}" maxLength="30" timeout="10" finishOnKey="#" playBeep="false"/></Response>"##,
        wh.url("/done")
    ))
}

/// GET with the account's credentials; (status, headers, body).
fn get(url: &str, range: Option<&str>) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    rt().block_on(async {
        let mut req = reqwest::Client::new()
            .get(url)
            .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN));
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        let resp = req.send().await.expect("GET");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.bytes().await.expect("body").to_vec())
    })
}

fn post(url: &str, form: &[(&str, &str)]) -> (u16, String) {
    rt().block_on(async {
        let resp = reqwest::Client::new()
            .post(url)
            .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(
                form.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&"),
            )
            .send()
            .await
            .expect("POST");
        (resp.status().as_u16(), resp.text().await.expect("body"))
    })
}

/// The calls a node's REST API lists (first page), if it answers.
fn calls_listed(d: &Daemon) -> Option<Vec<serde_json::Value>> {
    let url = format!(
        "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json",
        d.public_url()
    );
    let (_, _, body) = get(&url, None);
    let page: serde_json::Value = serde_json::from_slice(&body).ok()?;
    page["calls"].as_array().cloned()
}

fn speech_wav(d: &Daemon) -> (std::path::PathBuf, Vec<i16>) {
    let speech = speech_ulaw();
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &speech);
    (wav, decode_all(&speech))
}

fn wait_file(path: &Path, timeout: Duration) -> Vec<u8> {
    wait_until(timeout, || std::fs::read(path).ok())
        .unwrap_or_else(|| panic!("{} did not appear within {timeout:?}", path.display()))
}

#[test]
fn a_recording_is_in_the_bucket_before_the_action_and_served_from_it_with_range() {
    let dir = TempDir::new("s3");
    let s3 = S3Server::start(&dir.join("s3"), BUCKET).expect("s3s-fs");
    let wh = WebhookServer::start();
    let d = Daemon::start(&borrowed(&s3_overrides(&s3)), record_app(&wh));
    let (wav, sent) = speech_wav(&d);
    let action = call_then_pound(&d, &wh, &wav);
    let sid = action.param("RecordingSid").to_string();
    let object = s3.bucket_dir().join(format!("{sid}.wav"));
    let stored = std::fs::read(&object).expect("the recording is in the bucket at action time");
    assert!(
        !d.recording_path(&sid).exists(),
        "the local copy is removed after the verified upload"
    );
    // The action handler fetched RecordingUrl while Hark waited for it: the bucket's bytes.
    let fetched = action.fetched.as_ref().expect("fetched at action time");
    assert_eq!(
        (fetched.status, fetched.content_type.as_str()),
        (200, "audio/x-wav")
    );
    assert!(
        fetched.body == stored,
        "RecordingUrl served the bucket's object"
    );
    let samples = read_recording(&object);
    find_segment(&samples, &sent).expect("the uploaded WAV holds the audio sent");
    assert_eq!(
        action.param("RecordingDuration"),
        rounded_seconds(samples.len()).to_string()
    );

    let url = d.recording_url(&sid);
    let (status, headers, body) = get(&url, Some("bytes=44-1043"));
    assert_eq!(status, 206);
    assert_eq!(body, stored[44..1044]);
    assert_eq!(
        headers["content-range"].to_str().unwrap(),
        format!("bytes 44-1043/{}", stored.len())
    );
    let (status, _, body) = get(&url, Some("bytes=-100"));
    assert_eq!(
        (status, body.as_slice()),
        (206, &stored[stored.len() - 100..])
    );
    let (status, headers, _) = get(&url, Some(&format!("bytes={}-", stored.len())));
    assert_eq!(status, 416);
    assert_eq!(
        headers["content-range"].to_str().unwrap(),
        format!("bytes */{}", stored.len())
    );
    // An MP3 is made from the bucket's WAV; the temporary download does not stay.
    let (status, headers, mp3) = get(&format!("{url}.mp3"), None);
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "audio/mpeg");
    assert!(mp3.len() > 1000, "an MP3 of {} bytes", mp3.len());
    let leftovers: Vec<_> = std::fs::read_dir(&d.storage)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".fetched.wav"))
        .collect();
    assert!(leftovers.is_empty(), "temporary copies left: {leftovers:?}");

    let metrics = http_get(d.http_addr(), "/metrics").expect("metrics").1;
    assert_eq!(metric(&metrics, "hark_uploads_total"), Some(1.0));
    assert_eq!(metric(&metrics, "hark_upload_failures_total"), Some(0.0));

    // DELETE removes the object too.
    let deleted = rt().block_on(async {
        reqwest::Client::new()
            .delete(format!("{url}.json"))
            .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(deleted, 204);
    assert!(
        !object.exists(),
        "the bucket's object is deleted with the recording"
    );
    wh.assert_signatures_ok();
}

#[test]
fn an_upload_that_fails_is_retried_from_the_queue_until_the_bucket_is_back() {
    let dir = TempDir::new("s3-down");
    let mut s3 = S3Server::start(&dir.join("s3"), BUCKET).expect("s3s-fs");
    let port = s3.port();
    let overrides = s3_overrides(&s3);
    s3.stop();
    let wh = WebhookServer::start();
    let d = Daemon::start(&borrowed(&overrides), record_app(&wh));
    let (wav, sent) = speech_wav(&d);
    let action = call_then_pound(&d, &wh, &wav);
    let sid = action.param("RecordingSid").to_string();
    // The bucket is down: the action still comes, the recording is served from this disk.
    let local = d.recording_path(&sid);
    let on_disk = std::fs::read(&local).expect("kept on disk while the upload waits");
    find_segment(&read_recording(&local), &sent).expect("the audio sent");
    let fetched = action.fetched.as_ref().expect("fetched");
    assert_eq!(fetched.status, 200);
    assert!(fetched.body == on_disk);
    let metrics = http_get(d.http_addr(), "/metrics").expect("metrics").1;
    assert!(metric(&metrics, "hark_upload_failures_total").unwrap_or(0.0) >= 1.0);
    assert_eq!(metric(&metrics, "hark_uploads_total"), Some(0.0));

    // The bucket comes back on its port: the queue delivers it (backoff 1, 2, 4 s…).
    let _s3 = S3Server::start_on(&dir.join("s3"), BUCKET, port).expect("s3s-fs again");
    let object = wait_file(
        &_s3.bucket_dir().join(format!("{sid}.wav")),
        Duration::from_secs(30),
    );
    assert!(object == on_disk, "the bucket holds the exact file");
    wait_until(Duration::from_secs(5), || (!local.exists()).then_some(()))
        .expect("the local copy goes once the upload is checked");
    let metrics = http_get(d.http_addr(), "/metrics").expect("metrics").1;
    assert_eq!(metric(&metrics, "hark_uploads_total"), Some(1.0));
    let (status, _, body) = get(&d.recording_url(&sid), None);
    assert_eq!((status, body == on_disk), (200, true));
}

#[test]
fn a_crash_mid_recording_is_repaired_and_uploaded_on_restart() {
    let dir = TempDir::new("s3-crash");
    let s3 = S3Server::start(&dir.join("s3"), BUCKET).expect("s3s-fs");
    let wh = WebhookServer::start();
    wh.route("/done", Reply::twiml("<Response/>"));
    let app = App::Twiml(format!(
        r##"<Response><Record action="{}" maxLength="30" timeout="10" playBeep="false" transcribe="true"/></Response>"##,
        wh.url("/done")
    ));
    let mut d = Daemon::start(&borrowed(&s3_overrides(&s3)), app);
    let (wav, _) = speech_wav(&d);
    let caller = HarkCall::new(&d.uri("rec")).play(&wav).spawn(&d.tmp);
    // Three seconds in, the node dies.
    let in_progress = wait_until(Duration::from_secs(10), || {
        let files = d.recordings();
        (!files.is_empty()).then_some(files)
    })
    .expect("a recording file appears");
    std::thread::sleep(Duration::from_secs(3));
    d.kill_9();
    let _ = caller.kill();
    let name = in_progress[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(!s3.bucket_dir().join(&name).exists());
    d.restart();
    let object = wait_file(&s3.bucket_dir().join(&name), Duration::from_secs(20));
    let samples = read_recording(&s3.bucket_dir().join(&name));
    assert!(
        samples.len() >= 2 * 8000,
        "the repaired recording keeps what was written ({} samples, {} bytes)",
        samples.len(),
        object.len()
    );
    wait_until(Duration::from_secs(5), || {
        (!d.storage.join(&name).exists()).then_some(())
    })
    .expect("local copy removed after the upload");
    // transcribe="true": the recovered recording's transcription is queued too.
    let sid = name.trim_end_matches(".wav");
    let (status, _, body) = get(
        &format!(
            "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}/Transcriptions.json",
            d.public_url()
        ),
        None,
    );
    assert_eq!(status, 200);
    let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        page["transcriptions"].as_array().map(Vec::len),
        Some(1),
        "{page}"
    );
}

/// Two nodes on one PostgreSQL database and one bucket.
struct TwoNodes {
    _pg: PostgresServer,
    s3: S3Server,
    a: Daemon,
    b: Daemon,
    wh: WebhookServer,
}

fn two_nodes(dir: &TempDir, app: impl Fn(&WebhookServer) -> App) -> TwoNodes {
    let pg = PostgresServer::start().expect("PostgreSQL");
    let url = pg.fresh_schema_url().expect("schema");
    let s3 = S3Server::start(&dir.join("s3"), BUCKET).expect("s3s-fs");
    let wh = WebhookServer::start();
    let node = |id: &str| {
        let mut o = s3_overrides(&s3);
        o.push(("storage.database_url".into(), url.clone()));
        o.push(("cluster.node_id".into(), id.into()));
        o.push(("bot.api_token".into(), BOT_TOKEN.into()));
        o
    };
    let a = Daemon::start(&borrowed(&node("node-a")), app(&wh));
    let b = Daemon::start(&borrowed(&node("node-b")), app(&wh));
    TwoNodes {
        _pg: pg,
        s3,
        a,
        b,
        wh,
    }
}

#[test]
fn two_nodes_share_one_postgres_each_lists_and_serves_what_the_other_recorded() {
    let dir = TempDir::new("pg-two");
    let n = two_nodes(&dir, record_app);
    let (wav, sent) = speech_wav(&n.a);
    let action = call_then_pound(&n.a, &n.wh, &wav);
    let sid = action.param("RecordingSid").to_string();
    let call_sid = action.param("CallSid").to_string();
    let list = |d: &Daemon| {
        let (status, _, body) = get(
            &format!(
                "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings.json",
                d.public_url()
            ),
            None,
        );
        assert_eq!(status, 200);
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    };
    for d in [&n.a, &n.b] {
        let page = list(d);
        let recs = page["recordings"].as_array().unwrap();
        assert_eq!(recs.len(), 1, "{page}");
        assert_eq!(recs[0]["sid"], sid.as_str());
        assert_eq!(recs[0]["call_sid"], call_sid.as_str());
        assert_eq!(recs[0]["status"], "completed");
    }
    // Node B never had the file: it serves node A's recording from the bucket.
    let object = std::fs::read(n.s3.bucket_dir().join(format!("{sid}.wav"))).unwrap();
    let (status, _, body) = get(&n.b.recording_url(&sid), None);
    assert_eq!(status, 200);
    assert!(body == object);
    find_segment(
        &read_recording(&n.s3.bucket_dir().join(format!("{sid}.wav"))),
        &sent,
    )
    .expect("the audio sent");
    let (status, _, body) = get(
        &format!(
            "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}.json",
            n.b.public_url()
        ),
        None,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

#[test]
fn live_call_control_sent_to_another_node_reaches_the_call() {
    let dir = TempDir::new("pg-forward");
    let n = two_nodes(&dir, |wh| {
        wh.route("/done", Reply::twiml("<Response/>"));
        App::Twiml(format!(
            r##"<Response><Record action="{}" maxLength="60" timeout="30" playBeep="false"/></Response>"##,
            wh.url("/done")
        ))
    });
    let (wav, _) = speech_wav(&n.a);
    let caller = HarkCall::new(&n.a.uri("rec"))
        .play(&wav)
        .hangup_after(30.0)
        .spawn(&n.a.tmp);
    let call_sid = wait_until(Duration::from_secs(10), || {
        let calls = calls_listed(&n.b)?;
        let call = calls.first()?.clone();
        (call["status"] == "in-progress").then(|| call["sid"].as_str().unwrap().to_owned())
    })
    .expect("node B lists node A's call in progress");
    std::thread::sleep(Duration::from_secs(2));
    let (status, body) = post(
        &format!(
            "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}.json",
            n.b.public_url()
        ),
        &[("Status", "completed")],
    );
    assert_eq!(status, 200, "{body}");
    // Node A hung the call up: the caller ends long before its 30 s.
    let out = caller.wait(Duration::from_secs(10));
    assert!(out.success(), "the caller saw Hark's BYE");
    assert!(
        n.b.log()
            .contains("live call control forwarded to the call's node"),
        "node B forwarded it:\n{}",
        n.b.log()
    );
    // The call ended as completed, its recording kept and uploaded by node A.
    let call_url = format!(
        "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}.json",
        n.b.public_url()
    );
    wait_until(Duration::from_secs(10), || {
        let (_, _, body) = get(&call_url, None);
        let call: serde_json::Value = serde_json::from_slice(&body).ok()?;
        (call["status"] == "completed").then_some(())
    })
    .expect("the call is completed");
    let recs = format!(
        "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}/Recordings.json",
        n.b.public_url()
    );
    let sid = wait_until(Duration::from_secs(10), || {
        let (_, _, body) = get(&recs, None);
        let page: serde_json::Value = serde_json::from_slice(&body).ok()?;
        let rec = page["recordings"].as_array()?.first()?.clone();
        (rec["status"] == "completed").then(|| rec["sid"].as_str().unwrap().to_owned())
    })
    .expect("the call's recording is completed");
    wait_file(
        &n.s3.bucket_dir().join(format!("{sid}.wav")),
        Duration::from_secs(10),
    );

    // The Graph-style API too: DELETE of a call node A runs, sent to node B, hangs it up.
    let caller = HarkCall::new(&n.a.uri("rec"))
        .play(&wav)
        .hangup_after(30.0)
        .spawn(&n.a.tmp);
    let second = wait_until(Duration::from_secs(10), || {
        let calls = calls_listed(&n.b)?;
        let call = calls.iter().find(|c| c["status"] == "in-progress")?.clone();
        Some(call["sid"].as_str().unwrap().to_owned())
    })
    .expect("the second call is up");
    std::thread::sleep(Duration::from_secs(1));
    let status = rt().block_on(async {
        reqwest::Client::new()
            .delete(format!(
                "{}/v1.0/communications/calls/{second}",
                n.b.public_url()
            ))
            .bearer_auth(BOT_TOKEN)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 204);
    assert!(caller.wait(Duration::from_secs(10)).success());
}

/// The console of either node shows both nodes' live calls; its hang-up (session cookie and
/// CSRF token) reaches the node that runs the call.
#[test]
fn each_nodes_console_shows_every_nodes_live_calls_and_hangs_them_up() {
    let dir = TempDir::new("pg-console");
    let n = two_nodes(&dir, |_| {
        App::Twiml(r#"<Response><Pause length="30"/></Response>"#.into())
    });
    // Signed in to node B's console.
    let (cookie, csrf) = rt().block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{}/console/api/session", n.b.public_url()))
            .header("Content-Type", "application/json")
            .body(serde_json::json!({"username": ACCOUNT_SID, "password": AUTH_TOKEN}).to_string())
            .send()
            .await
            .expect("sign-in");
        assert_eq!(r.status().as_u16(), 200);
        let cookie = cookie_pair(r.headers()["set-cookie"].to_str().unwrap());
        let body: serde_json::Value = r.json().await.unwrap();
        (cookie, body["csrf_token"].as_str().unwrap().to_string())
    });
    let live = |d: &Daemon| -> serde_json::Value {
        rt().block_on(async {
            reqwest::Client::new()
                .get(format!("{}/console/api/live.json", d.public_url()))
                .header("cookie", &cookie)
                .send()
                .await
                .expect("live.json")
                .json()
                .await
                .expect("JSON")
        })
    };
    let (wav, _) = speech_wav(&n.a);
    let caller = HarkCall::new(&n.a.uri("rec"))
        .play(&wav)
        .hangup_after(30.0)
        .spawn(&n.a.tmp);
    // Node A runs it; node B's live view shows it, naming node A, within a few polls.
    let started = std::time::Instant::now();
    let call = wait_until(Duration::from_secs(10), || {
        let v = live(&n.b);
        let c = v["calls"].as_array()?.first()?.clone();
        (c["state"] == "established").then_some(c)
    })
    .expect("node B's console shows node A's call");
    eprintln!(
        "node B's console showed node A's call {} ms after the call started",
        started.elapsed().as_millis()
    );
    assert_eq!(call["node"], "node-a", "{call}");
    assert_eq!(call["verb"], "Pause", "{call}");
    let sid = call["sid"].as_str().unwrap().to_string();
    // Node A's own view of itself (what B polls) has it too, with Basic credentials.
    let own = rt().block_on(async {
        reqwest::Client::new()
            .get(format!(
                "{}/console/api/live.json?scope=node",
                n.a.public_url()
            ))
            .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    });
    assert_eq!(own["calls"][0]["sid"], sid.as_str());
    // Hang-up from node B's console: forwarded to node A, which sends the BYE.
    let status = rt().block_on(async {
        reqwest::Client::new()
            .post(format!(
                "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json",
                n.b.public_url()
            ))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .form(&[("Status", "completed")])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 200);
    assert!(
        caller.wait(Duration::from_secs(10)).success(),
        "the caller got node A's BYE"
    );
    wait_until(Duration::from_secs(10), || {
        live(&n.b)["calls"].as_array()?.is_empty().then_some(())
    })
    .expect("the call left node B's live view");
}

#[test]
fn a_draining_node_answers_503_and_sigterm_lets_the_call_finish() {
    let wh = WebhookServer::start();
    let mut d = Daemon::start(&[], record_app(&wh));
    assert!(options_ok(d.sip_addr()));
    let admin = format!("{}/admin/drain", d.public_url());
    let (status, body) = post(&admin, &[("Draining", "true")]);
    assert_eq!(status, 200, "{body}");
    let state: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(state["draining"], true);
    let probe = wait_until(Duration::from_secs(3), || {
        let replies = udp_exchange(
            d.sip_addr(),
            |local| options_request(local, d.sip_addr(), "UDP").into_bytes(),
            Duration::from_millis(500),
        );
        replies.into_iter().find(|m| m.status() == Some(503))
    })
    .expect("OPTIONS answered 503 while draining");
    assert!(probe.header("Retry-After").is_some());
    let mut uac = RawUac::new(d.sip_addr());
    let refused = uac.invite("rec", &pcmu_offer(40_000), Duration::from_secs(3));
    assert_eq!(refused.status(), Some(503));
    let (status, _, health) = get(&format!("{}/healthz", d.public_url()), None);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&health));

    // `hark drain --undo` with the node's config takes calls again.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hark"))
        .args(["drain", "--undo", "--url", &d.public_url(), "--config"])
        .arg(d.tmp.join("hark.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"draining\":false"));
    assert!(options_ok(d.sip_addr()));

    // SIGTERM with a call up: no new calls, the call goes on to its end, then the node exits.
    let (wav, sent) = speech_wav(&d);
    let samples = read_ulaw_wav(&wav).len();
    let caller = HarkCall::new(&d.uri("rec"))
        .play(&wav)
        .dtmf("#", secs(samples) + 0.1)
        .spawn(&d.tmp);
    wait_until(Duration::from_secs(5), || {
        (!d.recordings().is_empty()).then_some(())
    })
    .expect("recording");
    let pid = d.pid().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let probe = wait_until(Duration::from_secs(3), || {
        udp_exchange(
            d.sip_addr(),
            |local| options_request(local, d.sip_addr(), "UDP").into_bytes(),
            Duration::from_millis(500),
        )
        .into_iter()
        .find(|m| m.status() == Some(503))
    });
    assert!(probe.is_some(), "draining after SIGTERM");
    caller.wait(Duration::from_secs(40)).assert_success();
    let action = wh.wait_for("/done", 1, Duration::from_secs(10)).remove(0);
    assert_eq!(
        action.param("Digits"),
        "#",
        "the caller finished the recording"
    );
    let rec = check_recording(&d, &action, &sent, true);
    assert!(
        rec.samples.len() >= samples - 8000,
        "the whole message was kept"
    );
    wait_until(Duration::from_secs(15), || (!d.is_running()).then_some(()))
        .expect("the node exits once its last call ended");
}
