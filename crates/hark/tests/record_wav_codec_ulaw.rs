//! `record.wav_codec = "ulaw"` (SPEC §6.3): the recording is a µ-law WAV (format 7, 8 bits,
//! one byte per sample) holding the very bytes a PCMU caller sent, trimmed as usual; its
//! duration, REST metadata and MP3 match, and the default stays 16-bit PCM.

mod common;
mod twilio_app;
mod twilio_client;

use common::*;
use prompts::decode::{decode, Container};
use std::time::Duration;
use twilio_client::{api_url, Auth, Http};

#[test]
fn ulaw_recording_holds_the_callers_pcmu_bytes_exactly() {
    let wh = WebhookServer::start();
    wh.route("/action", Reply::twiml("<Response><Hangup/></Response>"));
    let twiml = format!(
        r##"<Response><Record action="{}" finishOnKey="#" maxLength="30" timeout="10" trim="trim-silence"/></Response>"##,
        wh.url("/action")
    );
    let d = Daemon::start(&[("record.wav_codec", "ulaw")], App::Twiml(twiml));
    // 1 s silence (covers the beep), speech 1.0–4.4 s, silence; '#' at 5.0 s.
    let c = composite(1.0, 3.4, 1.6);
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &c.ulaw);
    HarkCall::new(&d.uri("rec"))
        .play(&wav)
        .dtmf("#", 5.0)
        .run(&d.tmp, Duration::from_secs(30))
        .assert_success();
    let action = wh.wait_for("/action", 1, Duration::from_secs(5)).remove(0);
    let sid = action.param("RecordingSid").to_string();
    let file = std::fs::read(d.recording_path(&sid)).expect("recording");
    let layout = wav_layout(&file).expect("a WAV");
    assert_eq!(
        (layout.format, layout.channels, layout.rate, layout.bits),
        (7, 1, 8000, 8),
        "µ-law mono 8 kHz"
    );
    assert_eq!(layout.data_len_declared as usize, file.len() - 44);
    let bytes = &file[layout.data_offset..];
    // The caller's own bytes, one per sample, from 200 ms before the speech to 200 ms after.
    let at = c
        .ulaw
        .windows(bytes.len())
        .position(|w| w == bytes)
        .unwrap_or_else(|| {
            panic!(
                "the {} recorded bytes are not a run of the sent ones",
                bytes.len()
            )
        });
    assert_near("recording start", at, c.speech_start - 1600, 480);
    assert_near("recording end", at + bytes.len(), c.speech_end + 1600, 480);
    assert_eq!(
        action.param("RecordingDuration"),
        rounded_seconds(bytes.len()).to_string()
    );

    // REST metadata and MP3 agree with the file.
    let http = Http::new();
    let meta = http
        .get(
            &api_url(&d, ACCOUNT_SID, &format!("Recordings/{sid}.json")),
            Auth::Account,
        )
        .json();
    assert_eq!(meta["duration"], rounded_seconds(bytes.len()).to_string());
    let media = http.get(&d.recording_url(&sid), Auth::Account);
    assert_eq!(media.status, 200);
    assert!(media.body == file, "media is the file");
    let mp3 = http.get(&format!("{}.mp3", d.recording_url(&sid)), Auth::Account);
    assert_eq!(mp3.status, 200);
    let decoded = decode(&mp3.body, Container::Mp3, 60)
        .expect("MP3 decodes")
        .samples;
    assert_eq!(decoded.len(), bytes.len(), "MP3 length");
    wh.assert_signatures_ok();
}
