//! `hark serve`: binds the sockets, recovers recordings left by a crash, and runs until a signal.

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
    #[error("HTTP client: {0}")]
    Client(String),
}

pub async fn serve(config: Config) -> Result<(), ServeError> {
    let files =
        RecordingFiles::open(&config.storage_dir).map_err(|source| ServeError::Storage {
            dir: config.storage_dir.display().to_string(),
            source,
        })?;
    let database = config.database.clone();
    let store = tokio::task::spawn_blocking(move || store::Store::open(&database))
        .await
        .map_err(|e| ServeError::Client(e.to_string()))?
        .map_err(ServeError::Database)?;
    let store = Arc::new(store);
    let metrics = Arc::new(http_api::Metrics::default());
    let outbox = Outbox::new(store.clone(), metrics.clone());
    let webhooks = Webhooks::new(
        config.auth_token.clone(),
        config.webhook_connect_timeout,
        config.webhook_timeout,
    )
    .map_err(|e| ServeError::Client(e.to_string()))?;

    let bind = |key, addr| move |source| ServeError::Bind { key, addr, source };
    let udp = UdpSocket::bind(config.sip_listen)
        .await
        .map_err(bind("sip.listen", config.sip_listen))?;
    let tcp = TcpListener::bind(config.sip_listen)
        .await
        .map_err(bind("sip.listen", config.sip_listen))?;
    let http_listener = TcpListener::bind(config.http_listen)
        .await
        .map_err(bind("http.listen", config.http_listen))?;

    // Live call control: the registry of running calls and the key of recording access tokens
    // (random per start: tokens do not survive a restart, like Graph's short-lived ones).
    let registry = Arc::new(crate::live::Registry::default());
    let bot_token_secret: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
    let bot = http_api::control::BotApi {
        api_token: config.bot_api_token.clone(),
        token_secret: bot_token_secret.clone(),
        token_ttl_secs: config.recording_token_ttl.as_secs(),
        control: Arc::new(crate::live::DaemonControl {
            registry: Arc::downgrade(&registry),
            store: store.clone(),
            account_sid: config.account_sid.clone(),
        }),
    };
    let readiness = http_api::Readiness::default();
    let (router, recording_deleter) = http_api::router_and_deleter(Arc::new(http_api::ApiState {
        account_sid: config.account_sid.clone(),
        auth_token: config.auth_token.clone(),
        media_auth: config.media_auth,
        store: store.clone(),
        storage_dir: config.storage_dir.clone(),
        public_url: config.http_public_url.clone(),
        metrics: metrics.clone(),
        voice_log: config.voice_log.clone(),
        bot: Some(bot),
        readiness: readiness.clone(),
    }));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(http_listener, router).await {
            tracing::error!(error = %e, "HTTP listener stopped");
        }
    });
    tokio::spawn(outbox.clone().run(webhooks.clone()));

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (sip, sip_commands) = sip_task::channel();
    let mut endpoint_config = EndpointConfig::new(SocketAddr::new(
        advertised_sip_ip(&config),
        config.sip_listen.port(),
    ));
    endpoint_config.seed = rand::random();
    endpoint_config.media_ipv4 = config.rtp_ip4.is_some();
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
    crate::transcription::watch_readiness(engine.as_ref(), &config, readiness);
    let transcriber = Transcriber::new(engine, config.transcription.workers as usize);
    let services = Arc::new(Services {
        config: config.clone(),
        store,
        outbox,
        files,
        metrics,
        recording_deleter,
    });
    let shared = Arc::new(CallEnv {
        services: services.clone(),
        registry: registry.clone(),
        bot_token_secret: bot_token_secret.clone(),
        transcriber: transcriber.clone(),
        webhooks,
        sip,
        ports: PortAllocator::new(config.rtp_port_min, config.rtp_port_max),
        audio: Arc::new(AudioCache::new(
            reqwest::Client::builder()
                .connect_timeout(config.webhook_connect_timeout)
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
        active_calls: Default::default(),
    });
    recovery::recover(&services).await;
    // After recovery: a recording it has just completed gets its callbacks queued first.
    tokio::spawn(crate::retention::run(services.clone()));
    tokio::spawn(transcriber.run(services.clone()));
    let spawner_shared = shared.clone();
    let spawn_call: CallSpawner =
        Arc::new(move |incoming, events| call::spawn(spawner_shared.clone(), incoming, events));
    match shared.tts.version().await {
        Ok(v) => tracing::info!(engine = %v.lines().next().unwrap_or(""), "text to speech ready"),
        Err(e) => {
            tracing::warn!(error = %e, "text to speech unavailable: <Say> will be skipped (install espeak-ng)")
        }
    }
    tokio::spawn(sip_task::run(
        udp,
        tcp,
        endpoint_config,
        sip_commands,
        spawn_call,
    ));
    tracing::info!(
        sip = %shared.config.sip_listen,
        http = %shared.config.http_listen,
        rtp = %format!("{}-{}", shared.config.rtp_port_min, shared.config.rtp_port_max),
        storage = %shared.config.storage_dir.display(),
        "hark is serving"
    );

    wait_for_signal().await;
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
    Ok(())
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
