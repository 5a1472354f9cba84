//! TwiML verbs and answers over HTTP, driven by an application written with the Twilio Python
//! helper library (tests/twilio_app/app.py): `<Reject>`, `<Redirect>`, `<Play>` of http audio
//! with ETag revalidation, text/plain and audio/* answers, `<Play digits>` as RFC 4733, call
//! progress callbacks and `[[route]]` selection.

mod common;
mod twilio_app;

use common::sip::pcmu_offer;
use common::*;
use serde_json::{json, Value};
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};
use twilio_app::*;

const CALL_LIMIT: Duration = Duration::from_secs(30);

fn silence_wav(d: &Daemon) -> std::path::PathBuf {
    let p = d.tmp.join("silence.wav");
    write_ulaw_wav(&p, &vec![ULAW_SILENCE; 10 * RATE]);
    p
}

/// A daemon fetching `voice_path` from the app, with `[[route]]` TOML appended to its config.
fn daemon(app: &TwilioApp, voice_path: &str, overrides: &[(&str, &str)], routes: &str) -> Daemon {
    let mut d = Daemon::prepare(
        overrides,
        App::VoiceUrl {
            url: app.url(voice_path),
            method: "POST",
        },
    );
    if !routes.is_empty() {
        let mut cfg = std::fs::read_to_string(&d.config_path).expect("read config");
        cfg.push_str(routes);
        std::fs::write(&d.config_path, cfg).expect("write config");
    }
    d.launch();
    d
}

fn route_toml(selector: (&str, &str), keys: &[(&str, &str)]) -> String {
    use common::daemon::toml_string;
    let mut s = format!(
        "\n[[route]]\n{} = {}\n",
        selector.0,
        toml_string(selector.1)
    );
    for (k, v) in keys {
        s.push_str(&format!("{k} = {}\n", toml_string(v)));
    }
    s
}

/// Runs `hark call` to `user` with silence, saving what it heard; returns (output, heard).
fn call(d: &Daemon, user: &str, tag: &str) -> (Output, Vec<i16>) {
    let heard = d.tmp.join(&format!("heard-{tag}.wav"));
    let out = HarkCall::new(&d.uri(user))
        .play(&silence_wav(d))
        .save_received(&heard)
        .run(&d.tmp, CALL_LIMIT);
    let samples = if heard.exists() {
        read_wav_any(&heard)
    } else {
        Vec::new()
    };
    (out, samples)
}

fn assert_ended_by_server(out: &Output, what: &str) {
    out.assert_success();
    assert!(
        out.stdout.contains("ended by the server"),
        "{what}: Hark sends BYE: {}",
        out.stdout
    );
}

/// Seconds of 20 ms frames with speech.
fn speech_secs(s: &[i16]) -> f64 {
    s.chunks(FRAME)
        .filter(|f| f.len() == FRAME && is_speech_frame(f))
        .count() as f64
        * 0.02
}

#[test]
fn reject_busy_is_486_and_rejected_is_603_never_answered() {
    let app = TwilioApp::start(json!({
        "/busy": twiml(json!([["reject", {"reason": "busy"}]])),
        "/rejected": twiml(json!([["reject", {"reason": "rejected"}]])),
        "/status": {"raw": {"status": 204, "content_type": "text/plain", "body": ""}},
    }));
    // Each route is a whole application: it names its own status callback.
    let status = app.url("/status");
    let routes = route_toml(
        ("user", "busy"),
        &[
            ("voice_url", &app.url("/busy")),
            ("status_callback", &status),
        ],
    ) + &route_toml(
        ("user", "rej"),
        &[
            ("voice_url", &app.url("/rejected")),
            ("status_callback", &status),
        ],
    );
    let d = daemon(&app, "/busy", &[], &routes);
    for (user, code) in [("busy", 486u16), ("rej", 603)] {
        let mut uac = RawUac::new(d.sip_addr());
        let fin = uac.invite(user, &pcmu_offer(uac.rtp_port), Duration::from_secs(10));
        assert_eq!(
            fin.status(),
            Some(code),
            "{user}: final response {}",
            fin.first_line
        );
        uac.ack_failure(&fin);
        let codes: Vec<u16> = uac
            .responses("INVITE", uac.cseq)
            .iter()
            .filter_map(|m| m.status())
            .collect();
        assert!(
            codes.iter().all(|&c| c < 200 || c == code),
            "{user}: never answered, only {code} as final: {codes:?}"
        );
        assert!(
            uac.responses("INVITE", uac.cseq)
                .iter()
                .all(|m| m.body.is_empty()),
            "{user}: no SDP (no early media) before the rejection"
        );
    }
    // The call progress of both: two final events, no `answered` one.
    let finals = wait_until(Duration::from_secs(10), || {
        let f: Vec<AppReq> = app
            .requests_to("/status")
            .into_iter()
            .filter(|r| r.opt_param("CallDuration").is_some())
            .collect();
        (f.len() >= 2).then_some(f)
    })
    .unwrap_or_else(|| panic!("two completed events: {}", app.summary()));
    std::thread::sleep(Duration::from_millis(500));
    let statuses: Vec<String> = app
        .requests_to("/status")
        .iter()
        .map(|r| r.param("CallStatus"))
        .collect();
    assert!(
        !statuses.iter().any(|s| s == "in-progress"),
        "a rejected call is never answered: {statuses:?}"
    );
    for f in &finals {
        assert_eq!(f.param("CallDuration"), "0", "never answered: {:?}", f.form);
        assert_ne!(
            f.param("CallStatus"),
            "completed",
            "a rejection is not a completed call"
        );
    }
    app.assert_all_valid(&[]);
}

#[test]
fn redirect_to_relative_url_then_hangup() {
    let app = TwilioApp::start(json!({
        "/app/voice": twiml(json!([["redirect", {"url": "next?step=2"}], ["say", {"message": "not reached"}]])),
        "/app/next": twiml(json!([["say", {"message": "redirected"}], ["hangup"]])),
    }));
    let d = daemon(&app, "/app/voice", &[], "");
    let (out, heard) = call(&d, "redir", "redir");
    assert_ended_by_server(&out, "redirect");
    let voice = app
        .wait_for("/app/voice", 1, Duration::from_secs(5))
        .remove(0);
    let next = app.wait_for("/app/next", 1, Duration::from_secs(5));
    assert_eq!(next.len(), 1, "one redirect: {}", app.summary());
    let next = &next[0];
    assert_eq!(next.method, "POST", "<Redirect> defaults to POST");
    assert_eq!(
        next.query, "step=2",
        "the relative URL resolves against /app/voice"
    );
    assert_eq!(next.param("CallSid"), voice.param("CallSid"));
    let said = speech_secs(&heard);
    assert!(
        (0.3..2.0).contains(&said),
        "only /app/next's short <Say> is heard: {said:.2} s; profile {}",
        profile(&heard)
    );
    app.assert_all_valid(&[]);
}

/// An MP3 of `freq` Hz made with `lame`, or None when lame is not installed.
fn make_mp3(dir: &Path, freq: f64) -> Option<std::path::PathBuf> {
    let wav = dir.join("tone16k.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&wav, spec).expect("create wav");
    for i in 0..16000 {
        let v = 12000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 16000.0).sin();
        w.write_sample(v as i16).expect("sample");
    }
    w.finalize().expect("finalize");
    let mp3 = dir.join("tone.mp3");
    let ok = std::process::Command::new("lame")
        .args(["--quiet", "-b", "64"])
        .arg(&wav)
        .arg(&mp3)
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(mp3)
}

/// First and last 20 ms frame (in seconds) dominated by `freq`, and how many there are.
fn tone_span(s: &[i16], freq: f64) -> (f64, f64, usize) {
    let hits: Vec<usize> = s
        .chunks(FRAME)
        .enumerate()
        .filter(|(_, f)| f.len() == FRAME && dbfs(rms(f)) > -30.0 && tone_share(f, freq) > 0.4)
        .map(|(i, _)| i)
        .collect();
    match (hits.first(), hits.last()) {
        (Some(&a), Some(&b)) => (a as f64 * 0.02, (b + 1) as f64 * 0.02, hits.len()),
        _ => (0.0, 0.0, 0),
    }
}

#[test]
fn play_http_wav_and_mp3_cached_and_revalidated_with_etag() {
    let app = TwilioApp::start(json!({}));
    let mp3 = make_mp3(&app.tmp.path, 660.0);
    if mp3.is_none() {
        eprintln!("NOTE: lame is not installed; the MP3 half of this test is skipped");
    }
    let mut routes = json!({
        "/media/tone.wav": {"media": {"wav": {"rate": 16000, "freq": 440, "secs": 1.0}, "content_type": "audio/wav"}},
    });
    let mut verbs = vec![json!(["play", {"url": "/media/tone.wav"}])];
    if let Some(p) = &mp3 {
        routes["/media/tone.mp3"] =
            json!({"media": {"file": p.display().to_string(), "content_type": "audio/mpeg"}});
        verbs.push(json!(["pause", {"length": 1}]));
        verbs.push(json!(["play", {"url": "/media/tone.mp3"}]));
    }
    verbs.push(json!(["hangup"]));
    routes["/voice"] = twiml(Value::Array(verbs));
    app.set_routes(routes);
    let d = daemon(&app, "/voice", &[], "");

    for round in 0..2 {
        let (out, heard) = call(&d, "play", &format!("play{round}"));
        assert_ended_by_server(&out, "play");
        let p = profile(&heard);
        let (a, b, n) = tone_span(&heard, 440.0);
        assert!(
            (45..=51).contains(&n) && b - a < 1.1,
            "call {round}: the 1 s 440 Hz WAV (16 kHz) is heard: {n} frames in {a:.2}..{b:.2} s; \
             profile {p}"
        );
        if mp3.is_some() {
            let (c, e, m) = tone_span(&heard, 660.0);
            assert!(
                (44..=53).contains(&m) && c > b + 0.8 && e - c < 1.2,
                "call {round}: the 1 s 660 Hz MP3 follows the 1 s pause: {m} frames in \
                 {c:.2}..{e:.2} s (WAV ended {b:.2}); profile {p}"
            );
        }
    }

    let mut media = vec!["/media/tone.wav"];
    if mp3.is_some() {
        media.push("/media/tone.mp3");
    }
    for path in &media {
        let reqs = app.requests_to(path);
        assert_eq!(
            reqs.len(),
            2,
            "{path}: fetched once per call: {}",
            app.summary()
        );
        assert_eq!(reqs[0].method, "GET");
        assert_eq!(reqs[0].status, 200, "{path}: first fetch");
        assert_eq!(
            reqs[0].header("if-none-match"),
            None,
            "{path}: first fetch is plain"
        );
        assert_eq!(reqs[1].method, "GET");
        let inm = reqs[1].header("if-none-match");
        assert!(
            inm.is_some_and(|v| v.starts_with('"')),
            "{path}: the second call revalidates with If-None-Match: {:?}",
            reqs[1].headers
        );
        assert_eq!(
            reqs[1].status, 304,
            "{path}: unchanged → 304, decoded samples reused"
        );
    }
    app.assert_all_valid(&media);
}

#[test]
fn text_plain_answer_is_spoken_then_bye() {
    let app = TwilioApp::start(json!({
        "/voice": raw(200, "text/plain", "Thank you for calling. Goodbye."),
    }));
    let d = daemon(&app, "/voice", &[], "");
    let (out, heard) = call(&d, "text", "text");
    assert_ended_by_server(&out, "text/plain");
    let said = speech_secs(&heard);
    assert!(
        said > 1.0,
        "the text is spoken: {said:.2} s of speech; profile {}",
        profile(&heard)
    );
    assert!(
        heard.len() < 6 * RATE,
        "then BYE, no more: heard {:.2} s",
        secs(heard.len())
    );
    app.assert_all_valid(&[]);
}

#[test]
fn audio_wav_answer_is_played_then_bye() {
    let app = TwilioApp::start(json!({
        "/voice": {"media": {"wav": {"rate": 16000, "freq": 440, "secs": 1.0}, "content_type": "audio/wav"}},
    }));
    let d = daemon(&app, "/voice", &[], "");
    let (out, heard) = call(&d, "audio", "audio");
    assert_ended_by_server(&out, "audio/wav");
    let (a, b, n) = tone_span(&heard, 440.0);
    assert!(
        (45..=51).contains(&n),
        "the 1 s tone is played: {n} frames in {a:.2}..{b:.2} s; profile {}",
        profile(&heard)
    );
    assert!(
        heard.len() < 2 * RATE,
        "then BYE: heard {:.2} s",
        secs(heard.len())
    );
    let reqs = app.requests_to("/voice");
    assert!(
        reqs.first()
            .is_some_and(|r| r.method == "POST" && r.valid && r.opt_param("CallSid").is_some()),
        "the voice URL is fetched as a signed POST first: {}",
        app.summary()
    );
}

/// An RTP packet's (payload type, marker, timestamp, payload), honouring CSRCs and extensions.
fn parse_rtp(b: &[u8]) -> Option<(u8, bool, u32, &[u8])> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let cc = (b[0] & 0x0f) as usize;
    let mut off = 12 + 4 * cc;
    if b[0] & 0x10 != 0 {
        let len = u16::from_be_bytes([*b.get(off + 2)?, *b.get(off + 3)?]) as usize;
        off += 4 + 4 * len;
    }
    let ts = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    Some((b[1] & 0x7f, b[1] & 0x80 != 0, ts, b.get(off..)?))
}

#[test]
fn play_digits_sends_rfc4733_events() {
    let app = TwilioApp::start(json!({
        "/voice": twiml(json!([["play", {"digits": "1w2"}], ["hangup"]])),
    }));
    let d = daemon(&app, "/voice", &[], "");
    let mut uac = RawUac::new(d.sip_addr());
    let ok = uac.invite("digits", &pcmu_offer(uac.rtp_port), Duration::from_secs(10));
    assert_eq!(ok.status(), Some(200), "{}", ok.first_line);
    uac.ack();
    let te_pt = 101u8;
    // Collect until Hark's BYE (after <Hangup/>) and a little more.
    let rtp: &UdpSocket = &uac.rtp;
    rtp.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let mut events: Vec<(u8, bool, u32, u8, bool, u16)> = Vec::new(); // (pt, marker, ts, event, end, duration)
    let mut audio_packets = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut bye_seen: Option<Instant> = None;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        if bye_seen.is_none() && uac.messages().iter().any(|m| m.method() == Some("BYE")) {
            bye_seen = Some(Instant::now());
        }
        if bye_seen.is_some_and(|t| t.elapsed() > Duration::from_millis(300)) {
            break;
        }
        if let Ok((n, _)) = rtp.recv_from(&mut buf) {
            if let Some((pt, marker, ts, payload)) = parse_rtp(&buf[..n]) {
                if pt == te_pt && payload.len() >= 4 {
                    let duration = u16::from_be_bytes([payload[2], payload[3]]);
                    events.push((pt, marker, ts, payload[0], payload[1] & 0x80 != 0, duration));
                } else if pt == 0 {
                    audio_packets += 1;
                }
            }
        }
    }
    assert!(bye_seen.is_some(), "Hark hangs up after <Play digits>");
    let keys: Vec<u8> = {
        let mut k: Vec<u8> = events.iter().map(|e| e.3).collect();
        k.dedup();
        k
    };
    assert_eq!(keys, vec![1, 2], "events for 1 then 2: {events:?}");
    for key in [1u8, 2] {
        let ev: Vec<_> = events.iter().filter(|e| e.3 == key).collect();
        let ts = ev[0].2;
        assert!(
            ev.iter().all(|e| e.2 == ts),
            "key {key}: one timestamp per event: {ev:?}"
        );
        assert!(
            ev[0].1,
            "key {key}: the first packet has the marker bit: {ev:?}"
        );
        assert!(
            ev.iter().filter(|e| e.4).count() >= 1,
            "key {key}: end packets: {ev:?}"
        );
        let durs: Vec<u16> = ev.iter().map(|e| e.5).collect();
        assert!(
            durs.windows(2).all(|w| w[0] <= w[1]),
            "key {key}: duration grows: {durs:?}"
        );
    }
    let ts1 = events.iter().find(|e| e.3 == 1).map(|e| e.2).unwrap_or(0);
    let ts2 = events.iter().find(|e| e.3 == 2).map(|e| e.2).unwrap_or(0);
    let gap = ts2.wrapping_sub(ts1);
    assert!(
        (4000..12000).contains(&gap),
        "'w' waits 0.5 s between the keys: {gap} timestamp units (audio packets: {audio_packets})"
    );
    app.assert_all_valid(&[]);
}

#[test]
fn status_callback_initiated_ringing_answered_completed() {
    let app = TwilioApp::start(json!({
        "/voice": twiml(json!([["say", {"message": "hello"}], ["hangup"]])),
        "/status": {"raw": {"status": 204, "content_type": "text/plain", "body": ""}},
    }));
    let d = daemon(
        &app,
        "/voice",
        &[("app.status_callback", &app.url("/status"))],
        "",
    );
    let (out, _) = call(&d, "progress", "progress");
    assert_ended_by_server(&out, "status callbacks");
    let mut st = app.wait_for("/status", 4, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(app.requests_to("/status").len(), 4, "{}", app.summary());
    st.sort_by_key(|r| r.param("SequenceNumber").parse::<u32>().unwrap_or(99));
    let seq: Vec<String> = st.iter().map(|r| r.param("SequenceNumber")).collect();
    assert_eq!(seq, ["0", "1", "2", "3"]);
    let statuses: Vec<String> = st.iter().map(|r| r.param("CallStatus")).collect();
    assert_eq!(
        statuses,
        ["initiated", "ringing", "in-progress", "completed"]
    );
    let voice = app.requests_to("/voice").remove(0);
    for r in &st {
        assert_eq!(r.method, "POST");
        assert_eq!(r.param("CallbackSource"), "call-progress-events");
        assert_eq!(r.param("CallSid"), voice.param("CallSid"));
        assert!(
            is_rfc2822(&r.param("Timestamp")),
            "Timestamp {}",
            r.param("Timestamp")
        );
    }
    assert!(st[..3]
        .iter()
        .all(|r| r.opt_param("CallDuration").is_none()));
    let dur: u64 = st[3].param("CallDuration").parse().expect("CallDuration");
    assert!(dur <= 3, "CallDuration {dur} for a one-word call");
    app.assert_all_valid(&[]);
}

#[test]
fn routes_by_user_and_by_number_else_default() {
    let app = TwilioApp::start(json!({
        "/default": twiml(json!([["hangup"]])),
        "/number": twiml(json!([["hangup"]])),
    }));
    // The sales route has a static document: <Reject> makes it visible to the caller.
    let routes = route_toml(
        ("user", "sales"),
        &[("twiml", r#"<Response><Reject reason="busy"/></Response>"#)],
    ) + &route_toml(
        ("number", "+1 (555) 123-4567"),
        &[("voice_url", &app.url("/number"))],
    );
    let d = daemon(&app, "/default", &[], &routes);

    let out = HarkCall::new(&d.uri("sales"))
        .play(&silence_wav(&d))
        .run(&d.tmp, CALL_LIMIT);
    assert!(
        !out.success() && out.stderr.contains("call rejected: 486"),
        "sip:sales@ runs the sales route's twiml (<Reject reason=busy>): {} {}",
        out.stdout,
        out.stderr
    );
    assert!(
        app.requests().is_empty(),
        "the sales route fetches nothing: {}",
        app.summary()
    );

    for (user, n) in [("+15551234567", 1), ("15551234567", 2)] {
        let out = HarkCall::new(&d.uri(user))
            .play(&silence_wav(&d))
            .run(&d.tmp, CALL_LIMIT);
        out.assert_success();
        let reqs = app.wait_for("/number", n, Duration::from_secs(5));
        assert_eq!(
            reqs.len(),
            n,
            "sip:{user}@ matches the number route by digits"
        );
    }
    for user in ["support", "+15550000000"] {
        let out = HarkCall::new(&d.uri(user))
            .play(&silence_wav(&d))
            .run(&d.tmp, CALL_LIMIT);
        out.assert_success();
    }
    let def = app.wait_for("/default", 2, Duration::from_secs(5));
    assert_eq!(
        def.len(),
        2,
        "other users and numbers go to [app]: {}",
        app.summary()
    );
    assert_eq!(app.requests_to("/number").len(), 2);
    assert_eq!(
        def[0].param("To"),
        "sip:support@127.0.0.1:".to_string() + &d.sip_port.to_string()
    );
    app.assert_all_valid(&[]);
}
