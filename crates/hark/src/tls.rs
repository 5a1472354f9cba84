//! HTTPS for the HTTP listener (`http.tls_cert`, `http.tls_key`): the PEM files are read and
//! checked at start-up, and [`TlsListener`] hands axum TLS streams instead of TCP ones.
//!
//! rustls with the ring provider chosen explicitly: aws-lc-rs will be linked too (str0m's DTLS),
//! and with two providers compiled in rustls cannot pick a process default by itself.
//! tokio-rustls rather than axum-server: it is already in the build (through reqwest), and
//! `axum::serve` keeps working unchanged (graceful stop, connection upgrades for `/signal`).

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Why the certificate or key cannot serve HTTPS; `key` is the config key to blame.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct TlsConfigError {
    pub key: &'static str,
    pub message: String,
}

fn error(key: &'static str, message: String) -> TlsConfigError {
    TlsConfigError { key, message }
}

/// A rustls server config (ring, TLS 1.2 and 1.3, HTTP/1.1 by ALPN) for the certificate chain
/// in `cert` and the private key in `key`, both PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    let mut config = rustls_config(cert, key, ("http.tls_cert", "http.tls_key"))?;
    // The router speaks HTTP/1.1 only (axum built without http2); WebSocket needs it anyway.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The same for SIP over TLS (`sip.tls_cert`, `sip.tls_key`): no ALPN, SIP has none.
pub fn sip_server_config(
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    rustls_config(cert, key, ("sip.tls_cert", "sip.tls_key")).map(Arc::new)
}

fn rustls_config(
    cert: &Path,
    key: &Path,
    keys: (&'static str, &'static str),
) -> Result<rustls::ServerConfig, TlsConfigError> {
    let (cert_key, key_key) = keys;
    // Read first so a missing file says so, not "no items found".
    let cert_pem =
        std::fs::read(cert).map_err(|e| error(cert_key, format!("{}: {e}", cert.display())))?;
    let key_pem =
        std::fs::read(key).map_err(|e| error(key_key, format!("{}: {e}", key.display())))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            error(
                cert_key,
                format!("{}: not a PEM certificate: {e}", cert.display()),
            )
        })?;
    if chain.is_empty() {
        return Err(error(
            cert_key,
            format!("{}: no PEM CERTIFICATE in the file", cert.display()),
        ));
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        error(
            key_key,
            format!(
                "{}: no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
                key.display()
            ),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error(cert_key, format!("TLS set-up: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            error(
                key_key,
                format!(
                    "{} does not go with the certificate in {}: {e}",
                    key.display(),
                    cert.display()
                ),
            )
        })
}

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP accept plus TLS handshake, as an `axum::serve` listener. Handshakes run concurrently (a
/// slow client does not hold up the others); dropping the listener closes the socket and
/// abandons handshakes in progress.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> TlsListener {
        TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(config),
            handshakes: JoinSet::new(),
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // Both branches are cancel-safe: nothing is lost if axum drops this future.
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let acceptor = self.acceptor.clone();
                        self.handshakes.spawn(async move {
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => Some((tls, peer)),
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                    None
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    None
                                }
                            }
                        });
                    }
                    Err(e) => accept_error(e).await,
                },
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(conn)) = done {
                        return conn;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// As axum's own TCP listener does: a reset connection is nothing; anything else (out of file
/// descriptors, say) is logged and waited out instead of spinning.
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "HTTPS accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
