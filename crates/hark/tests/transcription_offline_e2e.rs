//! Issues 5 and 10 end to end with the offline engine (worker processes): espeak-ng speech sent
//! over SIP/RTP is recorded with `transcribe="true"`; the signed `transcribeCallback` carries the
//! text (Whisper with the default config: most of the words of a sentence it has never been told;
//! Pocketsphinx with a grammar of four phrases: exactly the one said), and REST (SPEC §6.4) and
//! voice_log (SPEC §8) return the same utterance with its start where the speech was sent.

mod common;
mod twilio_app;
mod twilio_client;

use std::time::{Duration, Instant};

use common::rtp::dtmf_event;
use common::sip::{pcmu_offer, RawUac};
use common::*;
use serde_json::json;
use twilio_app::TwilioApp;
use twilio_client::{api_url, Auth, Http};

const SENTENCE: &str = "please call me back tomorrow morning";
/// Said to the default engine, which knows no list of phrases.
const OPEN_SENTENCE: &str = "my account number has changed since last year";
const DISTRACTORS: [&str; 3] = [
    "the meeting moved to next thursday",
    "my account number has changed",
    "please send the invoice again",
];
const TOKEN: &str = "vl-token-5b1e";
/// Seconds of silence the caller sends before the sentence.
const LEAD: f64 = 1.0;

/// The sentence spoken by espeak-ng (en-us, 150 wpm), at telephone quality: 8 kHz µ-law, `lead`
/// seconds of silence before and `tail` after (sox, no dither, so runs repeat exactly).
fn espeak_ulaw(dir: &TempDir, name: &str, text: &str, lead: f64, tail: f64) -> Vec<u8> {
    read_ulaw_wav(&espeak_ulaw_wav(&dir.path, name, text, lead, tail))
}

/// `[transcription]` for the offline engine: the default (Whisper), or with a phrase file.
fn offline_settings(dir: &TempDir, grammar: bool) -> Vec<(String, String)> {
    if !grammar {
        assert_engine_installed();
        // Nothing about the engine: the embedded defaults are what is tested.
        return vec![("transcripts.api_token".into(), TOKEN.into())];
    }
    let phrases = dir.join("phrases.txt");
    let mut text = String::from("# expected answers\n");
    for p in std::iter::once(SENTENCE).chain(DISTRACTORS) {
        text.push_str(p);
        text.push('\n');
    }
    std::fs::write(&phrases, text).expect("write phrases");
    assert_engine_installed();
    vec![
        ("transcription.engine".into(), "offline".into()),
        (
            "transcription.phrases_file".into(),
            phrases.display().to_string(),
        ),
        ("transcripts.api_token".into(), TOKEN.into()),
    ]
}

fn voice_log(http: &Http, d: &Daemon, id: &str, json: bool) -> twilio_client::Resp {
    let q = if json { "?format=json" } else { "" };
    let url = format!("{}/public/api/v1/monitor/voice_log/{id}{q}", d.public_url());
    http.request(
        "GET",
        &url,
        Auth::None,
        &[("Authorization", &format!("Token {TOKEN}"))],
    )
}

/// Sends an INVITE carrying `X-Request-Id` and waits for its final response; the dialog is then
/// set up in `uac` as `RawUac::invite` would.
fn invite_with_request_id(uac: &mut RawUac, request_id: &str) -> SipMsg {
    let msg = uac.build_invite("rec", &pcmu_offer(uac.rtp_port)).replacen(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\nX-Request-Id: {request_id}\r\n"),
        1,
    );
    let cseq = uac.cseq;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut next = Instant::now();
    loop {
        if Instant::now() >= next && uac.find_response("INVITE", cseq, 100).is_none() {
            uac.send(&msg);
            next = Instant::now() + Duration::from_millis(500);
        }
        if let Some(r) = uac.find_response("INVITE", cseq, 200) {
            uac.to_tag = r.to_tag();
            uac.remote_target = r.contact_uri();
            return r;
        }
        assert!(Instant::now() < deadline, "no final response to INVITE");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l[name.len()..].trim().parse().ok())
}

/// Default `trim-silence`: the recording file starts 200 ms before the speech, not at capture
/// start, and voice_log must still place the utterance where it was said.
#[test]
fn offline_transcription_reaches_callback_rest_and_voice_log() {
    offline_e2e("trim-silence", true);
}

/// The default config, no grammar: Whisper hears a sentence nobody told it about.
#[test]
fn default_engine_transcribes_an_unknown_sentence() {
    offline_e2e("trim-silence", false);
}

/// The same with `do-not-trim` (the file starts at capture start).
#[test]
fn offline_transcription_do_not_trim_reaches_callback_rest_and_voice_log() {
    offline_e2e("do-not-trim", true);
}

fn offline_e2e(trim: &str, grammar: bool) {
    let sentence = if grammar { SENTENCE } else { OPEN_SENTENCE };
    let tmp = TempDir::new("tr-offline");
    let app = TwilioApp::start(json!({
        "/voice": {"twiml": [["record", {
            "transcribe": true, "transcribe_callback": "/tcb", "action": "/done",
            "finish_on_key": "#", "max_length": 30, "timeout": 10, "trim": trim}]]},
        "/done": {"hangup": {}},
        "/tcb": {"raw": {"status": 200, "content_type": "text/plain", "body": ""}},
    }));
    let settings = offline_settings(&tmp, grammar);
    let overrides: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let d = Daemon::start(
        &overrides,
        App::VoiceUrl {
            url: app.url("/voice"),
            method: "POST",
        },
    );
    let ulaw = espeak_ulaw(&tmp, "sentence", sentence, LEAD, 1.0);
    let sent = decode_all(&ulaw);
    let (onset, offset) = speech_span(&sent, -45.0).expect("espeak made speech");

    // One call with an X-Request-Id, speech from the first RTP packet, then '#'.
    let request_id = "crm-7f3a9c-örder 42";
    let mut uac = RawUac::new(d.sip_addr());
    let ok = invite_with_request_id(&mut uac, request_id);
    let answered = Instant::now();
    assert_eq!(ok.status(), Some(200), "INVITE: {}", ok.first_line);
    uac.ack();
    let mut rtp = RtpSender::spawn(
        &uac.rtp,
        uac.remote_rtp(&ok),
        vec![RtpPlan::Audio(ulaw.clone()), RtpPlan::Dtmf(dtmf_event('#'))],
        true,
    );
    let rtp_start = answered.elapsed().as_secs_f64();
    let bye = uac.wait_request("BYE", Duration::from_secs(30));
    rtp.stop();
    assert!(bye.is_some(), "Hark hangs up after /done's <Hangup/>");
    let speech_at = rtp_start + secs(onset);

    let done = app.wait_for("/done", 1, Duration::from_secs(5));
    let done = done[0].to_recorded();
    assert_eq!(done.param("Digits"), "#");
    let rec = check_recording(&d, &done, &sent, false);
    let re = rec.sid.clone();
    let call_sid = done.param("CallSid").to_string();

    // The callback: signed (RequestValidator), with the grammar's sentence.
    let cb = app.wait_for("/tcb", 1, Duration::from_secs(120));
    let cb = &cb[0];
    assert!(cb.valid, "RequestValidator rejected the transcribeCallback");
    assert_eq!(cb.method, "POST", "transcribeCallback is always POST");
    let tr = cb.param("TranscriptionSid");
    assert!(is_sid(&tr, "TR"), "TranscriptionSid {tr}");
    assert_eq!(cb.param("TranscriptionStatus"), "completed");
    let text = cb.param("TranscriptionText").to_string();
    if grammar {
        assert_eq!(text, SENTENCE);
    } else {
        let share = words_heard(sentence, &text);
        assert!(
            share >= 0.7,
            "{share:.2} of the words in {text:?} (said: {sentence:?})"
        );
        let (heard, said) = (
            transcript_words(&text).len(),
            transcript_words(sentence).len(),
        );
        assert!(heard <= said + 2, "{text:?}");
    }
    assert_eq!(cb.param("RecordingSid"), re);
    assert_eq!(cb.param("RecordingUrl"), d.recording_url(&re));
    let tr_url = format!("{}/Transcriptions/{tr}", d.recording_url(&re));
    assert_eq!(cb.param("TranscriptionUrl"), tr_url);
    check_standard_params(&cb.to_recorded(), "completed");
    assert_eq!(cb.param("CallSid"), call_sid);

    // REST (SPEC §6.4), Basic auth like recordings.
    let http = Http::new();
    let one = http.get(
        &api_url(&d, ACCOUNT_SID, &format!("Transcriptions/{tr}.json")),
        Auth::Account,
    );
    assert_eq!(one.status, 200, "{}", one.text());
    let v = one.json();
    assert_eq!(v["sid"], tr.as_str());
    assert_eq!(v["status"], "completed");
    assert_eq!(v["transcription_text"], text.as_str());
    assert_eq!(v["recording_sid"], re.as_str());
    assert_eq!(v["type"], "fast");
    assert_eq!(v["duration"], done.param("RecordingDuration"));
    assert_eq!(
        v["uri"],
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Transcriptions/{tr}.json")
    );
    assert!(is_rfc2822(v["date_created"].as_str().unwrap_or("")));
    let via_url = http.get(&format!("{tr_url}.json"), Auth::Account);
    assert_eq!(via_url.status, 200, "TranscriptionUrl + .json");
    assert_eq!(
        via_url.json(),
        v,
        "TranscriptionUrl.json is the same resource"
    );
    let txt = http.get(
        &api_url(&d, ACCOUNT_SID, &format!("Transcriptions/{tr}.txt")),
        Auth::Account,
    );
    assert_eq!(txt.status, 200);
    assert_eq!(
        txt.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(txt.text(), text);
    let by_rec = http
        .get(
            &api_url(
                &d,
                ACCOUNT_SID,
                &format!("Recordings/{re}/Transcriptions.json"),
            ),
            Auth::Account,
        )
        .json();
    let listed: Vec<&str> = by_rec["transcriptions"]
        .as_array()
        .expect("transcriptions")
        .iter()
        .filter_map(|t| t["sid"].as_str())
        .collect();
    assert_eq!(listed, [tr.as_str()]);
    let all = http
        .get(
            &api_url(&d, ACCOUNT_SID, "Transcriptions.json"),
            Auth::Account,
        )
        .json();
    assert_eq!(all["transcriptions"][0]["sid"], tr.as_str());
    let unauth = http.get(
        &api_url(&d, ACCOUNT_SID, &format!("Transcriptions/{tr}.txt")),
        Auth::None,
    );
    assert_eq!(unauth.status, 401, "the transcription needs Basic auth");

    // voice_log by CallSid, RecordingSid and X-Request-Id: the same one utterance.
    let want_text = format!("caller : {text}\n");
    let encoded: String = url::form_urlencoded::byte_serialize(request_id.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    let mut bodies = Vec::new();
    for id in [call_sid.as_str(), re.as_str(), encoded.as_str()] {
        let t = voice_log(&http, &d, id, false);
        assert_eq!(t.status, 200, "voice_log/{id}: {}", t.text());
        assert_eq!(
            t.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "voice_log/{id}"
        );
        assert_eq!(t.text(), want_text, "voice_log/{id}");
        let j = voice_log(&http, &d, id, true);
        assert_eq!(j.status, 200, "voice_log/{id}?format=json");
        assert_eq!(j.header("content-type"), Some("application/json"));
        bodies.push(j.json());
    }
    assert_eq!(bodies[0], bodies[1], "by CallSid vs by RecordingSid");
    assert_eq!(bodies[0], bodies[2], "by CallSid vs by X-Request-Id");
    let u = bodies[0]["utterances"].as_array().expect("utterances");
    assert_eq!(u.len(), 1, "{}", bodies[0]);
    assert_eq!(u[0]["order"], 1);
    assert_eq!(u[0]["speaker_type"], "caller");
    assert_eq!(u[0]["text"], text.as_str());
    let start = u[0]["speak_start_sec"].as_f64().expect("speak_start_sec");
    let dur = u[0]["voice_duration_sec"]
        .as_f64()
        .expect("voice_duration_sec");
    let spoken = secs(offset - onset);
    eprintln!(
        "speech sent at {speech_at:.3} s after the 200 OK ({:.3} s of it); voice_log: start \
         {start} s, duration {dur} s",
        spoken
    );
    let file_at = rtp_start + secs(rec.offset);
    assert!(
        (start - speech_at).abs() <= 0.3,
        "{trim}: speak_start_sec {start} vs speech sent at {speech_at:.3} s after answer; the \
         recording file starts at {file_at:.3} s (its first sample is sample {} of the audio \
         sent), capture started about 0.5 s after answer (beep)",
        rec.offset
    );
    assert!(
        (dur - spoken).abs() <= 0.5,
        "voice_duration_sec {dur} vs {spoken:.3} s of speech"
    );

    // Metrics: one done, none failed, a real-time factor.
    let m = http
        .get(&format!("{}/metrics", d.public_url()), Auth::None)
        .text();
    assert_eq!(
        metric(&m, "hark_transcriptions{state=\"done\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "hark_transcriptions{state=\"failed\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&m, "hark_transcriptions{state=\"queued\"}"),
        Some(0.0)
    );
    let rtf = metric(&m, "hark_transcription_rtf").expect("hark_transcription_rtf");
    assert!(rtf > 0.0 && rtf < 5.0, "rtf {rtf}");
    app.assert_all_valid(&[]);
    assert_eq!(app.requests_to("/tcb").len(), 1, "one callback");
}
