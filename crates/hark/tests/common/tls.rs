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
    openssl(&[
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
        &key.display().to_string(),
        "-out",
        &cert.display().to_string(),
    ]);
    (cert, key)
}

/// Runs the `openssl` CLI (which makes the test certificates); panics with its stderr.
fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl (the openssl CLI makes the test certificates)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throw-away CA and a server certificate it signed for `127.0.0.1`:
/// `(ca.pem, cert.pem, key.pem)` in `dir`. Clients trust the CA only, as with a real trunk.
pub fn ca_signed_cert(dir: &TempDir, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = dir.join(&format!("{name}-ca-key.pem"));
    let ca = dir.join(&format!("{name}-ca.pem"));
    let key = dir.join(&format!("{name}-key.pem"));
    let csr = dir.join(&format!("{name}.csr"));
    let cert = dir.join(&format!("{name}-cert.pem"));
    let ext = dir.join(&format!("{name}-ext.cnf"));
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write extensions");
    let p = |p: &PathBuf| p.display().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=Hark test CA",
        "-days",
        "1",
        "-keyout",
        &p(&ca_key),
        "-out",
        &p(&ca),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &p(&key),
        "-out",
        &p(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p(&csr),
        "-CA",
        &p(&ca),
        "-CAkey",
        &p(&ca_key),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &p(&ext),
        "-out",
        &p(&cert),
    ]);
    (ca, cert, key)
}
