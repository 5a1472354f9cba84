//! `hark serve`: binds the sockets, recovers recordings left by a crash, and runs until a signal
//! ([`serve`]) or a future the caller gives ([`serve_with`], on sockets the caller bound).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use prompts::{AudioCache, AudioConfig};
use sip_core::EndpointConfig;
use thiserror::Error;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use crate::call;
use crate::call_env::CallEnv;
use crate::config::{Config, EngineChoice};
use crate::media::PortAllocator;
use crate::outbox::Outbox;
use crate::recovery;
use crate::services::Services;
use crate::sip_task::{self, CallSpawner};
use crate::storage::RecordingFiles;
use crate::transcription::Transcriber;
use crate::webhook::Webhooks;

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("config key `{key}`: cannot bind {addr}: {source}")]
    Bind {
        key: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("config key `storage.dir`: {dir}: {source}")]
    Storage { dir: String, source: std::io::Error },
    #[error("config key `storage.database`: {0}")]
    Database(store::StoreError),
    #[error("config key `storage.database_url`: {0}")]
    DatabaseUrl(store::StoreError),
    #[error("HTTP client: {0}")]
    Client(String),
    #[error("{0}")]
    Secrets(#[from] crate::secrets::SecretsError),
}

/// The daemon's listening sockets, bound by the caller of [`serve_with`].
pub struct Listeners {
    /// SIP over UDP; its port is the one advertised in Via and Contact.
    pub sip_udp: UdpSocket,
    /// SIP over TCP, normally on the UDP socket's port.
    pub sip_tcp: TcpListener,
    pub http: TcpListener,
}

/// How often binding SIP's UDP and TCP sockets to one free port is tried (`sip.listen` port 0)
/// before giving up: another process can take the TCP side of the UDP socket's port.
const SAME_PORT_ATTEMPTS: usize = 32;

impl Listeners {
    /// Binds `sip.listen` (UDP and TCP) and `http.listen`. Port 0 takes a free port, the same
    /// one for SIP's UDP and TCP.
    pub async fn bind(config: &Config) -> Result<Listeners, ServeError> {
        let bind = |key, addr| move |source| ServeError::Bind { key, addr, source };
        let sip = config.sip_listen;
        let (sip_udp, sip_tcp) = if sip.port() != 0 {
            let udp = UdpSocket::bind(sip)
                .await
                .map_err(bind("sip.listen", sip))?;
            let tcp = TcpListener::bind(sip)
                .await
                .map_err(bind("sip.listen", sip))?;
            (udp, tcp)
        } else {
            let mut attempt = 1;
            loop {
                let udp = UdpSocket::bind(sip)
                    .await
                    .map_err(bind("sip.listen", sip))?;
                let port = udp.local_addr().map_err(bind("sip.listen", sip))?.port();
                let addr = SocketAddr::new(sip.ip(), port);
                match TcpListener::bind(addr).await {
                    Ok(tcp) => break (udp, tcp),
                    Err(e) if attempt < SAME_PORT_ATTEMPTS => {
                        tracing::debug!(port, error = %e, "TCP side of a free UDP port taken");
                        attempt += 1;
                    }
                    Err(e) => return Err(bind("sip.listen", sip)(e)),
                }
            }
        };
        let http = TcpListener::bind(config.http_listen)
            .await
            .map_err(bind("http.listen", config.http_listen))?;
        Ok(Listeners {
            sip_udp,
            sip_tcp,
            http,
        })
    }
}

/// `hark serve`: binds the configured addresses and runs until SIGTERM or SIGINT.
pub async fn serve(mut config: Config) -> Result<(), ServeError> {
    // Before binding: a weak token beyond loopback never listens at all.
    crate::secrets::settle(&mut config)?;
    let listeners = Listeners::bind(&config).await?;
    serve_with(config, listeners, wait_for_signal()).await
}

/// Runs the daemon on sockets bound by the caller until `shutdown` resolves; then drains (no new
/// calls; the calls up may end by themselves for up to `cluster.drain_timeout_secs`, or until a
/// second SIGTERM/SIGINT), hangs up the rest (recordings are finished, at most 10 s), stops the
/// listeners and returns.
pub async fn serve_with(
    mut config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    if config.auth_token.is_empty() {
        // Callers other than `serve` (embedders, tests) get the same token handling.
        crate::secrets::settle(&mut config)?;
    }
    let Listeners {
        sip_udp: udp,
        sip_tcp: tcp,
        http: http_listener,
    } = listeners;
    let local = |key, socket: std::io::Result<SocketAddr>, configured| {
        socket.map_err(|source| ServeError::Bind {
            key,
            addr: configured,
            source,
        })
    };
    let sip_udp_addr = local("sip.listen", udp.local_addr(), config.sip_listen)?;
    let sip_tcp_addr = local("sip.listen", tcp.local_addr(), config.sip_listen)?;
    let http_addr = local(
        "http.listen",
        http_listener.local_addr(),
        config.http_listen,
    )?;
    // A stable line: tests and scripts that listen on port 0 read their ports from it.
    tracing::info!(
        sip_udp = %sip_udp_addr,
        sip_tcp = %sip_tcp_addr,
        http = %http_addr,
        "listening"
    );
    if config.http_public_url.is_empty() {
        let scheme = if config.http_tls.is_some() {
            "https"
        } else {
            "http"
        };
        let mut base = http_addr;
        if base.ip().is_unspecified() {
            base.set_ip(if base.is_ipv4() {
                Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        config.http_public_url = format!("{scheme}://{base}");
    }
    let mut tasks = Tasks::default();

    let files =
        RecordingFiles::open(&config.storage_dir).map_err(|source| ServeError::Storage {
            dir: config.storage_dir.display().to_string(),
            source,
        })?;
    let database = config.database.clone();
    let database_url = config.database_url.clone();
    let shared_database = database_url.is_some();
    let store = tokio::task::spawn_blocking(move || match database_url {
        Some(url) => store::Store::connect_postgres(&url, store::POSTGRES_POOL_SIZE)
            .map_err(ServeError::DatabaseUrl),
        None => store::Store::open(&database).map_err(ServeError::Database),
    })
    .await
    .map_err(|e| ServeError::Client(e.to_string()))??;
    // Claims (callbacks, transcription jobs) last a lease; a job's lease outlasts the engine's
    // time limit so a slow job is never taken over while it runs.
    let lease_ms = config.cluster_lease.as_millis() as i64;
    let job_lease_ms = lease_ms + config.transcription.timeout.as_millis() as i64;
    let store = if shared_database {
        tracing::info!(node = %config.node_id, lease_s = config.cluster_lease.as_secs(), "shared database: this node's rows carry its name");
        store.with_node(config.node_id.clone(), lease_ms)
    } else {
        store.with_lease(lease_ms)
    }
    .with_job_lease(job_lease_ms);
    let store = Arc::new(store);
    let uploader = match &config.storage_backend {
        crate::config::StorageBackend::Local => None,
        crate::config::StorageBackend::S3(settings) => {
            let storage = media_store::ObjectStorage::s3(settings)
                .map_err(|e| ServeError::Client(format!("config key `storage.s3`: {e}")))?;
            tracing::info!(storage = ?storage, node = %config.node_id, "recordings go to object storage");
            Some(Arc::new(crate::uploads::Uploader::new(
                storage,
                config.node_id.clone(),
            )))
        }
    };
    let metrics = Arc::new(http_api::Metrics::default());
    for channel in [
        crate::live::CHANNEL_CONTROL,
        crate::outbox::CHANNEL_DONE,
        crate::media::CHANNEL_MEDIA_COMMANDS,
        crate::bot_notify::CHANNEL_BOT_NOTIFICATIONS,
    ] {
        metrics.channel_overflows.declare(channel);
    }
    let outbox = Outbox::new(store.clone(), metrics.clone());
    // The SSRF guard: private destinations only where the operator named them.
    let egress = Arc::new(crate::egress::Egress::new(
        config.webhook_allow_private.clone(),
    ));
    for text in config.operator_urls() {
        egress.trust_urls_in(text, false);
    }
    let webhooks = Webhooks::new(
        config.auth_token.clone(),
        config.webhook_connect_timeout,
        config.webhook_timeout,
        egress.clone(),
    )
    .map_err(|e| ServeError::Client(e.to_string()))?;

    // Live call control: the registry of running calls and the key of recording access tokens
    // (random per start: tokens do not survive a restart, like Graph's short-lived ones).
    let registry = Arc::new(crate::live::Registry::default());
    let clients = Arc::new(crate::signal::ClientRegistry::default());
    let signal = Arc::new(crate::signal::SignalState::new(&config, clients.clone()));
    let bot_token_secret: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
    let bot = http_api::control::BotApi {
        api_token: config.bot_api_token.clone(),
        token_secret: bot_token_secret.clone(),
        token_ttl_secs: config.recording_token_ttl.as_secs(),
        control: Arc::new(crate::live::DaemonControl {
            registry: Arc::downgrade(&registry),
            store: store.clone(),
            account_sid: config.account_sid.clone(),
            metrics: metrics.clone(),
            signal: signal.clone(),
            egress: egress.clone(),
        }),
    };
    let readiness = http_api::Readiness::default();
    let drain = http_api::DrainSwitch::default();
    let (router, recording_deleter) = http_api::router_and_deleter(Arc::new(http_api::ApiState {
        account_sid: config.account_sid.clone(),
        auth_token: config.auth_token.clone(),
        api_keys: config.api_keys.clone(),
        media_auth: config.media_auth,
        store: store.clone(),
        storage_dir: config.storage_dir.clone(),
        remote_media: uploader.as_ref().map(|u| u.storage().clone()),
        drain: drain.clone(),
        node_id: config.node_id.clone(),
        forwarder: if shared_database {
            Some(Arc::new(
                crate::cluster::Forwarder::new(store.clone(), config.node_id.clone())
                    .map_err(ServeError::Client)?,
            ))
        } else {
            None
        },
        public_url: config.http_public_url.clone(),
        metrics: metrics.clone(),
        voice_log: config.voice_log.clone(),
        bot: Some(bot),
        readiness: readiness.clone(),
    }));
    let router = router
        .merge(crate::signal::router(signal.clone()))
        // The API sees the client's address (the console limits failed sign-ins by it).
        .layer(axum::middleware::from_fn(
            |axum::extract::ConnectInfo(crate::signal::PeerAddr(peer)): axum::extract::ConnectInfo<
                crate::signal::PeerAddr,
            >,
             mut request: axum::extract::Request,
             next: axum::middleware::Next| async move {
                request.extensions_mut().insert(http_api::ClientAddr(peer));
                next.run(request).await
            },
        ))
        .into_make_service_with_connect_info::<crate::signal::PeerAddr>();
    match config.http_tls.as_ref() {
        Some(tls) => {
            let listener = crate::tls::TlsListener::new(http_listener, tls.server_config.clone());
            tasks.spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "HTTPS listener stopped");
                }
            });
        }
        None => tasks.spawn(async move {
            if let Err(e) = axum::serve(http_listener, router).await {
                tracing::error!(error = %e, "HTTP listener stopped");
            }
        }),
    }
    tasks.spawn(outbox.clone().run(webhooks.clone()));

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (sip, sip_commands) = sip_task::channel(metrics.clone());
    let mut endpoint_config = EndpointConfig::new(SocketAddr::new(
        advertised_sip_ip(&config),
        sip_udp_addr.port(),
    ));
    endpoint_config.seed = rand::random();
    endpoint_config.media_ipv4 = config.rtp_ip4.is_some();
    endpoint_config.opus = config.rtp_opus;
    endpoint_config.media_ipv6 = match config.rtp_ip6 {
        // The default on a wildcard listener: only if this host has IPv6 at all.
        Some(ip) if ip.is_unspecified() => {
            let usable = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok();
            if !usable {
                tracing::info!("no IPv6 on this host: IPv6 media offers are answered 488");
            }
            usable
        }
        ip => ip.is_some(),
    };
    endpoint_config.access = config.sip_access.clone();
    // SIP over TLS listens beside UDP/TCP (bound here: `Listeners` carries what every
    // daemon binds).
    let sip_tls = match &config.sip_tls {
        Some(tls) => {
            let listener =
                TcpListener::bind(tls.listen)
                    .await
                    .map_err(|source| ServeError::Bind {
                        key: "sip.tls_listen",
                        addr: tls.listen,
                        source,
                    })?;
            let bound = listener.local_addr().map_err(|source| ServeError::Bind {
                key: "sip.tls_listen",
                addr: tls.listen,
                source,
            })?;
            endpoint_config.tls_addr =
                Some(SocketAddr::new(advertised_sip_ip(&config), bound.port()));
            tracing::info!(sip_tls = %bound, "SIP over TLS listening");
            Some((listener, tls.server_config.clone()))
        }
        None => None,
    };
    endpoint_config.t1 = config.sip_t1;
    endpoint_config.t2 = (config.sip_t1 * 8)
        .min(Duration::from_secs(4))
        .max(config.sip_t1);
    let engine = match &config.transcription.engine {
        EngineChoice::None => None,
        EngineChoice::Offline => Some(transcribe::Engine::Offline(
            transcribe::offline::OfflineEngine::new(transcribe::offline::OfflineConfig {
                python: config.transcription.python.clone(),
                worker_script: config.transcription.worker_script.clone(),
                model: config.transcription.model.clone(),
                threads: config.transcription.threads as usize,
                beam_size: config.transcription.beam_size,
                chunk_secs: f64::from(config.transcription.chunk_secs),
                prompt: config.transcription.prompt.clone(),
                workers: config.transcription.workers as usize,
                timeout: config.transcription.timeout,
                ..Default::default()
            }),
        )),
        EngineChoice::OpenAi {
            url,
            model,
            api_key,
        } => {
            let engine = transcribe::openai::OpenAiEngine::new(transcribe::openai::OpenAiConfig {
                base_url: url.clone(),
                model: model.clone(),
                api_key: api_key.clone(),
                timeout: config.transcription.timeout,
            })
            .map_err(|e| {
                ServeError::Client(format!("config key `transcription.openai_url`: {e}"))
            })?;
            Some(transcribe::Engine::OpenAi(engine))
        }
        EngineChoice::AssemblyAi { url, api_key, poll } => {
            let engine =
                transcribe::assemblyai::AssemblyAiEngine::new(transcribe::AssemblyAiConfig {
                    base_url: url.clone(),
                    api_key: api_key.clone(),
                    timeout: config.transcription.timeout,
                    poll_interval: *poll,
                })
                .map_err(|e| {
                    ServeError::Client(format!("config key `transcription.assemblyai_url`: {e}"))
                })?;
            Some(transcribe::Engine::AssemblyAi(engine))
        }
    };
    crate::transcription::watch_readiness(engine.as_ref(), &config, readiness.clone());
    let transcriber = Transcriber::new(engine, config.transcription.workers as usize);
    let services = Arc::new(Services {
        config: config.clone(),
        store,
        outbox,
        files,
        metrics,
        recording_deleter,
        uploader: uploader.clone(),
    });
    let shared = Arc::new(CallEnv {
        services: services.clone(),
        registry: registry.clone(),
        bot_token_secret: bot_token_secret.clone(),
        transcriber: transcriber.clone(),
        webhooks,
        sip,
        ports: PortAllocator::new(config.rtp_port_min, config.rtp_port_max),
        egress: egress.clone(),
        audio: Arc::new(AudioCache::new(
            reqwest::Client::builder()
                .connect_timeout(config.webhook_connect_timeout)
                .redirect(egress.redirect_policy(10))
                .dns_resolver(egress.resolver())
                .user_agent(concat!("Hark/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| ServeError::Client(e.to_string()))?,
            AudioConfig {
                fetch_timeout: config.webhook_timeout,
                ..AudioConfig::default()
            },
        )),
        tts: Arc::new(prompts::Tts::new(prompts::TtsConfig {
            espeak_path: config.tts.espeak_path.clone().into(),
            rate_wpm: config.tts.rate_wpm,
            ..Default::default()
        })),
        beep: media_engine::tone::beep().into(),
        silence_second: vec![0i16; 8000].into(),
        shutdown: shutdown_rx,
        webrtc: webrtc_endpoint::LegConfig::new(config.rtp_opus)
            .map_err(|e| ServeError::Client(format!("WebRTC certificate: {e}")))?,
        clients: signal.clients.clone(),
        active_calls: Default::default(),
    });
    {
        // The drain switch (API, SIGTERM) reaches the SIP endpoint.
        let mut switch = drain.subscribe();
        let sip = shared.sip.clone();
        tasks.spawn(async move {
            loop {
                let on = *switch.borrow_and_update();
                sip.send(sip_task::SipCommand::Drain(on));
                if switch.changed().await.is_err() {
                    return;
                }
            }
        });
    }
    // Copies fetched from the bucket by a transcription or an MP3 encode that a crash cut off.
    let stale = services.files.remove_fetched();
    if stale > 0 {
        tracing::info!(
            files = stale,
            "removed temporary recording copies left by a crash"
        );
    }
    recovery::recover(&services).await;
    if shared_database {
        let api_url = if config.cluster_api_url.is_empty() {
            config.http_public_url.clone()
        } else {
            config.cluster_api_url.clone()
        };
        tasks.spawn(crate::cluster::run(
            services.clone(),
            api_url,
            drain.clone(),
            shared.shutdown.clone(),
        ));
        tasks.spawn(crate::cluster::watch_peer_calls(
            services.clone(),
            registry.clone(),
            shared.shutdown.clone(),
        ));
    }
    if let Some(uploader) = &uploader {
        // After recovery: recordings it has just completed are on disk, finished.
        uploader.sweep(&services).await;
        tasks.spawn(
            uploader
                .clone()
                .run(services.clone(), shared.shutdown.clone()),
        );
    }
    // After recovery: a recording it has just completed gets its callbacks queued first.
    tasks.spawn(crate::retention::run(services.clone()));
    tasks.spawn(transcriber.run(services.clone()));
    let _ = signal.calls.set(shared.clone());
    let spawner_shared = shared.clone();
    let spawn_call: CallSpawner =
        Arc::new(move |incoming, events| call::spawn(spawner_shared.clone(), incoming, events));
    // `/healthz` and the console show whether `<Say>` can speak.
    match shared.tts.version().await {
        Ok(v) => {
            let version = v.lines().next().unwrap_or("").to_string();
            tracing::info!(engine = %version, "text to speech ready");
            readiness.set(
                "tts",
                true,
                serde_json::json!({"engine": "espeak-ng", "version": version}),
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "text to speech unavailable: <Say> will be skipped (install espeak-ng)");
            readiness.set(
                "tts",
                false,
                serde_json::json!({"engine": "espeak-ng", "error": e.to_string()}),
            );
        }
    }
    // `[[user]]`s register (digest, nonces keyed per start); without any, REGISTER is 405.
    let registrar = (!shared.config.sip_users.is_empty()).then(|| {
        let config = sip_core::registrar::RegistrarConfig::new(
            shared.config.sip_realm.clone(),
            shared.config.sip_users.clone(),
        );
        sip_core::registrar::Registrar::new(config, rand::random())
    });
    tasks.spawn(sip_task::run(
        sip_task::SipSockets {
            udp,
            tcp,
            tcp_limits: shared.config.sip_tcp,
            tls: sip_tls,
        },
        endpoint_config,
        sip_commands,
        spawn_call,
        shared.metrics.clone(),
        registrar,
    ));
    tracing::info!(
        sip = %sip_udp_addr,
        http = %http_addr,
        public_url = %shared.config.http_public_url,
        rtp = %format!("{}-{}", shared.config.rtp_port_min, shared.config.rtp_port_max),
        storage = %shared.config.storage_dir.display(),
        "hark is serving"
    );

    shutdown.await;
    let active = shared.active_calls.load(Ordering::Relaxed);
    let drain_for = shared.config.drain_timeout;
    if active > 0 && !drain_for.is_zero() {
        drain.set(true);
        tracing::warn!(
            active_calls = active,
            timeout_s = drain_for.as_secs(),
            "draining: new calls are refused (503); waiting for the calls up to end (signal again to hang up now)"
        );
        let deadline = tokio::time::Instant::now() + drain_for;
        let again = wait_for_signal();
        tokio::pin!(again);
        while shared.active_calls.load(Ordering::Relaxed) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::select! {
                _ = &mut again => break,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }
    tracing::info!(
        active_calls = shared.active_calls.load(Ordering::Relaxed),
        "shutting down: finishing recordings and hanging up"
    );
    let _ = shutdown_tx.send(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while shared.active_calls.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the last BYEs leave.
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(tasks);
    Ok(())
}

/// The daemon's long-running tasks, stopped when [`serve_with`] returns (or fails half-way) so
/// its sockets close.
#[derive(Default)]
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Tasks {
    fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.0.push(tokio::spawn(task));
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The address in Via/Contact: `sip.public_ip`, the listen IP, or the primary local address.
fn advertised_sip_ip(config: &Config) -> IpAddr {
    if let Some(ip) = config.sip_public_ip {
        return ip;
    }
    let ip = config.sip_listen.ip();
    if !ip.is_unspecified() {
        return ip;
    }
    // No packet is sent: connect() on UDP only selects a route.
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
