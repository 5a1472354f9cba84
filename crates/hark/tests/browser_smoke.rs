//! The browser harness works on this machine (issue 12 tests): Debian's headless Chromium,
//! driven by playwright-core, opens a page on 127.0.0.1 that loads the vendored SDK
//! (`Twilio.Device.version` = 2.18.5), takes the fake microphone playing the test speech WAV
//! (RMS measured over ~1.2 s is speech-loud; a silent WAV measures silent, so the sound is the
//! file's), and offers WebRTC host candidates with real addresses (no mDNS names). Fails, never
//! skips, when scripts/setup.sh has not installed Chromium/node/playwright-core.

mod common;

use common::browser::{fake_audio_48k, PageRun, StaticServer, SDK_VERSION};
use common::{data_dir, TempDir};
use std::time::Duration;

fn run_smoke(wav: &std::path::Path) -> serde_json::Value {
    let server = StaticServer::page_with_sdk("smoke.html");
    let out = PageRun::new(&server.url("/smoke.html"))
        .fake_audio(wav)
        .timeout(Duration::from_secs(20))
        .run();
    let r = out.expect_result().clone();
    eprintln!(
        "browser smoke: {:.2} s wall, driver ms {}, rms {}",
        out.elapsed.as_secs_f64(),
        out.ms,
        r["rms"]
    );
    assert_eq!(r["errors"], serde_json::json!([]), "page errors: {r}");
    assert_eq!(r["device"], true, "Twilio.Device is defined: {r}");
    assert_eq!(r["sdkVersion"], SDK_VERSION, "Twilio.Device.version: {r}");
    assert_eq!(r["gum"], true, "getUserMedia: {r}");
    assert_eq!(r["track"]["readyState"], "live", "{r}");
    assert!(
        r["frames"].as_u64().unwrap_or(0) >= 20,
        "analyser frames: {r}"
    );
    let codecs: Vec<&str> = r["offerCodecs"]
        .as_array()
        .expect("offerCodecs")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert!(codecs.contains(&"opus/48000/2"), "Opus offered: {codecs:?}");
    assert!(codecs.contains(&"PCMU/8000"), "PCMU offered: {codecs:?}");
    let cands: Vec<&str> = r["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert!(
        cands.iter().any(|c| c.contains(" typ host")),
        "host candidates: {cands:?}"
    );
    assert!(
        !cands.iter().any(|c| c.contains(".local ")),
        "no mDNS candidates (--disable-features=WebRtcHideLocalIpsWithMdns): {cands:?}"
    );
    r
}

#[test]
fn browser_loads_sdk_and_hears_the_fake_microphone() {
    let tmp = TempDir::new("browser-smoke");
    let wav = tmp.join("speech_48k.wav");
    fake_audio_48k(&data_dir().join("speech_8k_ulaw.wav"), &wav, 3.0);
    let r = run_smoke(&wav);
    let rms = r["rms"].as_f64().expect("rms");
    let max = r["maxRms"].as_f64().expect("maxRms");
    assert!(
        rms > 0.01 && max > 0.05,
        "speech is heard: rms {rms}, max {max}"
    );
}

#[test]
fn browser_fake_microphone_plays_the_file_not_a_beep() {
    let tmp = TempDir::new("browser-smoke-silence");
    let silence = tmp.join("silence_8k.wav");
    let out = std::process::Command::new("sox")
        .args(["-n", "-r", "8000", "-b", "16", "-c", "1"])
        .arg(&silence)
        .args(["trim", "0", "1"])
        .output()
        .expect("sox (scripts/setup.sh installs it)");
    assert!(out.status.success(), "sox: {out:?}");
    let wav = tmp.join("silence_48k.wav");
    fake_audio_48k(&silence, &wav, 3.0);
    let r = run_smoke(&wav);
    let max = r["maxRms"].as_f64().expect("maxRms");
    assert!(max < 0.001, "a silent file is silent: max rms {max}");
}
