//! A bad configuration makes `hark serve` exit non-zero with a message naming the key, whether
//! the value comes from the config file or from a HARK_<SECTION>__<KEY> variable.

mod common;

use common::daemon::serve_expect_exit;
use common::*;
use std::time::Duration;

fn app() -> App {
    App::Twiml("<Response><Hangup/></Response>".into())
}

/// The output names `section` and `key` (as `section.key`, `[section] key`, or the env name).
fn assert_names_key(out: &str, section: &str, key: &str) {
    let lower = out.to_ascii_lowercase();
    let dotted = format!("{section}.{key}");
    let env = format!("hark_{section}__{key}");
    assert!(
        lower.contains(&dotted)
            || lower.contains(&env)
            || (lower.contains(section) && lower.contains(key)),
        "error output does not name {dotted}:\n{out}"
    );
}

fn expect_file_error(overrides: &[(&str, &str)], section: &str, key: &str) {
    let d = Daemon::prepare(overrides, app());
    let (code, out) = serve_expect_exit(Some(&d.config_path), &[], Duration::from_secs(10));
    assert!(
        code.is_some_and(|c| c != 0),
        "exit code {code:?} for {overrides:?}"
    );
    assert_names_key(&out, section, key);
}

fn expect_env_error(env: &[(&str, &str)], section: &str, key: &str) {
    let d = Daemon::prepare(&[], app());
    let (code, out) = serve_expect_exit(Some(&d.config_path), env, Duration::from_secs(10));
    assert!(
        code.is_some_and(|c| c != 0),
        "exit code {code:?} for {env:?}"
    );
    assert_names_key(&out, section, key);
}

#[test]
fn env_sip_listen_nonsense_names_sip_listen() {
    expect_env_error(&[("HARK_SIP__LISTEN", "nonsense")], "sip", "listen");
}

#[test]
fn env_rtp_port_min_not_a_number_names_it() {
    expect_env_error(&[("HARK_RTP__PORT_MIN", "lots")], "rtp", "port_min");
}

#[test]
fn port_min_above_port_max_is_rejected() {
    expect_file_error(
        &[("rtp.port_min", "40000"), ("rtp.port_max", "39000")],
        "rtp",
        "port_m",
    );
}

#[test]
fn voice_method_put_is_rejected() {
    expect_file_error(&[("app.voice_method", "PUT")], "app", "voice_method");
}

#[test]
fn env_voice_method_put_is_rejected() {
    expect_env_error(&[("HARK_APP__VOICE_METHOD", "PUT")], "app", "voice_method");
}

#[test]
fn http_listen_without_port_is_rejected() {
    expect_file_error(&[("http.listen", "127.0.0.1")], "http", "listen");
}

#[test]
fn public_url_not_a_url_is_rejected() {
    expect_file_error(&[("http.public_url", "not a url")], "http", "public_url");
}

#[test]
fn t1_of_zero_is_rejected() {
    expect_file_error(&[("sip.t1_ms", "0")], "sip", "t1_ms");
}

/// The message names exactly `key` (`config key \`sip.tcp_…\`: …`) and says `why`.
fn expect_key_message(overrides: &[(&str, &str)], env: &[(&str, &str)], key: &str, why: &str) {
    let d = Daemon::prepare(overrides, app());
    let (code, out) = serve_expect_exit(Some(&d.config_path), env, Duration::from_secs(10));
    assert_eq!(code, Some(2), "exit code for {overrides:?} {env:?}:\n{out}");
    assert!(
        out.contains(&format!("config key `{key}`: ")) && out.contains(why),
        "error output names `{key}` and says {why:?}:\n{out}"
    );
}

#[test]
fn account_sid_that_is_no_account_sid_is_rejected() {
    for bad in [
        "AC1",
        "RE0123456789abcdef0123456789abcdef",
        "AC0123456789abcdef0123456789abcdeg",
    ] {
        expect_key_message(
            &[("account.sid", bad)],
            &[],
            "account.sid",
            &format!("{bad:?} is not AC followed by 32 hex digits"),
        );
    }
}

#[test]
fn sip_tcp_caps_and_idle_timeout_are_validated() {
    expect_key_message(
        &[("sip.tcp_max_connections", "0")],
        &[],
        "sip.tcp_max_connections",
        "0 is outside 1..=1000000",
    );
    expect_key_message(
        &[
            ("sip.tcp_max_connections", "10"),
            ("sip.tcp_max_connections_per_source", "11"),
        ],
        &[],
        "sip.tcp_max_connections_per_source",
        "11 is outside 1..=sip.tcp_max_connections (10)",
    );
    expect_key_message(
        &[],
        &[("HARK_SIP__TCP_MAX_CONNECTIONS_PER_SOURCE", "0")],
        "sip.tcp_max_connections_per_source",
        "0 is outside",
    );
    expect_key_message(
        &[("sip.tcp_idle_timeout_secs", "0")],
        &[],
        "sip.tcp_idle_timeout_secs",
        "0 is outside 1..=86400 seconds",
    );
}

#[test]
fn env_tcp_idle_timeout_not_a_number_names_it() {
    expect_env_error(
        &[("HARK_SIP__TCP_IDLE_TIMEOUT_SECS", "never")],
        "sip",
        "tcp_idle_timeout_secs",
    );
}

#[test]
fn unknown_key_is_rejected() {
    expect_file_error(&[("sip.lisen", "127.0.0.1:5060")], "sip", "lisen");
}

#[test]
fn missing_config_file_is_an_error() {
    let tmp = TempDir::new("nocfg");
    let missing = tmp.join("does-not-exist.toml");
    let (code, out) = serve_expect_exit(Some(&missing), &[], Duration::from_secs(10));
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
    assert!(
        out.contains("does-not-exist.toml"),
        "names the file:\n{out}"
    );
}

#[test]
fn broken_toml_is_an_error() {
    let tmp = TempDir::new("badtoml");
    let p = tmp.join("bad.toml");
    std::fs::write(&p, "[sip\nlisten = \n").expect("write");
    let (code, out) = serve_expect_exit(Some(&p), &[], Duration::from_secs(10));
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
    assert!(!out.trim().is_empty(), "says why");
}

#[test]
fn retention_keys_are_validated() {
    expect_file_error(
        &[("storage.retention_days", "-1")],
        "storage",
        "retention_days",
    );
    expect_file_error(
        &[("storage.retention_days", "40000")],
        "storage",
        "retention_days",
    );
    expect_file_error(
        &[("bot.recording_retention", "forever")],
        "bot",
        "recording_retention",
    );
    expect_env_error(
        &[("HARK_BOT__RECORDING_RETENTION", "sometimes")],
        "bot",
        "recording_retention",
    );
}

#[test]
fn wav_codec_other_than_pcm16_or_ulaw_is_rejected() {
    expect_file_error(&[("record.wav_codec", "flac")], "record", "wav_codec");
    expect_env_error(&[("HARK_RECORD__WAV_CODEC", "alaw")], "record", "wav_codec");
}

#[test]
fn assemblyai_engine_needs_a_key_and_an_http_url() {
    expect_file_error(
        &[("transcription.engine", "assemblyai")],
        "transcription",
        "assemblyai_api_key",
    );
    expect_file_error(
        &[
            ("transcription.engine", "assemblyai"),
            ("transcription.assemblyai_api_key", "k"),
            ("transcription.assemblyai_url", "ftp://x"),
        ],
        "transcription",
        "assemblyai_url",
    );
    expect_env_error(
        &[
            ("HARK_TRANSCRIPTION__ENGINE", "assemblyai"),
            ("HARK_TRANSCRIPTION__ASSEMBLYAI_API_KEY", "k"),
            ("HARK_TRANSCRIPTION__ASSEMBLYAI_POLL_MS", "5"),
        ],
        "transcription",
        "assemblyai_poll_ms",
    );
}

#[test]
fn offline_engine_keys_are_validated() {
    // A model directory without model.bin is refused at start, not at the first transcription.
    let empty = TempDir::new("not-a-model");
    expect_file_error(
        &[("transcription.model", empty.path.to_str().unwrap())],
        "transcription",
        "model",
    );
    expect_env_error(
        &[("HARK_TRANSCRIPTION__THREADS", "65")],
        "transcription",
        "threads",
    );
    expect_file_error(
        &[("transcription.chunk_secs", "2")],
        "transcription",
        "chunk_secs",
    );
    expect_file_error(
        &[("transcription.beam_size", "0")],
        "transcription",
        "beam_size",
    );
    let long_prompt = "word ".repeat(120);
    expect_file_error(
        &[("transcription.prompt", long_prompt.as_str())],
        "transcription",
        "prompt",
    );
}

/// Like `expect_key_message`, with raw TOML appended to the config (`[[api_key]]` and
/// `[[application]]` tables, which overrides cannot say).
fn expect_appended_error(toml: &str, key: &str, why: &str) {
    let d = Daemon::prepare(&[], app());
    d.append_config(toml);
    let (code, out) = serve_expect_exit(Some(&d.config_path), &[], Duration::from_secs(10));
    assert_eq!(code, Some(2), "exit code for {toml}:\n{out}");
    assert!(
        out.contains(&format!("config key `{key}`: ")) && out.contains(why),
        "error output names `{key}` and says {why:?}:\n{out}"
    );
}

const SK1: &str = "SK0123456789abcdef0123456789abcdef";
const AP1: &str = "AP0123456789abcdef0123456789abcdef";

#[test]
fn api_keys_with_bad_sids_duplicates_or_empty_secrets_are_rejected() {
    for bad in ["SK1", "AP0123456789abcdef0123456789abcdef", ""] {
        expect_appended_error(
            &format!("\n[[api_key]]\nsid = \"{bad}\"\nsecret = \"s\"\n"),
            "api_key.sid",
            &format!("entry 1: {bad:?} is not SK followed by 32 hex digits"),
        );
    }
    expect_appended_error(
        &format!(
            "\n[[api_key]]\nsid = \"{SK1}\"\nsecret = \"s\"\n\
             [[api_key]]\nsid = \"{SK1}\"\nsecret = \"t\"\n"
        ),
        "api_key.sid",
        &format!("entry 2: \"{SK1}\" is already entry 1"),
    );
    expect_appended_error(
        &format!("\n[[api_key]]\nsid = \"{SK1}\"\nsecret = \"\"\n"),
        "api_key.secret",
        "must not be empty",
    );
}

#[test]
fn applications_with_bad_sids_duplicates_or_no_twiml_are_rejected() {
    let twiml = "twiml = \"<Response><Hangup/></Response>\"\n";
    expect_appended_error(
        &format!("\n[[application]]\nsid = \"{SK1}\"\n{twiml}"),
        "application.sid",
        &format!("entry 1: \"{SK1}\" is not AP followed by 32 hex digits"),
    );
    expect_appended_error(
        &format!(
            "\n[[application]]\nsid = \"{AP1}\"\n{twiml}[[application]]\nsid = \"{AP1}\"\n{twiml}"
        ),
        "application.sid",
        &format!("entry 2: \"{AP1}\" is already entry 1"),
    );
    expect_appended_error(
        &format!("\n[[application]]\nsid = \"{AP1}\"\n"),
        "application.twiml",
        "needed when application.voice_url is empty",
    );
    expect_appended_error(
        &format!("\n[[application]]\nsid = \"{AP1}\"\n{twiml}status_callback_method = \"PUT\"\n"),
        "application.status_callback_method",
        "is not POST or GET",
    );
}

#[test]
fn client_dev_tokens_must_be_a_boolean() {
    expect_env_error(
        &[("HARK_CLIENT__DEV_TOKENS", "maybe")],
        "client",
        "dev_tokens",
    );
}

#[test]
fn tls_cert_and_key_go_together_and_must_be_usable_pem() {
    let tmp = TempDir::new("tls-cfg");
    let (cert, key) = common::tls::self_signed_cert(&tmp, "a");
    let (_, other_key) = common::tls::self_signed_cert(&tmp, "b");
    let junk = tmp.join("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    )
    .expect("write junk");
    let missing = tmp.join("missing.pem");
    let path = |p: &std::path::Path| p.display().to_string();
    let (cert, key, other_key, junk, missing) = (
        path(&cert),
        path(&key),
        path(&other_key),
        path(&junk),
        path(&missing),
    );
    // One without the other, from the file or from the environment.
    expect_key_message(
        &[("http.tls_cert", &cert)],
        &[],
        "http.tls_key",
        "both or neither",
    );
    expect_key_message(
        &[],
        &[("HARK_HTTP__TLS_KEY", &key)],
        "http.tls_cert",
        "both or neither",
    );
    // Unreadable, not PEM, a key that is not the certificate's.
    expect_key_message(
        &[("http.tls_cert", &missing), ("http.tls_key", &key)],
        &[],
        "http.tls_cert",
        "missing.pem",
    );
    expect_key_message(
        &[("http.tls_cert", &cert), ("http.tls_key", &missing)],
        &[],
        "http.tls_key",
        "missing.pem",
    );
    expect_key_message(
        &[("http.tls_cert", &junk), ("http.tls_key", &key)],
        &[],
        "http.tls_cert",
        "not a PEM certificate",
    );
    expect_key_message(
        &[("http.tls_cert", &cert), ("http.tls_key", &cert)],
        &[],
        "http.tls_key",
        "no usable PEM private key",
    );
    expect_key_message(
        &[("http.tls_cert", &cert), ("http.tls_key", &other_key)],
        &[],
        "http.tls_key",
        "does not go with the certificate",
    );
}

#[test]
fn users_with_bad_names_duplicates_or_empty_passwords_are_rejected() {
    for bad in ["", "bob smith", "bob@host", "<bob>"] {
        expect_appended_error(
            &format!("\n[[user]]\nusername = \"{bad}\"\npassword = \"p\"\n"),
            "user.username",
            &format!("entry 1 ({bad:?}): a SIP user part"),
        );
    }
    expect_appended_error(
        "\n[[user]]\nusername = \"bob\"\npassword = \"p\"\n[[user]]\nusername = \"bob\"\npassword = \"q\"\n",
        "user.username",
        "entry 2: bob is listed twice",
    );
    expect_appended_error(
        "\n[[user]]\nusername = \"bob\"\npassword = \"\"\n",
        "user.password",
        "entry 1 (bob): must not be empty",
    );
}
