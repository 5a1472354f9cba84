//! SPEC §8: a call's transcript holds what Hark said (`<Say>`, speaker `system`) and what the
//! caller said (`<Record transcribe="true">`, speaker `caller`), interleaved by time. The caller
//! is the built-in `hark call`; the engine is the offline one with a phrase grammar.

mod common;
mod twilio_app;
mod twilio_client;

use std::time::Duration;

use common::*;
use twilio_client::{Auth, Http};

const PROMPT: &str = "Please leave a message after the tone.";
const SENTENCE: &str = "please call me back tomorrow morning";
const TOKEN: &str = "vl-token-sys-91";
/// Seconds the caller is silent before speaking: the prompt (~2.4 s) and the beep (0.5 s).
const LEAD: f64 = 4.0;

#[test]
fn say_before_record_is_the_system_line_before_the_callers() {
    let tmp = TempDir::new("tr-system");
    let phrases = tmp.join("phrases.txt");
    std::fs::write(
        &phrases,
        format!("{SENTENCE}\nthe meeting moved to next thursday\nmy account number has changed\n"),
    )
    .expect("phrases");
    assert_engine_installed();
    let phrases = phrases.display().to_string();
    let wh = WebhookServer::start();
    wh.route("/done", Reply::twiml("<Response><Hangup/></Response>"));
    let twiml = format!(
        r##"<Response><Say>{PROMPT}</Say><Record transcribe="true" finishOnKey="#" timeout="10" maxLength="30" action="{}"/><Hangup/></Response>"##,
        wh.url("/done")
    );
    let d = Daemon::start(
        &[
            ("transcription.engine", "offline"),
            ("transcription.phrases_file", &phrases),
            ("transcripts.api_token", TOKEN),
        ],
        App::Twiml(twiml),
    );
    let wav = espeak_ulaw_wav(&tmp.path, "caller", SENTENCE, LEAD, 1.0);
    let sent = decode_all(&read_ulaw_wav(&wav));
    let (onset, _) = speech_span(&sent, -45.0).expect("speech");
    let done = call_then_pound(&d, &wh, &wav);
    let call_sid = done.param("CallSid").to_string();
    check_recording(&d, &done, &sent, false);

    // 404 while the transcription is queued or running, then the transcript.
    let http = Http::new();
    let url = format!(
        "{}/public/api/v1/monitor/voice_log/{call_sid}?format=json",
        d.public_url()
    );
    let auth = format!("Token {TOKEN}");
    let mut statuses = Vec::new();
    let body = wait_until(Duration::from_secs(120), || {
        let r = http.request("GET", &url, Auth::None, &[("Authorization", &auth)]);
        statuses.push(r.status);
        (r.status == 200).then(|| r.json())
    })
    .unwrap_or_else(|| panic!("voice_log never answered 200: {statuses:?}"));
    assert!(
        statuses.iter().all(|&s| s == 404 || s == 200),
        "only 404 before the transcript is ready: {statuses:?}"
    );
    let u = body["utterances"].as_array().expect("utterances");
    assert_eq!(u.len(), 2, "{body}");
    assert_eq!(u[0]["order"], 1);
    assert_eq!(u[0]["speaker_type"], "system");
    assert_eq!(u[0]["text"], PROMPT);
    assert_eq!(u[1]["order"], 2);
    assert_eq!(u[1]["speaker_type"], "caller");
    assert_eq!(u[1]["text"], SENTENCE);
    let num = |v: &serde_json::Value| v.as_f64().expect("number");
    let (sys_start, sys_dur) = (
        num(&u[0]["speak_start_sec"]),
        num(&u[0]["voice_duration_sec"]),
    );
    let caller_start = num(&u[1]["speak_start_sec"]);
    eprintln!("{body}");
    // The prompt starts at answer; it lasts as long as espeak-ng's rendering of it.
    assert!(sys_start <= 0.3, "system line starts at {sys_start} s");
    let prompt_wav = espeak_ulaw_wav(&tmp.path, "prompt", PROMPT, 0.0, 0.0);
    let prompt_secs = secs(read_ulaw_wav(&prompt_wav).len());
    assert!(
        (sys_dur - prompt_secs).abs() <= 0.2,
        "system line lasts {sys_dur} s, the rendered prompt {prompt_secs:.2} s"
    );
    // The caller spoke after the prompt and the beep, no later than the speech was sent.
    assert!(
        caller_start >= sys_start + sys_dur + 0.4,
        "caller line at {caller_start} s, prompt ends at {} s",
        sys_start + sys_dur
    );
    assert!(
        caller_start <= secs(onset) + 0.3,
        "caller line at {caller_start} s, speech sent from {:.2} s",
        secs(onset)
    );
    let text = http.request(
        "GET",
        &url.replace("?format=json", ""),
        Auth::None,
        &[("Authorization", &auth)],
    );
    assert_eq!(text.status, 200);
    assert_eq!(
        text.text(),
        format!("system : {PROMPT}\ncaller : {SENTENCE}\n")
    );
    wh.assert_signatures_ok();
}
