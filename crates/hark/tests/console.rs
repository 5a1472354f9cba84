//! The web console (issue 16) in a real browser (Debian's chromium-headless-shell driven by
//! playwright-core, `tests/browser/drive.mjs`) against a real daemon and real SIPp calls: sign-in
//! (and its refusals), live calls appearing within 1 s of the INVITE and leaving after the BYE,
//! the hang-up and recording buttons acting on a real call, the call page's player (waveform
//! drawn from the recording's real samples, playback, seek from a transcript utterance), the
//! lists, webhooks and system pages; CSRF refusals over plain HTTP. Screenshots of every page go
//! to `target/test-artifacts/console/` (or `$HARK_TEST_ARTIFACTS/console/`).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::browser::Drive;
use common::*;
use serde_json::Value;

fn artifacts() -> PathBuf {
    let base = std::env::var_os("HARK_TEST_ARTIFACTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts"),
        PathBuf::from,
    );
    let dir = base.join("console");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn console_url(d: &Daemon) -> String {
    format!("{}/console/", d.public_url())
}

/// Opens the console and signs in with the account's SID and token.
fn signed_in(d: &Daemon, width: u32, height: u32) -> Drive {
    let mut b = Drive::start(width, height);
    b.goto(&console_url(d));
    b.wait("form#signin-form", "visible", Duration::from_secs(10));
    b.fill("#username", ACCOUNT_SID);
    b.fill("#password", AUTH_TOKEN);
    b.click("form#signin-form button[type=submit]");
    b.wait("nav#main-nav", "visible", Duration::from_secs(10));
    b.wait("body[data-page=live]", "attached", Duration::from_secs(10));
    b
}

/// Plain HTTP for the parts a browser would hide (cookies' flags, refusals).
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl Http {
    fn new(d: &Daemon) -> Http {
        Http {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            base: d.public_url(),
        }
    }

    fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        self.rt.block_on(async {
            let r = req.send().await.expect("request");
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.text().await.unwrap_or_default();
            Answer {
                status,
                headers,
                body,
            }
        })
    }

    fn sign_in(&self, user: &str, password: &str) -> Answer {
        self.send(
            self.client
                .post(format!("{}/console/api/session", self.base))
                .header("content-type", "application/json")
                .body(serde_json::json!({"username": user, "password": password}).to_string()),
        )
    }

    fn get(&self, path: &str, cookie: &str) -> Answer {
        self.send(
            self.client
                .get(format!("{}{path}", self.base))
                .header("cookie", cookie),
        )
    }

    fn with_cookie(
        &self,
        method: reqwest::Method,
        path: &str,
        cookie: &str,
        csrf: Option<&str>,
        form: &[(&str, &str)],
    ) -> Answer {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("cookie", cookie)
            .form(form);
        if let Some(t) = csrf {
            req = req.header("x-csrf-token", t);
        }
        self.send(req)
    }
}

fn api_path(rest: &str) -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT_SID}/{rest}")
}

fn basic_get(http: &Http, path: &str) -> Answer {
    http.send(
        http.client
            .get(format!("{}{path}", http.base))
            .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN)),
    )
}

/// The recordings of a call (REST, Basic auth), waiting until `n` are `completed`.
fn completed_recordings(http: &Http, call_sid: &str, n: usize) -> Vec<Value> {
    wait_until(Duration::from_secs(20), || {
        let v = basic_get(
            http,
            &api_path(&format!("Calls/{call_sid}/Recordings.json")),
        )
        .json();
        let recs: Vec<Value> = v["recordings"].as_array()?.clone();
        (recs.len() >= n && recs.iter().all(|r| r["status"] == "completed")).then_some(recs)
    })
    .unwrap_or_else(|| panic!("{n} completed recording(s) of {call_sid}"))
}

fn the_only_call_sid(b: &mut Drive) -> String {
    b.eval("document.querySelector('#live-calls tr[data-call-sid]').dataset.callSid")
        .as_str()
        .expect("a live row's call SID")
        .to_string()
}

#[test]
fn signing_in_is_refused_without_the_right_credentials_and_state_changes_need_the_csrf_token() {
    let mut d = Daemon::start(
        &[],
        App::Twiml(r#"<Response><Pause length="30"/></Response>"#.into()),
    );
    let http = Http::new(&d);

    // Wrong credentials: 401, no cookie, and the page says so.
    let wrong = http.sign_in(ACCOUNT_SID, "not-the-token");
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.headers.get("set-cookie").is_none());
    assert!(wrong.json()["error"].as_str().is_some(), "{}", wrong.body);
    assert_eq!(http.sign_in("", "").status, 401);
    // A username cannot forge a log line (it is quoted, newlines escaped).
    let forged = "x\nFORGED console sign-in failed source=10.9.9.9";
    assert_eq!(http.sign_in(forged, "nope").status, 401);
    // Each failure is logged with its source, for fail2ban.
    assert!(
        wait_until(Duration::from_secs(5), || d
            .log()
            .contains("console sign-in failed source=127.0.0.1")
            .then_some(()))
        .is_some(),
        "no fail2ban line in the log"
    );
    assert!(
        !d.log().lines().any(|l| l.starts_with("FORGED")),
        "a forged log line"
    );
    assert!(
        d.log().contains(r#"username="x\nFORGED"#),
        "quoted username"
    );
    // Not JSON: refused before any credential check.
    let form = http.send(
        http.client
            .post(format!("{}/console/api/session", http.base))
            .form(&[("username", ACCOUNT_SID), ("password", AUTH_TOKEN)]),
    );
    assert_eq!(form.status, 415);

    // Right credentials: the cookie is HttpOnly, SameSite=Strict, for the whole site.
    let ok = http.sign_in(ACCOUNT_SID, AUTH_TOKEN);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let set_cookie = ok.headers["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(flag), "{flag} missing: {set_cookie}");
    }
    let cookie = cookie_pair(&set_cookie);
    let session = ok.json();
    let csrf = session["csrf_token"].as_str().unwrap().to_string();
    assert_eq!(session["account_sid"], ACCOUNT_SID);
    assert!(csrf.len() >= 32, "{csrf}");
    assert!(
        !set_cookie.contains(&csrf),
        "the CSRF token is not the cookie"
    );

    // The cookie reads the REST API; without it nothing.
    assert_eq!(http.get(&api_path("Calls.json"), &cookie).status, 200);
    assert_eq!(
        http.get(&api_path("Calls.json"), "hark_console=forged")
            .status,
        401
    );
    assert_eq!(http.get("/console/api/live.json", "").status, 401);

    // A live call: hang-up without the CSRF token (or with another) is 403 and the call stays.
    let sipp = Sipp::new("uac_wait_for_bye.xml", d.sip_addr()).spawn(&d.tmp);
    let sid = wait_until(Duration::from_secs(10), || {
        let v = http.get("/console/api/live.json", &cookie).json();
        v["calls"][0]["sid"].as_str().map(str::to_string)
    })
    .expect("the call is live");
    let hang_up = api_path(&format!("Calls/{sid}.json"));
    for token in [None, Some("wrong-token")] {
        let r = http.with_cookie(
            reqwest::Method::POST,
            &hang_up,
            &cookie,
            token,
            &[("Status", "completed")],
        );
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(
            r.json()["error"].as_str().unwrap().contains("CSRF"),
            "{}",
            r.body
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let live = http.get("/console/api/live.json", &cookie).json();
    assert_eq!(live["calls"][0]["sid"], sid.as_str(), "refused: still up");

    // With the token it hangs up, and SIPp gets Hark's BYE.
    let r = http.with_cookie(
        reqwest::Method::POST,
        &hang_up,
        &cookie,
        Some(&csrf),
        &[("Status", "completed")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    sipp.wait(Duration::from_secs(15)).assert_success();

    // Sign-out needs the token too; afterwards the cookie is worth nothing.
    let out = http.with_cookie(
        reqwest::Method::DELETE,
        "/console/api/session",
        &cookie,
        None,
        &[],
    );
    assert_eq!(out.status, 403);
    let out = http.with_cookie(
        reqwest::Method::DELETE,
        "/console/api/session",
        &cookie,
        Some(&csrf),
        &[],
    );
    assert_eq!(out.status, 204);
    assert!(out.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(http.get(&api_path("Calls.json"), &cookie).status, 401);
    assert_eq!(http.get("/console/api/session", &cookie).status, 401);

    // The page itself: its CSP allows only its own scripts; wrong credentials show an error
    // and no navigation.
    let page = http.get("/console/", "");
    assert_eq!(page.status, 200);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(page.body.contains("<html"), "{}", page.body);

    let mut b = Drive::start(1280, 800);
    b.goto(&console_url(&d));
    b.wait("form#signin-form", "visible", Duration::from_secs(10));
    b.fill("#username", ACCOUNT_SID);
    b.fill("#password", "wrong-token");
    b.click("form#signin-form button[type=submit]");
    let shown = b.wait_for(
        "document.querySelector('#signin-error')?.textContent.trim() || null",
        Duration::from_secs(5),
    );
    assert!(!shown.value.as_str().unwrap().is_empty());
    let nav = b.eval("!!document.querySelector('nav#main-nav') && document.querySelector('nav#main-nav').offsetParent !== null");
    assert_eq!(nav, false, "no navigation without a session");
    b.screenshot(&artifacts().join("signin-refused.png"));
    d.assert_alive();
}

#[test]
fn a_live_call_appears_within_a_second_leaves_after_the_bye_and_the_buttons_act_on_real_calls() {
    let mut d = Daemon::start(
        &[],
        App::Twiml(r#"<Response><Pause length="40"/></Response>"#.into()),
    );
    let http = Http::new(&d);
    let mut b = signed_in(&d, 1280, 800);
    b.wait("#live-calls", "visible", Duration::from_secs(5));
    b.wait_for(
        "document.querySelector('#live-status')?.textContent.trim() === 'connected'",
        Duration::from_secs(5),
    );
    b.screenshot(&artifacts().join("live-empty.png"));

    // 1. The row appears within 1 s of the INVITE (SIPp starts after t0: an upper bound) and
    // leaves once the caller's BYE is answered.
    b.send(serde_json::json!({
        "cmd": "wait", "selector": "#live-calls tr[data-call-sid]", "state": "visible",
        "timeoutMs": 10000,
    }));
    let t0 = now_ms();
    let sipp = Sipp::new("uac_hangup_midstream.xml", d.sip_addr()).spawn(&d.tmp);
    let shown = b.answer().expect("the call's row");
    let latency = shown.at_ms.saturating_sub(t0);
    eprintln!("console: live row {latency} ms after the INVITE was started");
    assert!(latency < 1000, "row after {latency} ms");
    let sid = the_only_call_sid(&mut b);
    assert!(is_sid(&sid, "CA"), "{sid}");
    let row = format!("#live-calls tr[data-call-sid=\"{sid}\"]");
    let text = b.eval(&format!("document.querySelector('{row}').textContent"));
    assert!(
        text.as_str().unwrap().contains("sipp"),
        "caller shown: {text}"
    );
    b.wait_for(
        &format!("document.querySelector('{row}')?.textContent.includes('Pause')"),
        Duration::from_secs(5),
    );
    b.screenshot(&artifacts().join("live-call.png"));
    b.send(serde_json::json!({
        "cmd": "wait", "selector": row, "state": "detached", "timeoutMs": 15000,
    }));
    let out = sipp.wait(Duration::from_secs(20));
    let bye_answered = now_ms();
    out.assert_success();
    let left = b.answer().expect("the row leaves");
    // The BYE leaves SIPp 3 s into the call; the row stays until then.
    assert!(
        left.at_ms >= shown.at_ms + 2500,
        "row left {} ms after it appeared",
        left.at_ms - shown.at_ms
    );
    assert!(
        left.at_ms <= bye_answered + 2000,
        "row still there {} ms after SIPp's BYE was answered",
        left.at_ms.saturating_sub(bye_answered)
    );

    // 2. A call that waits for our BYE: record start/pause/resume/stop from its row, then the
    // hang-up button ends it.
    let sipp = Sipp::new("uac_wait_for_bye.xml", d.sip_addr()).spawn(&d.tmp);
    b.wait(
        "#live-calls tr[data-call-sid]",
        "visible",
        Duration::from_secs(10),
    );
    let sid = the_only_call_sid(&mut b);
    let row = format!("#live-calls tr[data-call-sid=\"{sid}\"]");
    let recording_is = |b: &mut Drive, state: &str| {
        b.wait_for(
            &format!(
                "document.querySelector('{row} td.recording')?.textContent.trim() === '{state}'"
            ),
            Duration::from_secs(5),
        );
    };
    recording_is(&mut b, "off");
    b.click(&format!("{row} button[data-action=record-start]"));
    recording_is(&mut b, "on");
    std::thread::sleep(Duration::from_millis(1500));
    b.click(&format!("{row} button[data-action=record-pause]"));
    recording_is(&mut b, "paused");
    std::thread::sleep(Duration::from_millis(1000));
    b.click(&format!("{row} button[data-action=record-resume]"));
    recording_is(&mut b, "on");
    std::thread::sleep(Duration::from_millis(1500));
    b.click(&format!("{row} button[data-action=record-stop]"));
    recording_is(&mut b, "off");
    b.click(&format!("{row} button[data-action=hangup]"));
    let hung_up = Instant::now();
    sipp.wait(Duration::from_secs(15)).assert_success();
    eprintln!(
        "console: SIPp got Hark's BYE {} ms after the click",
        hung_up.elapsed().as_millis()
    );
    b.wait(&row, "detached", Duration::from_secs(5));
    let call = basic_get(&http, &api_path(&format!("Calls/{sid}.json"))).json();
    assert_eq!(call["status"], "completed", "{call}");
    // The recording the buttons made: ~3 s of the call (1.5 s + 1.5 s; the paused second is
    // silence Twilio-style, or absent when skipped), from the REST API's start.
    let recs = completed_recordings(&http, &sid, 1);
    assert_eq!(recs.len(), 1, "{recs:?}");
    let duration: u64 = recs[0]["duration"].as_str().unwrap().parse().unwrap();
    assert!(
        (2..=6).contains(&duration),
        "recorded {duration} s: {recs:?}"
    );
    d.assert_alive();
}

#[test]
fn the_call_page_plays_the_recording_draws_its_waveform_and_seeks_from_the_transcript() {
    let mut d = Daemon::start(
        &[],
        App::Twiml(
            r#"<Response><Record maxLength="30" playBeep="false" transcribe="true"/><Hangup/></Response>"#
                .into(),
        ),
    );
    let http = Http::new(&d);
    let sipp = Sipp::new("uac_hangup_midstream.xml", d.sip_addr()).spawn(&d.tmp);
    // While `<Record>` captures: the live row says it records, and the API does not pretend
    // to pause a verb's recording (Twilio.CURRENT names none; by SID it is refused).
    let signed = http.sign_in(ACCOUNT_SID, AUTH_TOKEN);
    let cookie = cookie_pair(signed.headers["set-cookie"].to_str().unwrap());
    let call_sid = wait_until(Duration::from_secs(5), || {
        let v = http.get("/console/api/live.json", &cookie).json();
        (v["calls"][0]["recording"] == "on" && v["calls"][0]["verb"] == "Record")
            .then(|| v["calls"][0]["sid"].as_str().unwrap().to_string())
    })
    .expect("a live call recording with <Record>");
    let pause = |path: &str| {
        http.send(
            http.client
                .post(format!("{}{}", http.base, api_path(path)))
                .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
                .form(&[("Status", "paused")]),
        )
    };
    let current = pause(&format!("Calls/{call_sid}/Recordings/Twilio.CURRENT.json"));
    assert_eq!(current.status, 404, "{}", current.body);
    let live = basic_get(
        &http,
        &api_path(&format!("Calls/{call_sid}/Recordings.json")),
    )
    .json();
    let capturing = live["recordings"][0]["sid"].as_str().unwrap().to_string();
    let by_sid = pause(&format!("Calls/{call_sid}/Recordings/{capturing}.json"));
    assert_eq!(by_sid.status, 400, "{}", by_sid.body);
    assert!(by_sid.body.contains("<Record>"), "{}", by_sid.body);
    sipp.wait(Duration::from_secs(30)).assert_success();
    let recs = completed_recordings(&http, &call_sid, 1);
    let rec_sid = recs[0]["sid"].as_str().unwrap().to_string();
    // The samples on disk: what the waveform must be drawn from.
    let wav = d.recording_path(&rec_sid);
    let samples = hound::WavReader::open(&wav).expect("recording").duration();
    let wav_secs = f64::from(samples) / 8000.0;
    // The transcript (offline engine) before opening the page.
    let transcript = wait_until(Duration::from_secs(90), || {
        let v = http
            .get(
                &format!("/console/api/recordings/{rec_sid}/transcript"),
                &cookie,
            )
            .json();
        (v["status"] == "completed" || v["status"] == "failed").then_some(v)
    })
    .expect("transcription finished");
    assert_eq!(transcript["status"], "completed", "{transcript}");
    let utterances = transcript["utterances"].as_array().unwrap().clone();
    assert!(!utterances.is_empty(), "{transcript}");

    let mut b = signed_in(&d, 1280, 900);
    // Calls list, then the call's page from its link.
    b.click("nav#main-nav a[href=\"#/calls\"]");
    b.wait("body[data-page=calls]", "attached", Duration::from_secs(10));
    let row = format!("#calls-table tr[data-call-sid=\"{call_sid}\"]");
    b.wait(&row, "visible", Duration::from_secs(5));
    b.screenshot(&artifacts().join("calls.png"));
    b.click(&format!("{row} a[href=\"#/calls/{call_sid}\"]"));
    b.wait("body[data-page=call]", "attached", Duration::from_secs(10));
    let section = format!("section.recording[data-recording-sid=\"{rec_sid}\"]");
    b.wait(
        &format!("{section}[data-ready=\"1\"]"),
        "attached",
        Duration::from_secs(15),
    );
    let player = format!("window.__console.players['{rec_sid}']");

    // The waveform is the recording's: decoded length equals the WAV's, and its canvas has ink.
    let decoded = b.eval(&format!("{player}.getDuration()"));
    let decoded = decoded.as_f64().expect("duration");
    assert!(
        (decoded - wav_secs).abs() < 0.05,
        "player has {decoded} s, the WAV {wav_secs} s"
    );
    let ink = b.wait_for(
        &format!(
            "(() => {{ let n = 0; for (const c of {player}.getWrapper().querySelectorAll('canvas')) {{
                 if (!c.width || !c.height) continue;
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; }}
               return n > 100 ? n : null; }})()"
        ),
        Duration::from_secs(5),
    );
    eprintln!("console: waveform painted {} pixels", ink.value);
    // Downloads point at the media of this recording.
    let wav_href = b.eval(&format!(
        "document.querySelector('{section} a[data-format=wav]').getAttribute('href')"
    ));
    assert_eq!(
        wav_href.as_str().unwrap(),
        api_path(&format!("Recordings/{rec_sid}.wav"))
    );
    // Utterances as in the transcript API, with their speakers.
    let shown = b.eval("[...document.querySelectorAll('ol.transcript li.utterance button')].map(e => Number(e.dataset.start))");
    let starts: Vec<f64> = utterances
        .iter()
        .map(|u| u["start_sec"].as_f64().unwrap())
        .collect();
    let shown: Vec<f64> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(shown.len(), starts.len(), "{shown:?} vs {starts:?}");
    for (a, e) in shown.iter().zip(&starts) {
        assert!((a - e).abs() < 0.01, "{shown:?} vs {starts:?}");
    }
    let speaker =
        b.eval("document.querySelector('ol.transcript li.utterance .speaker').textContent");
    assert!(speaker.as_str().unwrap().contains("caller"), "{speaker}");
    b.screenshot(&artifacts().join("call.png"));

    // Play: time advances.
    b.click(&format!("{section} button[data-action=play]"));
    let playing = b.wait_for(
        &format!("{player}.getCurrentTime() > 0.3 ? {player}.getCurrentTime() : null"),
        Duration::from_secs(5),
    );
    eprintln!("console: played to {} s", playing.value);
    // Park the player away from the last utterance's start (near the end, or at 0 when the
    // utterance starts near the end), then click it: it seeks there.
    let target = *starts.last().unwrap();
    let park = if target + 0.8 < wav_secs {
        wav_secs - 0.1
    } else {
        0.0
    };
    let parked = b.eval(&format!(
        "{player}.pause(), {player}.setTime({park}), {player}.getCurrentTime()"
    ));
    let parked = parked.as_f64().unwrap();
    assert!(
        !(target - 0.05..target + 0.6).contains(&parked),
        "parked at {parked} s, inside the window of {target} s"
    );
    b.click("ol.transcript li.utterance:last-of-type button");
    let at = b.wait_for(
        &format!("(() => {{ const t = {player}.getCurrentTime(); return t >= {target} - 0.05 && t < {target} + 0.6 ? t : null; }})()"),
        Duration::from_secs(3),
    );
    // While it plays, that utterance is the current one.
    b.wait_for(
        "document.querySelector('ol.transcript li.utterance:last-of-type')?.getAttribute('aria-current') === 'true'",
        Duration::from_secs(3),
    );
    eprintln!(
        "console: utterance at {target} s seeked the player to {} s",
        at.value
    );
    d.assert_alive();
}

#[test]
fn lists_filter_and_page_and_every_page_renders_on_a_phone_sized_screen() {
    let wh = WebhookServer::start();
    wh.route("/status", Reply::empty().status(204));
    let mut d = Daemon::start(
        &[],
        App::Twiml(format!(
            r#"<Response><Record maxLength="30" playBeep="false" recordingStatusCallback="{}"/><Hangup/></Response>"#,
            wh.url("/status")
        )),
    );
    let http = Http::new(&d);
    // Three calls: enough for paging with PageSize tests and filters.
    for _ in 0..3 {
        Sipp::new("uac_hangup_midstream.xml", d.sip_addr())
            .run(&d.tmp, Duration::from_secs(30))
            .assert_success();
    }
    let calls = basic_get(&http, &api_path("Calls.json")).json();
    let all: Vec<String> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(all.len(), 3);
    for sid in &all {
        completed_recordings(&http, sid, 1);
    }

    let mut b = signed_in(&d, 1280, 800);
    b.goto(&format!("{}#/calls?status=busy", console_url(&d)));
    b.wait("body[data-page=calls]", "attached", Duration::from_secs(10));
    let rows = b.eval("document.querySelectorAll('#calls-table tr[data-call-sid]').length");
    assert_eq!(rows, 0, "no busy calls");
    b.goto(&format!("{}#/calls?status=completed", console_url(&d)));
    b.wait_for(
        "document.querySelectorAll('#calls-table tr[data-call-sid]').length === 3",
        Duration::from_secs(5),
    );
    // Newest first, as the REST API lists them.
    let shown = b.eval("[...document.querySelectorAll('#calls-table tr[data-call-sid]')].map(r => r.dataset.callSid)");
    assert_eq!(shown, serde_json::json!(all));

    // Paging: 30 older calls written straight into the daemon's database make 33, two pages
    // of 25; Next shows the rest, Previous the first page again.
    let db = store::Store::open(&d.storage.join("hark.db")).expect("the daemon's database");
    let oldest = (now_ms() - 3_600_000) as i64;
    for i in 0..30u128 {
        let created = oldest + i as i64 * 1000;
        db.insert_call(&store::CallRecord {
            sid: store::CallSid::from_bits(0xc0de_0000 + i),
            account_sid: ACCOUNT_SID.parse().unwrap(),
            from: format!("+1555000{i:04}"),
            to: "+15559990000".into(),
            direction: store::Direction::Inbound,
            status: store::CallStatus::Completed,
            date_created_ms: created,
            date_updated_ms: created,
            start_time_ms: Some(created),
            end_time_ms: Some(created + 5000),
            duration_secs: Some(5),
            parent_call_sid: None,
        })
        .unwrap();
    }
    b.goto(&format!("{}#/calls", console_url(&d)));
    let rows = "document.querySelectorAll('#calls-table tr[data-call-sid]').length";
    b.wait_for(&format!("{rows} === 25"), Duration::from_secs(10));
    assert_eq!(
        b.eval("document.querySelector('#prev-page').disabled"),
        true
    );
    b.click("#next-page");
    b.wait_for(&format!("{rows} === 8"), Duration::from_secs(5));
    let last = b.eval(
        "[...document.querySelectorAll('#calls-table tr[data-call-sid]')].pop().dataset.callSid",
    );
    assert_eq!(
        last,
        store::CallSid::from_bits(0xc0de_0000).to_string(),
        "oldest last"
    );
    assert_eq!(
        b.eval("document.querySelector('#next-page').disabled"),
        true
    );
    b.click("#prev-page");
    b.wait_for(&format!("{rows} === 25"), Duration::from_secs(5));
    let first = b.eval("document.querySelector('#calls-table tr[data-call-sid]').dataset.callSid");
    assert_eq!(first, all[0].as_str());
    // The From filter from the form: exactly that caller's call.
    b.fill("#calls-filter input[name=from]", "+15550000017");
    b.click("#calls-filter button[type=submit]");
    b.wait_for(&format!("{rows} === 1"), Duration::from_secs(5));
    let only = b.eval("document.querySelector('#calls-table tr[data-call-sid]').dataset.callSid");
    assert_eq!(
        only,
        store::CallSid::from_bits(0xc0de_0000 + 17).to_string()
    );
    b.screenshot(&artifacts().join("calls-filtered.png"));

    b.click("nav#main-nav a[href=\"#/recordings\"]");
    b.wait(
        "body[data-page=recordings]",
        "attached",
        Duration::from_secs(10),
    );
    b.wait_for(
        "document.querySelectorAll('#recordings-table tr[data-recording-sid]').length === 3",
        Duration::from_secs(5),
    );
    b.screenshot(&artifacts().join("recordings.png"));

    // Each recording's callback: delivered, its URL, 204, one attempt.
    wh.wait_for("/status", 3, Duration::from_secs(15));
    b.click("nav#main-nav a[href=\"#/webhooks\"]");
    b.wait(
        "body[data-page=webhooks]",
        "attached",
        Duration::from_secs(10),
    );
    b.wait_for(
        "document.querySelectorAll('#webhooks-table tr[data-delivery-id]').length === 3",
        Duration::from_secs(5),
    );
    let rows = b.eval("[...document.querySelectorAll('#webhooks-table tr[data-delivery-id]')].map(r => r.textContent)");
    for row in rows.as_array().unwrap() {
        let row = row.as_str().unwrap();
        for want in [
            wh.url("/status").as_str(),
            "204",
            "delivered",
            "recording completed",
        ] {
            assert!(row.contains(want), "{want} not in {row}");
        }
    }
    b.screenshot(&artifacts().join("webhooks.png"));

    b.click("nav#main-nav a[href=\"#/system\"]");
    b.wait(
        "body[data-page=system]",
        "attached",
        Duration::from_secs(10),
    );
    let version = b.eval("document.querySelector('dd[data-field=version]').textContent.trim()");
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    // Engine readiness: transcription and text to speech each have a row.
    let engines = b.wait_for(
        "(() => { const t = document.querySelector('#readiness')?.textContent || '';
                  return t.includes('transcription') && t.includes('tts') ? t : null; })()",
        Duration::from_secs(5),
    );
    eprintln!("console: readiness {}", engines.value);
    b.screenshot(&artifacts().join("system.png"));

    // Accessibility basics on every page: labelled inputs, named buttons, no page-wide
    // horizontal scroll at 375 px.
    b.viewport(375, 667);
    for (hash, page) in [
        ("#/live", "live"),
        ("#/calls", "calls"),
        ("#/recordings", "recordings"),
        ("#/webhooks", "webhooks"),
        ("#/system", "system"),
        (&*format!("#/calls/{}", all[0]), "call"),
    ] {
        b.goto(&format!("{}{hash}", console_url(&d)));
        b.wait(
            &format!("body[data-page={page}]"),
            "attached",
            Duration::from_secs(10),
        );
        b.wait_for("!document.body.dataset.loading", Duration::from_secs(10));
        if page == "call" {
            // The screenshot shows the waveform, not "Loading audio…".
            b.wait(
                "section.recording[data-ready=\"1\"]",
                "attached",
                Duration::from_secs(15),
            );
        }
        let problems = b.eval(
            "(() => { const p = [];
               for (const i of document.querySelectorAll('input, select, textarea')) {
                 if (i.type === 'hidden') continue;
                 const named = (i.labels && i.labels.length) || i.getAttribute('aria-label') || i.getAttribute('aria-labelledby');
                 if (!named) p.push('unlabelled ' + (i.name || i.id || i.outerHTML.slice(0, 60)));
               }
               for (const e of document.querySelectorAll('button, a[href]')) {
                 const name = (e.getAttribute('aria-label') || e.textContent || e.title || '').trim();
                 if (!name) p.push('unnamed ' + e.outerHTML.slice(0, 80));
               }
               if (document.documentElement.scrollWidth > window.innerWidth + 1) p.push('page scrolls sideways: ' + document.documentElement.scrollWidth);
               return p; })()",
        );
        assert_eq!(problems, serde_json::json!([]), "{hash}");
        b.screenshot(&artifacts().join(format!("phone-{page}.png")));
    }
    d.assert_alive();
}
