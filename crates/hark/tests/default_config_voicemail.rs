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

    // No auth token in the default: one was generated, kept private, and the API takes it.
    let token_file = storage.join("auth_token");
    let token = std::fs::read_to_string(&token_file).expect("generated auth token file");
    let token = token.trim();
    assert!(
        token.len() == 32 && token.chars().all(|c| c.is_ascii_hexdigit()),
        "{token:?}"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file)
            .expect("token file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(
        log.contains(&token_file.display().to_string()),
        "the log says where the token is:\n{log}"
    );
    assert!(!log.contains(token), "the token itself is never logged");
    let http = listening.http;
    let account = "AC00000000000000000000000000000000";
    let path = format!("/2010-04-01/Accounts/{account}/Recordings.json");
    let (status, _) = http_get_basic(http, &path, account, token).expect("REST answered");
    assert_eq!(status, 200, "the generated token authenticates");
    let (status, _) = http_get_basic(http, &path, account, "changeme").expect("REST answered");
    assert_eq!(status, 401, "the old default does not");
    drop(daemon.kill());
}

/// GET with HTTP Basic credentials; (status, body).
fn http_get_basic(
    addr: std::net::SocketAddr,
    path: &str,
    user: &str,
    password: &str,
) -> Option<(u16, String)> {
    use base64::Engine;
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}
