//! The official Twilio Python helper library, unchanged, against Hark's REST API (SPEC §6,
//! §11 item 14): three recorded calls are listed one per page (the helper follows
//! `next_page_uri`), fetched, downloaded as WAV and MP3, their calls listed and fetched, and one
//! recording deleted. The script (twilio_client/rest_check.py) checks what the helper sees; this
//! file checks the bytes against the files on disk.

mod common;
mod twilio_app;
mod twilio_client;

use common::*;
use prompts::decode::{decode, Container};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use twilio_client::*;

#[test]
fn twilio_helper_lists_pages_fetches_downloads_and_deletes_recordings() {
    let wh = WebhookServer::start();
    wh.route("/action", Reply::twiml("<Response><Hangup/></Response>"));
    let d = Daemon::start(&[], App::Twiml(record_twiml(&wh.url("/action"), None)));
    let (wav, _) = looped_speech(&d.tmp, "speech.wav", 1);
    // Staggered so every recording has its own date_created second.
    let actions = record_calls(&d, &wh, &wav, 3, Duration::from_millis(1100));
    let mut recs: BTreeMap<String, String> = BTreeMap::new();
    for a in &actions {
        assert_eq!(a.param("Digits"), "#");
        recs.insert(
            a.param("RecordingSid").to_string(),
            a.param("CallSid").to_string(),
        );
    }
    assert_eq!(recs.len(), 3, "three distinct recordings");
    let on_disk: BTreeMap<String, Vec<u8>> = recs
        .keys()
        .map(|sid| {
            let bytes = std::fs::read(d.recording_path(sid)).expect("recording on disk");
            (sid.clone(), bytes)
        })
        .collect();

    let out = TempDir::new("rest-client");
    let expect = out.join("expect.json");
    let calls: Vec<&String> = recs.values().collect();
    std::fs::write(
        &expect,
        json!({ "recordings": recs, "calls": calls }).to_string(),
    )
    .expect("write expect");
    let args: Vec<String> = [
        "--base-url",
        &d.public_url(),
        "--account-sid",
        ACCOUNT_SID,
        "--auth-token",
        AUTH_TOKEN,
        "--expect",
        &expect.display().to_string(),
        "--out",
        &out.path.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = run_script("rest_check.py", &args, &out, Duration::from_secs(90));
    run.assert_success();
    let report: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("report is not JSON ({e}): {}", run.stdout));

    // The helper fetched three one-item pages, pages 2 and 3 from next_page_uri.
    let list = report["list_requests"].as_array().expect("list_requests");
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(list[0]["params"]["PageSize"], 1, "first page request");
    for (i, r) in list.iter().enumerate().skip(1) {
        let url = r["url"].as_str().expect("url");
        assert!(
            url.starts_with(&format!(
                "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings.json?",
                d.public_url()
            )) && url.contains("PageSize=1")
                && url.contains(&format!("Page={i}")),
            "request {i} is base_url + next_page_uri: {url}"
        );
    }
    assert_eq!(report["recordings_envelope"]["pages"], 3);
    assert_eq!(report["calls_envelope"]["pages"], 2);

    // Downloads are the files on disk; MP3 decodes to the same length and loudness.
    for (sid, bytes) in &on_disk {
        let dl = &report["downloads"][sid];
        for kind in ["plain", "wav"] {
            let got = std::fs::read(dl[kind]["path"].as_str().expect("path")).expect("download");
            assert!(
                got == *bytes,
                "{sid} {kind}: downloaded bytes differ from the file"
            );
        }
        // The file itself may be deleted by now: read the copy taken before the script ran.
        let pcm = {
            let tmp = out.join(&format!("{sid}.check.wav"));
            std::fs::write(&tmp, bytes).expect("write copy");
            read_recording(&tmp)
        };
        let mp3 = std::fs::read(dl["mp3"]["path"].as_str().expect("path")).expect("mp3");
        let decoded = decode(&mp3, Container::Mp3, 3600)
            .unwrap_or_else(|e| panic!("{sid}.mp3 does not decode: {e}"))
            .samples;
        // The LAME Info tag declares the encoder delay and padding: a gapless decoder gets
        // back exactly the WAV's length.
        assert_eq!(
            decoded.len(),
            pcm.len(),
            "{sid}: MP3 decodes to {} samples, WAV has {}",
            decoded.len(),
            pcm.len()
        );
        let (a, b) = (dbfs(rms(&pcm)), dbfs(rms(&decoded)));
        assert!(
            (a - b).abs() < 3.0,
            "{sid}: MP3 level {b:.1} dBFS vs WAV {a:.1} dBFS"
        );
        assert_eq!(
            report["fetched"][sid]["duration"],
            rounded_seconds(pcm.len()).to_string(),
            "{sid}: duration is the file's rounded seconds"
        );
    }

    // The calls are what `hark call` placed.
    for ca in recs.values() {
        let c = &report["calls"][ca];
        assert!(
            c["to"].as_str().is_some_and(|t| t.contains("rec")),
            "{ca}: to {}",
            c["to"]
        );
    }

    // The deleted one is gone from disk, WAV and cached MP3 alike; the others keep both.
    let victim = report["deleted"].as_str().expect("deleted sid");
    assert_eq!(report["deleted_error"]["code"], 20404);
    for sid in recs.keys() {
        let wav = d.recording_path(sid);
        let mp3 = wav.with_extension("mp3");
        if sid == victim {
            assert!(!wav.exists(), "{sid}.wav still on disk after DELETE");
            assert!(!mp3.exists(), "{sid}.mp3 still on disk after DELETE");
        } else {
            assert!(wav.exists(), "{sid}.wav");
            assert!(mp3.exists(), "{sid}.mp3 cached beside the WAV");
        }
    }
    wh.assert_signatures_ok();
}
