//! Throw-away TLS material for HTTPS tests, made at test time with the `openssl` CLI.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::TempDir;

/// A self-signed P-256 certificate for `127.0.0.1` (CN and IP SAN), valid one day:
/// `(cert.pem, key.pem)` in `dir`, named after `name`. `CA:FALSE` because `req -x509` makes a CA
/// certificate by default, which webpki (rustls, so reqwest) refuses as a server's own
/// (`CaUsedAsEndEntity`); browsers and Python do not mind either way.
pub fn self_signed_cert(dir: &TempDir, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(&format!("{name}-cert.pem"));
    let key = dir.join(&format!("{name}-key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-days",
            "1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl (the openssl CLI makes the test certificate)");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}
