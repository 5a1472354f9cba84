//! Issue 13: `<Dial>` bridges a caller (`hark call`, real SIP and RTP) to a dialled party (a
//! SIPp phone) and records the conversation. Each side speaks its own sentence; the
//! dual-channel WAV must hold the caller's sentence on channel 1 and the agent's on channel 2,
//! sample for sample, and the caller must hear the agent through the bridge.

mod common;
mod twilio_app;
mod twilio_client;

use common::procs::sipp_messages;
use common::*;
use std::path::PathBuf;
use std::time::Duration;

const BOB_PASSWORD: &str = "s3cret-bob";

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The agent's sentence as SIPp plays it (pcap/agent_pcmu.pcap is this file's µ-law bytes).
fn agent_samples() -> Vec<i16> {
    decode_all(&read_ulaw_wav(&data("agent_8k_ulaw.wav")))
}

/// The two channels of a dual recording.
fn read_dual(path: &std::path::Path) -> (Vec<i16>, Vec<i16>) {
    let r = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("hound cannot open {}: {e}", path.display()));
    let spec = r.spec();
    assert_eq!(spec.channels, 2, "dual-channel recording");
    assert_eq!(spec.sample_rate, 8000);
    let s: Vec<i16> = r
        .into_samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    (
        s.iter().step_by(2).copied().collect(),
        s.iter().skip(1).step_by(2).copied().collect(),
    )
}

/// The part of `s` above -40 dBFS, which must be an exact copy of a stretch of `sent`.
fn assert_holds(what: &str, s: &[i16], sent: &[i16]) -> usize {
    let (a, b) = speech_span(s, -40.0).unwrap_or_else(|| panic!("{what}: no speech"));
    let part = &s[a..b];
    assert!(
        part.len() > 8000,
        "{what}: only {} samples of speech",
        part.len()
    );
    let off = find_segment(part, sent).unwrap_or_else(|e| panic!("{what}: {e}"));
    part.len() + off
}

/// A script of the official helper library against `d`'s REST API, with `extra` arguments.
fn helper_script(d: &Daemon, script: &str, extra: &[&str]) -> Output {
    let base = d.public_url();
    let mut args: Vec<String> = [
        "--base-url",
        base.as_str(),
        "--account-sid",
        ACCOUNT_SID,
        "--auth-token",
        AUTH_TOKEN,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    twilio_client::run_script(script, &args, &d.tmp, Duration::from_secs(60))
}

/// The phone's SIPp run passed (its scenario saw every message it waits for).
fn phone_done(phone: common::procs::Running) {
    let out = phone.wait(Duration::from_secs(20));
    assert!(out.success(), "the phone's SIPp: {}", out.stderr);
}

/// A SIPp phone that answers as `scenario` on its own ports.
fn agent(scenario: &str, d: &Daemon) -> (Sipp, TempDir) {
    let dir = TempDir::new(scenario);
    (Sipp::new(scenario, d.sip_addr()), dir)
}

#[test]
fn a_registered_phone_is_dialled_as_client_and_the_conversation_is_recorded_dual() {
    let wh = WebhookServer::start();
    wh.route("/dialed", Reply::twiml("<Response><Hangup/></Response>"));
    wh.route("/rec", Reply::empty());
    wh.route("/child", Reply::empty());
    let mut d = Daemon::prepare(
        &[],
        App::Twiml(format!(
            r#"<Response><Dial action="{}" record="record-from-answer-dual" recordingStatusCallback="{}" timeout="20"><Client statusCallback="{}" statusCallbackEvent="initiated ringing answered completed">bob</Client></Dial></Response>"#,
            wh.url("/dialed"),
            wh.url("/rec"),
            wh.url("/child"),
        )),
    );
    d.append_config(&format!(
        "\n[[user]]\nusername = \"bob\"\npassword = \"{BOB_PASSWORD}\"\n"
    ));
    d.launch();
    // Bob's phone: its answering side listens, then it registers that contact.
    let (uas, uas_dir) = agent("uas_agent.xml", &d);
    let uas_port = uas.sip_port;
    let phone = uas.spawn(&uas_dir);
    let reg_dir = TempDir::new("register-bob");
    Sipp::new("uac_register_contact.xml", d.sip_addr())
        .arg("-s")
        .arg("bob")
        .arg("-au")
        .arg("bob")
        .arg("-ap")
        .arg(BOB_PASSWORD)
        .arg("-key")
        .arg("contact_port")
        .arg(&uas_port.to_string())
        .run(&reg_dir, Duration::from_secs(20))
        .assert_success();

    let caller_wav = data("speech_8k_ulaw.wav");
    let heard = d.tmp.join("heard.wav");
    HarkCall::new(&d.uri("support"))
        .play(&caller_wav)
        .hangup_after(7.0)
        .save_received(&heard)
        .run(&d.tmp, Duration::from_secs(30))
        .assert_success();
    phone_done(phone);

    let action = wh.wait_for("/dialed", 1, Duration::from_secs(10))[0].clone();
    assert_eq!(action.param("DialCallStatus"), "completed");
    assert_eq!(action.param("DialBridged"), "true");
    assert!(is_sid(action.param("DialCallSid"), "CA"));
    assert_ne!(action.param("DialCallSid"), action.param("CallSid"));
    let bridged: u32 = action.param("DialCallDuration").parse().expect("duration");
    assert!((5..=7).contains(&bridged), "bridged {bridged} s");

    let status = wh.wait_for("/rec", 1, Duration::from_secs(10))[0].clone();
    assert_eq!(status.param("RecordingChannels"), "2");
    assert_eq!(status.param("RecordingSource"), "DialVerb");
    assert_eq!(status.param("RecordingStatus"), "completed");
    let sid = status.param("RecordingSid");
    assert_eq!(action.param("RecordingSid"), sid);

    let (caller, callee) = read_dual(&d.recording_path(sid));
    let secs_recorded = caller.len() as f64 / 8000.0;
    assert!(
        (5.0..=7.5).contains(&secs_recorded),
        "recorded {secs_recorded} s"
    );
    let caller_sent = decode_all(&read_ulaw_wav(&caller_wav));
    let agent_sent = agent_samples();
    assert_holds("channel 1 (the caller)", &caller, &caller_sent);
    let agent_end = assert_holds("channel 2 (the agent)", &callee, &agent_sent);
    assert!(
        agent_end > agent_sent.len() - 8000,
        "the agent's sentence is there to its last second (ends at {agent_end})"
    );
    // Neither sentence leaks into the other channel.
    assert!(find_segment(&callee[8000..16000], &caller_sent).is_err());

    // The caller heard the agent through the bridge: one second of the agent's sentence,
    // sample for sample (G.711 to PCM and back is exact).
    let heard = read_wav_any(&heard);
    let (a, _) = speech_span(&callee, -40.0).expect("agent speech");
    find_segment(&callee[a + 8000..a + 16000], &heard)
        .unwrap_or_else(|e| panic!("the caller did not hear the agent: {e}"));
    // The dialled leg is a child call: its progress went to the noun's statusCallback, and
    // the official helper library lists it under the parent.
    let child = action.param("DialCallSid");
    let progress = wh.wait_for("/child", 4, Duration::from_secs(5));
    let statuses: Vec<&str> = progress.iter().map(|r| r.param("CallStatus")).collect();
    assert_eq!(
        statuses,
        ["initiated", "ringing", "in-progress", "completed"]
    );
    for r in &progress {
        assert_eq!(r.param("CallSid"), child);
        assert_eq!(r.param("ParentCallSid"), action.param("CallSid"));
        assert_eq!(r.param("Direction"), "outbound-dial");
        assert_eq!(r.param("To"), "client:bob");
    }
    let run = helper_script(&d, "child_calls.py", &["--parent", action.param("CallSid")]);
    run.assert_success();
    let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("report");
    let children = report["children"].as_array().expect("children");
    assert_eq!(children.len(), 1, "{report}");
    assert_eq!(children[0]["sid"], child);
    assert_eq!(children[0]["parent_call_sid"], action.param("CallSid"));
    assert_eq!(children[0]["direction"], "outbound-dial");
    assert_eq!(children[0]["status"], "completed");
    assert_eq!(children[0]["to"], "client:bob");
    assert!(report["parent"]["parent_call_sid"].is_null());
    wh.assert_signatures_ok();
    d.assert_alive();
}

#[test]
fn a_sip_uri_that_hangs_up_returns_the_caller_to_the_next_verb_mixed_recording() {
    let wh = WebhookServer::start();
    wh.route("/rec", Reply::empty());
    wh.route("/after", Reply::empty());
    let (uas, uas_dir) = {
        let dir = TempDir::new("agent-hangs-up");
        (
            Sipp::new("uas_agent_hangs_up.xml", "127.0.0.1:9".parse().unwrap()),
            dir,
        )
    };
    let target = format!("sip:agent@127.0.0.1:{}", uas.sip_port);
    let mut d = Daemon::start(
        &[],
        App::Twiml(format!(
            r#"<Response><Dial record="record-from-answer" recordingStatusCallback="{}"><Sip>{target}</Sip></Dial><Redirect>{}</Redirect></Response>"#,
            wh.url("/rec"),
            wh.url("/after"),
        )),
    );
    let phone = uas.spawn(&uas_dir);
    let caller_wav = data("speech_8k_ulaw.wav");
    HarkCall::new(&d.uri("support"))
        .play(&caller_wav)
        .hangup_after(15.0)
        .run(&d.tmp, Duration::from_secs(30))
        .assert_success();
    phone_done(phone);
    // The agent's BYE ended only the bridge: the caller went on to the next verb.
    let after = wh.wait_for("/after", 1, Duration::from_secs(10))[0].clone();
    assert_eq!(after.param("CallStatus"), "in-progress");
    let status = wh.wait_for("/rec", 1, Duration::from_secs(10))[0].clone();
    assert_eq!(status.param("RecordingChannels"), "1");
    let secs: u32 = status.param("RecordingDuration").parse().expect("duration");
    assert!((6..=8).contains(&secs), "7 s bridge recorded as {secs} s");
    let mixed = read_recording(&d.recording_path(status.param("RecordingSid")));
    // Both voices are in the one channel: the mix is loud where either speaks.
    assert!(rms(&mixed) > 300.0, "mixed recording level {}", rms(&mixed));
    d.assert_alive();
}

#[test]
fn busy_and_no_answer_reach_the_action() {
    for (scenario, want, timeout) in [
        ("uas_busy.xml", "busy", 10),
        ("uas_ring_noanswer.xml", "no-answer", 5),
    ] {
        let wh = WebhookServer::start();
        wh.route("/dialed", Reply::twiml("<Response><Hangup/></Response>"));
        let dir = TempDir::new(scenario);
        let uas = Sipp::new(scenario, "127.0.0.1:9".parse().unwrap());
        let target = format!("sip:agent@127.0.0.1:{}", uas.sip_port);
        let mut d = Daemon::start(
            &[],
            App::Twiml(format!(
                r#"<Response><Dial action="{}" timeout="{timeout}"><Sip>{target}</Sip></Dial></Response>"#,
                wh.url("/dialed"),
            )),
        );
        let phone = uas.spawn(&dir);
        let started = std::time::Instant::now();
        HarkCall::new(&d.uri("support"))
            .play(&data("speech_8k_ulaw.wav"))
            .hangup_after(20.0)
            .run(&d.tmp, Duration::from_secs(30))
            .assert_success();
        let action = wh.wait_for("/dialed", 1, Duration::from_secs(5))[0].clone();
        assert_eq!(action.param("DialCallStatus"), want, "{scenario}");
        assert_eq!(action.param("DialBridged"), "false");
        if want == "no-answer" {
            let waited = action.at.duration_since(started);
            assert!(
                waited >= Duration::from_secs(5) && waited < Duration::from_secs(8),
                "no-answer after the 5 s timeout, not {waited:?}"
            );
        }
        // The phone's scenario only passes if it got the ACK (busy) or the CANCEL (no answer).
        let out = phone.wait(Duration::from_secs(15));
        assert!(out.success(), "{scenario}: {}", out.stderr);
        d.assert_alive();
    }
}

/// Two nouns ring at once: the phone that answers takes the call, the one still ringing gets
/// CANCEL; `<Number>` goes through the `[[trunk]]` with its dial prefix.
#[test]
fn simultaneous_ring_first_answer_wins_and_numbers_go_through_the_trunk() {
    let wh = WebhookServer::start();
    wh.route("/dialed", Reply::twiml("<Response><Hangup/></Response>"));
    let ring_dir = TempDir::new("ringing");
    let ringing = Sipp::new("uas_ring_noanswer.xml", "127.0.0.1:9".parse().unwrap());
    let ring_target = format!("sip:desk@127.0.0.1:{}", ringing.sip_port);
    let trunk_dir = TempDir::new("trunk");
    let trunk = Sipp::new("uas_agent.xml", "127.0.0.1:9".parse().unwrap());
    let mut d = Daemon::prepare(
        &[],
        App::Twiml(format!(
            r#"<Response><Dial action="{}" timeout="15"><Sip>{ring_target}</Sip><Number>+15550123</Number></Dial></Response>"#,
            wh.url("/dialed"),
        )),
    );
    d.append_config(&format!(
        "\n[[trunk]]\nname = \"pstn\"\naddress = \"127.0.0.1:{}\"\nprefixes = [\"+1\"]\nstrip_plus = true\ndial_prefix = \"9\"\n",
        trunk.sip_port
    ));
    d.launch();
    let ringing = ringing.spawn(&ring_dir);
    let trunk = trunk.spawn(&trunk_dir);
    HarkCall::new(&d.uri("support"))
        .play(&data("speech_8k_ulaw.wav"))
        .hangup_after(4.0)
        .run(&d.tmp, Duration::from_secs(30))
        .assert_success();
    let action = wh.wait_for("/dialed", 1, Duration::from_secs(10))[0].clone();
    assert_eq!(action.param("DialCallStatus"), "completed");
    assert_eq!(action.param("DialBridged"), "true");
    let out = ringing.wait(Duration::from_secs(15));
    assert!(
        out.success(),
        "the ringing phone got CANCEL: {}",
        out.stderr
    );
    let out = trunk.wait(Duration::from_secs(15));
    assert!(out.success(), "the trunk: {}", out.stderr);
    let msgs = sipp_messages(&trunk_dir, "uas_agent.xml");
    assert!(
        msgs.contains("INVITE sip:915550123@127.0.0.1:"),
        "the trunk's Request-URI: {msgs}"
    );
    d.assert_alive();
}

/// Recording control on a live call, with the official helper library: start (dual), pause,
/// resume through `Twilio.CURRENT`, stop. With `skip` the paused two seconds are left out; with
/// `silence` they are two seconds of silence. Around them, the caller's sentence, exactly.
#[test]
fn live_call_recording_pause_resume_stop_with_twilio_python() {
    for behavior in ["skip", "silence"] {
        let wh = WebhookServer::start();
        wh.route(
            "/voice",
            Reply::twiml(r#"<Response><Pause length="20"/></Response>"#),
        );
        wh.route("/rec", Reply::empty());
        let mut d = Daemon::start(
            &[],
            App::VoiceUrl {
                url: wh.url("/voice"),
                method: "POST",
            },
        );
        let caller_wav = data("speech_8k_ulaw.wav");
        let caller = HarkCall::new(&d.uri("support"))
            .play(&caller_wav)
            .hangup_after(9.0)
            .spawn(&d.tmp);
        let voice = wh.wait_for("/voice", 1, Duration::from_secs(10))[0].clone();
        let call_sid = voice.param("CallSid").to_string();
        std::thread::sleep(Duration::from_millis(500));
        let run = helper_script(
            &d,
            "live_recording.py",
            &[
                "--call",
                &call_sid,
                "--pause-behavior",
                behavior,
                "--callback",
                &wh.url("/rec"),
            ],
        );
        run.assert_success();
        let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("report");
        let steps = report["steps"].as_array().expect("steps");
        let statuses: Vec<&str> = steps
            .iter()
            .map(|s| s["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            ["in-progress", "paused", "in-progress", "stopped"],
            "{report}"
        );
        assert_eq!(steps[0]["source"], "StartCallRecordingAPI");
        assert_eq!(steps[0]["channels"], 2);
        assert_eq!(report["final"]["status"], "completed", "{report}");
        let out = caller.wait(Duration::from_secs(20));
        assert!(out.success(), "{}", out.stderr);

        let sid = steps[0]["sid"].as_str().unwrap();
        let callbacks = wh.wait_for("/rec", 2, Duration::from_secs(5));
        assert_eq!(callbacks[1].param("RecordingStatus"), "completed");
        assert_eq!(
            callbacks[1].param("RecordingSource"),
            "StartCallRecordingAPI"
        );
        let (caller_ch, other) = read_dual(&d.recording_path(sid));
        assert!(
            other.iter().all(|&v| v == 0),
            "nobody bridged: channel 2 silent"
        );
        let sent = decode_all(&read_ulaw_wav(&caller_wav));
        // Wall times from the script: the pause lasted from its answer to the resume's.
        let at = |i: usize| steps[i]["at"].as_f64().unwrap();
        let paused = at(2) - at(1);
        let recorded = at(3) - at(0);
        let secs = caller_ch.len() as f64 / 8000.0;
        // The longest run of exact zeros: the pause (silence) or nothing (skip).
        let (mut run, mut longest, mut longest_end) = (0usize, 0usize, 0usize);
        for (i, &v) in caller_ch.iter().enumerate() {
            run = if v == 0 { run + 1 } else { 0 };
            if run > longest {
                longest = run;
                longest_end = i + 1;
            }
        }
        let gap = longest as f64 / 8000.0;
        if behavior == "skip" {
            assert!(
                (secs - (recorded - paused)).abs() < 0.4,
                "skip: {secs:.2} s recorded of {recorded:.2} s with {paused:.2} s paused"
            );
            assert!(gap < 0.2, "skip leaves no silence ({gap:.2} s)");
            // The speech before and after the cut, each exact; the source jumps by the pause.
            let cut = (at(1) - at(0)) * 8000.0;
            // (The frame under way when the recording started may be cut: skip 40 ms.)
            let before = &caller_ch[320..(cut as usize).saturating_sub(1600)];
            let after = &caller_ch[(cut as usize + 1600).min(caller_ch.len())..];
            let a = find_segment(before, &sent).expect("speech before the pause");
            let b = find_segment(after, &sent).expect("speech after the pause");
            let jump = (b as f64 - (a - 320 + before.len() + 320 + 3200) as f64) / 8000.0;
            assert!(
                (jump - paused).abs() < 0.4,
                "the source jumps {jump:.2} s over a {paused:.2} s pause"
            );
        } else {
            assert!(
                (secs - recorded).abs() < 0.4,
                "silence: {secs:.2} s recorded over {recorded:.2} s"
            );
            assert!(
                (gap - paused).abs() < 0.4,
                "silence of {gap:.2} s for a {paused:.2} s pause"
            );
            let before = &caller_ch[..longest_end - longest];
            let after = &caller_ch[longest_end..];
            find_segment(&before[before.len().saturating_sub(8000)..], &sent).expect("before");
            find_segment(&after[..after.len().min(8000)], &sent).expect("after");
        }
        d.assert_alive();
    }
}

/// Each channel of the conversation is transcribed on its own and the utterances are merged in
/// time order by speaker: the agent (channel 2, `operator`) speaks first, then the caller
/// (channel 1, `customer`). voice_log (text and JSON) and the Transcription resource say so.
#[test]
fn the_conversation_is_transcribed_per_speaker() {
    const CALLER: &str = "please call me back tomorrow morning";
    const AGENT: &str = "thank you for calling support this is the agent speaking";
    const TOKEN: &str = "vl-token-dial-7";
    assert_engine_installed();
    let tmp = TempDir::new("dial-transcript");
    let phrases = tmp.join("phrases.txt");
    std::fs::write(
        &phrases,
        format!("{CALLER}\n{AGENT}\nthe meeting moved to next thursday\nplease send the invoice again\n"),
    )
    .expect("phrases");
    let phrases = phrases.display().to_string();
    let wh = WebhookServer::start();
    wh.route("/tcb", Reply::empty());
    let (uas, uas_dir) = {
        let dir = TempDir::new("agent-transcript");
        (
            Sipp::new("uas_agent.xml", "127.0.0.1:9".parse().unwrap()),
            dir,
        )
    };
    let target = format!("sip:agent@127.0.0.1:{}", uas.sip_port);
    let mut d = Daemon::start(
        &[
            ("transcription.engine", "offline"),
            ("transcription.phrases_file", &phrases),
            ("transcripts.api_token", TOKEN),
        ],
        App::Twiml(format!(
            r#"<Response><Dial record="record-from-answer-dual" transcribeCallback="{}"><Sip>{target}</Sip></Dial></Response>"#,
            wh.url("/tcb"),
        )),
    );
    let phone = uas.spawn(&uas_dir);
    // The caller waits for the agent's sentence (0.7 s to 5.2 s after answer) before speaking.
    let caller_wav = espeak_ulaw_wav(&tmp.path, "caller", CALLER, 5.5, 1.0);
    HarkCall::new(&d.uri("support"))
        .play(&caller_wav)
        .hangup_after(10.5)
        .run(&d.tmp, Duration::from_secs(30))
        .assert_success();
    assert!(phone.wait(Duration::from_secs(20)).success());
    let tcb = wh.wait_for("/tcb", 1, Duration::from_secs(120))[0].clone();
    assert_eq!(tcb.param("TranscriptionStatus"), "completed");
    assert_eq!(
        tcb.param("TranscriptionText"),
        format!("operator: {AGENT}\ncustomer: {CALLER}")
    );
    let call_sid = tcb.param("CallSid").to_string();
    let http = twilio_client::Http::new();
    let auth = format!("Token {TOKEN}");
    let url = format!(
        "{}/public/api/v1/monitor/voice_log/{call_sid}",
        d.public_url()
    );
    let r = http.request(
        "GET",
        &format!("{url}?format=json"),
        twilio_client::Auth::None,
        &[("Authorization", &auth)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    let u = body["utterances"].as_array().expect("utterances");
    let seen: Vec<(&str, &str)> = u
        .iter()
        .map(|x| {
            (
                x["speaker_type"].as_str().unwrap(),
                x["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [("operator", AGENT), ("customer", CALLER)], "{body}");
    let start = |i: usize| u[i]["speak_start_sec"].as_f64().unwrap();
    assert!(start(0) < 1.5, "the agent speaks first: {}", start(0));
    assert!(
        (5.0..=6.5).contains(&start(1)),
        "the caller at 5.5 s: {}",
        start(1)
    );
    let r = http.request(
        "GET",
        &url,
        twilio_client::Auth::None,
        &[("Authorization", &auth)],
    );
    assert_eq!(r.status, 200);
    let text = r.text();
    let op = text.find(AGENT).expect("agent line");
    let cu = text.find(CALLER).expect("caller line");
    assert!(op < cu, "{text}");
    assert!(text.contains("operator"), "{text}");
    d.assert_alive();
}
