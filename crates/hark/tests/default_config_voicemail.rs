//! `hark serve` with no --config runs the embedded default (beep, `<Record maxLength="120">`,
//! hang up). Only ports, storage and the public URL are overridden, by environment variables.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn embedded_default_records_a_voicemail_and_hangs_up() {
    let tmp = TempDir::new("default");
    let rtp = alloc_port_block();
    let storage = tmp.join("vm");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hark"));
    for (k, _) in std::env::vars() {
        if k.starts_with("HARK_") {
            cmd.env_remove(k);
        }
    }
    // Port 0: the daemon picks free ports and logs them; the public URL follows the HTTP one.
    cmd.arg("serve")
        .current_dir(&tmp.path)
        .env("HARK_SIP__LISTEN", "127.0.0.1:0")
        .env("HARK_HTTP__LISTEN", "127.0.0.1:0")
        .env("HARK_HTTP__PUBLIC_URL", "")
        .env("HARK_RTP__PORT_MIN", rtp.to_string())
        .env("HARK_RTP__PORT_MAX", (rtp + 39).to_string())
        .env("HARK_STORAGE__DIR", storage.display().to_string());
    let mut daemon = Running::spawn("hark-serve", cmd, &tmp.path);
    let stderr = tmp.join("hark-serve.stderr");
    let listening = wait_until(Duration::from_secs(15), || {
        let log = std::fs::read_to_string(&stderr).unwrap_or_default();
        common::daemon::Listening::find(&log)
    });
    let Some(listening) = listening else {
        panic!("no `listening` line: {:?}", daemon.kill());
    };
    let sip = listening.sip_udp;
    assert_eq!(
        listening.sip_tcp, sip,
        "SIP over UDP and TCP share the port"
    );
    let ready = wait_until(Duration::from_secs(15), || {
        (options_ok(sip) || !daemon.is_running()).then_some(())
    });
    assert!(
        ready.is_some() && daemon.is_running(),
        "hark serve (default config) not answering OPTIONS: {:?}",
        daemon.kill()
    );

    let c = composite(1.0, 3.4, 1.6);
    let wav = tmp.join("caller.wav");
    write_ulaw_wav(&wav, &c.ulaw);
    let heard = tmp.join("heard.wav");
    // Any key ends the default <Record>; then the document hangs up.
    let call = HarkCall::new(&format!("sip:vm@{sip}"))
        .play(&wav)
        .dtmf("5", 5.0)
        .save_received(&heard)
        .run(&tmp, Duration::from_secs(40));
    if !call.success() {
        let out = daemon.kill();
        panic!(
            "hark call failed: {call:#?}\n--- hark serve output ---\n{}{}",
            out.stdout, out.stderr
        );
    }
    let files: Vec<_> = std::fs::read_dir(&storage)
        .expect("storage dir created")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    assert_eq!(files.len(), 1, "one voicemail: {files:?}");
    let name = files[0].file_stem().and_then(|s| s.to_str()).unwrap_or("");
    assert!(
        is_sid(name, "RE"),
        "file named after the RecordingSid: {name}"
    );
    let rec = read_recording(&files[0]);
    let off = find_segment(&rec, &decode_all(&c.ulaw)).unwrap_or_else(|e| panic!("{e}"));
    assert_near("voicemail end", off + rec.len(), c.speech_end + 1600, 480);
    let beep = read_wav_any(&heard)
        .chunks(160)
        .filter(|f| dbfs(rms(f)) > -40.0 && tone_share(f, 1000.0) > 0.3)
        .count();
    assert!(
        beep >= 10,
        "the caller heard the beep ({} ms of 1 kHz)",
        beep * 20
    );
    assert!(options_ok(sip), "still answering after the call");
    assert!(daemon.is_running());
    drop(daemon.kill());
}
