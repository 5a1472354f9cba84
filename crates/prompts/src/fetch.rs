//! Audio for `<Play>`: http(s) and file URLs, WAV / MP3 / AU / raw µ-law in any rate and channel
//! count, decoded once to 8 kHz mono and cached.
//!
//! HTTP answers are cached by URL and revalidated with `If-None-Match` / `If-Modified-Since`
//! (a 304 reuses the decoded samples); `Cache-Control: max-age` skips the request while fresh,
//! `no-store` keeps nothing. Local files are re-read when their size or mtime changes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{
    HeaderMap, AGE, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED,
};
use reqwest::StatusCode;
use thiserror::Error;

use crate::cache::{lock, Lru, SingleFlight};
use crate::decode::{decode, detect};

const USER_AGENT: &str = concat!("Hark/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone, Error)]
pub enum AudioError {
    #[error("{url}: only http://, https:// and file:// URLs and absolute paths can be played")]
    UnsupportedUrl { url: String },
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{url}: {found}")]
    Format { url: String, found: String },
    #[error(
        "{url}: unknown audio format (Content-Type {content_type:?}); Hark plays WAV, MP3, AU \
         and raw µ-law"
    )]
    UnknownFormat { url: String, content_type: String },
    #[error("GET {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url} failed: {message}")]
    Fetch { url: String, message: String },
    #[error("{url}: larger than the {limit}-byte limit for audio")]
    TooLarge { url: String, limit: usize },
}

/// Limits for `<Play>` audio.
#[derive(Debug, Clone)]
pub struct AudioConfig {
    /// Decoded samples kept in memory (2 bytes per sample), across all URLs.
    pub cache_bytes: usize,
    /// Largest file or HTTP body accepted.
    pub max_bytes: usize,
    /// Whole HTTP request, body included.
    pub fetch_timeout: Duration,
    /// Longer audio is cut (with a warning).
    pub max_seconds: u32,
}

impl Default for AudioConfig {
    fn default() -> Self {
        Self {
            cache_bytes: 64 << 20,
            max_bytes: 20 << 20,
            fetch_timeout: Duration::from_secs(15),
            max_seconds: 1200,
        }
    }
}

#[derive(Clone)]
struct Entry {
    samples: Arc<[i16]>,
    validator: Validator,
}

#[derive(Clone, PartialEq)]
enum Validator {
    File {
        modified: Option<SystemTime>,
        len: u64,
    },
    Http {
        etag: Option<String>,
        last_modified: Option<String>,
        /// Until then the entry is used without asking the server.
        fresh_until: Option<Instant>,
    },
}

enum Source {
    File(PathBuf),
    Http(String),
}

type LoadResult = Result<Arc<[i16]>, AudioError>;

/// Decoded prompts by URL; prompts are small and reused across calls.
pub struct AudioCache {
    client: reqwest::Client,
    config: AudioConfig,
    entries: Mutex<Lru<String, Entry>>,
    flights: SingleFlight<String, LoadResult>,
}

impl Default for AudioCache {
    /// Its own HTTP client (5 s connect timeout) and default limits.
    fn default() -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(USER_AGENT)
            .build()
            .unwrap_or_default();
        Self::new(client, AudioConfig::default())
    }
}

impl AudioCache {
    /// `client` may be shared with webhooks; `config.fetch_timeout` applies per request.
    pub fn new(client: reqwest::Client, config: AudioConfig) -> Self {
        Self {
            client,
            entries: Mutex::new(Lru::new(config.cache_bytes)),
            config,
            flights: SingleFlight::default(),
        }
    }

    /// 8 kHz mono samples of `url` (http, https, file or an absolute path). Concurrent loads
    /// of one URL share a single fetch and decode.
    pub async fn load(&self, url: &str) -> Result<Arc<[i16]>, AudioError> {
        let url = url.trim();
        let source = source(url)?;
        self.flights
            .run(url.to_string(), || async {
                match source {
                    Source::File(path) => self.load_file(url, path).await,
                    Source::Http(target) => self.load_http(url, &target).await,
                }
            })
            .await
    }

    /// Bytes of decoded audio held.
    pub fn cached_bytes(&self) -> usize {
        lock(&self.entries).bytes()
    }

    fn cached(&self, key: &str) -> Option<Entry> {
        lock(&self.entries).get(&key.to_string())
    }

    fn store(&self, key: &str, samples: &Arc<[i16]>, validator: Validator) {
        let weight = samples.len() * 2 + key.len() + 64;
        let entry = Entry {
            samples: samples.clone(),
            validator,
        };
        lock(&self.entries).insert(key.to_string(), entry, weight);
    }

    async fn load_file(&self, key: &str, path: PathBuf) -> LoadResult {
        let read_err = |e: std::io::Error| AudioError::Read {
            path: path.clone(),
            message: e.to_string(),
        };
        let meta = tokio::fs::metadata(&path).await.map_err(read_err)?;
        let validator = Validator::File {
            modified: meta.modified().ok(),
            len: meta.len(),
        };
        if let Some(hit) = self.cached(key).filter(|e| e.validator == validator) {
            return Ok(hit.samples);
        }
        if meta.len() > self.config.max_bytes as u64 {
            return Err(AudioError::TooLarge {
                url: key.to_string(),
                limit: self.config.max_bytes,
            });
        }
        let bytes = tokio::fs::read(&path).await.map_err(read_err)?;
        let samples = self
            .decode(key, bytes, None, path.to_string_lossy().into_owned())
            .await?;
        self.store(key, &samples, validator);
        Ok(samples)
    }

    async fn load_http(&self, key: &str, target: &str) -> LoadResult {
        let cached = self.cached(key);
        let mut request = self.client.get(target).timeout(self.config.fetch_timeout);
        if let Some(Entry {
            samples,
            validator:
                Validator::Http {
                    etag,
                    last_modified,
                    fresh_until,
                },
        }) = &cached
        {
            if fresh_until.is_some_and(|t| Instant::now() < t) {
                return Ok(samples.clone());
            }
            if let Some(etag) = etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(date) = last_modified {
                request = request.header(IF_MODIFIED_SINCE, date);
            }
        }
        let fetch_err = |e: reqwest::Error| AudioError::Fetch {
            url: target.to_string(),
            message: error_chain(&e),
        };
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                if let Some(stale) = cached {
                    // The origin is unreachable: the last good copy beats silence.
                    tracing::warn!(url = %target, error = %error_chain(&e), "audio revalidation failed; playing the cached copy");
                    return Ok(stale.samples);
                }
                return Err(fetch_err(e));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let policy = CachePolicy::from_headers(&headers);
        if status == StatusCode::NOT_MODIFIED {
            if let Some(Entry {
                samples,
                validator:
                    Validator::Http {
                        etag,
                        last_modified,
                        ..
                    },
            }) = cached
            {
                let validator = Validator::Http {
                    etag: header_text(&headers, ETAG).or(etag),
                    last_modified: header_text(&headers, LAST_MODIFIED).or(last_modified),
                    fresh_until: policy.fresh_until(),
                };
                self.store(key, &samples, validator);
                return Ok(samples);
            }
        }
        if !status.is_success() {
            lock(&self.entries).remove(&key.to_string());
            return Err(AudioError::Status {
                url: target.to_string(),
                status: status.as_u16(),
            });
        }
        let limit = self.config.max_bytes;
        let too_large = || AudioError::TooLarge {
            url: target.to_string(),
            limit,
        };
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let final_path = response.url().path().to_string();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fetch_err)? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let content_type = header_text(&headers, CONTENT_TYPE);
        let samples = self.decode(target, body, content_type, final_path).await?;
        if policy.no_store {
            lock(&self.entries).remove(&key.to_string());
        } else {
            let validator = Validator::Http {
                etag: header_text(&headers, ETAG),
                last_modified: header_text(&headers, LAST_MODIFIED),
                fresh_until: policy.fresh_until(),
            };
            self.store(key, &samples, validator);
        }
        Ok(samples)
    }

    async fn decode(
        &self,
        url: &str,
        bytes: Vec<u8>,
        content_type: Option<String>,
        path: String,
    ) -> LoadResult {
        let Some(kind) = detect(&bytes, content_type.as_deref(), &path) else {
            return Err(AudioError::UnknownFormat {
                url: url.to_string(),
                content_type: content_type.unwrap_or_default(),
            });
        };
        let max_seconds = self.config.max_seconds;
        let format_err = |found: String| AudioError::Format {
            url: url.to_string(),
            found,
        };
        // Decoding and resampling a long file takes milliseconds to seconds: keep it off the
        // runtime threads.
        let decoded = tokio::task::spawn_blocking(move || decode(&bytes, kind, max_seconds))
            .await
            .map_err(|e| format_err(format!("decoder failed: {e}")))?
            .map_err(format_err)?;
        if decoded.truncated {
            tracing::warn!(url, max_seconds, "audio longer than the limit; cut");
        }
        Ok(decoded.samples.into())
    }
}

fn source(url: &str) -> Result<Source, AudioError> {
    let unsupported = || AudioError::UnsupportedUrl {
        url: url.to_string(),
    };
    if url.starts_with('/') {
        return Ok(Source::File(PathBuf::from(url)));
    }
    let parsed = url::Url::parse(url).map_err(|_| unsupported())?;
    match parsed.scheme() {
        "http" | "https" => Ok(Source::Http(parsed.to_string())),
        "file" => {
            let path = parsed.to_file_path().map_err(|()| unsupported())?;
            Ok(Source::File(path))
        }
        _ => Err(unsupported()),
    }
}

fn header_text(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `e` and its sources, `: `-separated (reqwest hides the cause, e.g. "connection refused").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The simple subset of `Cache-Control` (RFC 9111 §5.2.2): `no-store`, `no-cache`,
/// `max-age`, minus `Age`. `Expires` is not read.
#[derive(Debug, Default, PartialEq)]
struct CachePolicy {
    no_store: bool,
    /// Seconds the answer stays fresh; `None` = revalidate every time.
    max_age: Option<u64>,
}

impl CachePolicy {
    fn from_headers(headers: &HeaderMap) -> Self {
        let mut policy = CachePolicy::default();
        let mut no_cache = false;
        for value in headers.get_all(CACHE_CONTROL) {
            let Ok(value) = value.to_str() else { continue };
            for directive in value.split(',') {
                let directive = directive.trim().to_ascii_lowercase();
                if directive == "no-store" {
                    policy.no_store = true;
                } else if directive == "no-cache" || directive.starts_with("no-cache=") {
                    no_cache = true;
                } else if let Some(secs) = directive.strip_prefix("max-age=") {
                    policy.max_age = secs.trim_matches('"').parse().ok();
                }
            }
        }
        if no_cache {
            policy.max_age = None;
        }
        let age: u64 = header_text(headers, AGE)
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        policy.max_age = policy
            .max_age
            .map(|m| m.saturating_sub(age))
            .filter(|&m| m > 0);
        policy
    }

    fn fresh_until(&self) -> Option<Instant> {
        // Capped at a day so a huge max-age cannot overflow the Instant.
        self.max_age
            .map(|secs| Instant::now() + Duration::from_secs(secs.min(86_400)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::path::Path;

    use axum::extract::State;
    use axum::http::{HeaderMap as AxumHeaders, StatusCode as AxumStatus, Uri};
    use axum::response::{IntoResponse, Response};

    fn wav_16bit(rate: u32, samples: &[i16]) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut cursor = std::io::Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
            for &s in samples {
                w.write_sample(s).unwrap();
            }
            w.finalize().unwrap();
        }
        cursor.into_inner()
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hark-audio-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[derive(Clone, Default)]
    struct Route {
        body: Vec<u8>,
        content_type: Option<&'static str>,
        etag: Option<&'static str>,
        last_modified: Option<&'static str>,
        cache_control: Option<&'static str>,
        delay_ms: u64,
    }

    /// What the server saw: path, If-None-Match, If-Modified-Since.
    type Seen = (String, Option<String>, Option<String>);

    #[derive(Default)]
    struct Origin {
        routes: Mutex<HashMap<String, Route>>,
        seen: Mutex<Vec<Seen>>,
    }

    impl Origin {
        fn set(&self, path: &str, route: Route) {
            lock(&self.routes).insert(path.to_string(), route);
        }
        fn seen(&self) -> Vec<Seen> {
            lock(&self.seen).clone()
        }
    }

    async fn serve(State(origin): State<Arc<Origin>>, uri: Uri, headers: AxumHeaders) -> Response {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (inm, ims) = (text("if-none-match"), text("if-modified-since"));
        lock(&origin.seen).push((uri.path().to_string(), inm.clone(), ims.clone()));
        let Some(route) = lock(&origin.routes).get(uri.path()).cloned() else {
            return AxumStatus::NOT_FOUND.into_response();
        };
        tokio::time::sleep(Duration::from_millis(route.delay_ms)).await;
        let mut out = AxumHeaders::new();
        let mut put = |name: &'static str, value: Option<&'static str>| {
            if let Some(v) = value {
                out.insert(name, v.parse().unwrap());
            }
        };
        put("content-type", route.content_type);
        put("etag", route.etag);
        put("last-modified", route.last_modified);
        put("cache-control", route.cache_control);
        let unchanged = (inm.is_some() && inm.as_deref() == route.etag)
            || (ims.is_some() && ims.as_deref() == route.last_modified);
        if unchanged {
            return (AxumStatus::NOT_MODIFIED, out).into_response();
        }
        (AxumStatus::OK, out, route.body).into_response()
    }

    async fn origin() -> (Arc<Origin>, SocketAddr) {
        let origin = Arc::new(Origin::default());
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(origin.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (origin, addr)
    }

    fn tone() -> Vec<i16> {
        crate::resample::tests::sine(1000.0, 16000, 1600, 8000.0)
    }

    #[tokio::test]
    async fn file_url_and_path_decode_to_8k_and_reload_only_when_the_file_changes() {
        let dir = temp_dir("file");
        let path = dir.join("greeting one.wav");
        std::fs::write(&path, wav_16bit(16000, &tone())).unwrap();
        let cache = AudioCache::default();
        let url = url::Url::from_file_path(&path).unwrap().to_string();
        assert!(url.contains("%20"));
        let first = cache.load(&url).await.unwrap();
        assert_eq!(first.len(), 800);
        assert!(Arc::ptr_eq(&first, &cache.load(&url).await.unwrap()));
        let by_path = cache.load(path.to_str().unwrap()).await.unwrap();
        assert_eq!(&*by_path, &*first);
        // A different size means a different file.
        std::fs::write(&path, wav_16bit(8000, &[5; 100])).unwrap();
        assert_eq!(&*cache.load(&url).await.unwrap(), &[5i16; 100][..]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn missing_file_and_unsupported_scheme_are_errors() {
        let cache = AudioCache::default();
        let err = cache
            .load("/nonexistent/hark/prompt.wav")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AudioError::Read { path, .. } if path == Path::new("/nonexistent/hark/prompt.wav"))
        );
        let err = cache.load("ftp://example.com/a.wav").await.unwrap_err();
        assert!(matches!(err, AudioError::UnsupportedUrl { .. }));
        let err = cache.load("prompt.wav").await.unwrap_err();
        assert!(matches!(err, AudioError::UnsupportedUrl { .. }));
    }

    #[tokio::test]
    async fn etag_revalidation_304_reuses_the_decoded_samples() {
        let (origin, addr) = origin().await;
        origin.set(
            "/p.wav",
            Route {
                body: wav_16bit(16000, &tone()),
                content_type: Some("audio/wav"),
                etag: Some("\"v1\""),
                ..Route::default()
            },
        );
        let cache = AudioCache::default();
        let url = format!("http://{addr}/p.wav");
        let first = cache.load(&url).await.unwrap();
        assert_eq!(first.len(), 800);
        let second = cache.load(&url).await.unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        let seen = origin.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].1, None);
        assert_eq!(seen[1].1.as_deref(), Some("\"v1\""));
        // A new version is fetched and decoded again.
        origin.set(
            "/p.wav",
            Route {
                body: wav_16bit(8000, &[9; 40]),
                etag: Some("\"v2\""),
                ..Route::default()
            },
        );
        assert_eq!(&*cache.load(&url).await.unwrap(), &[9i16; 40][..]);
        assert_eq!(origin.seen().len(), 3);
    }

    #[tokio::test]
    async fn last_modified_revalidation_sends_if_modified_since() {
        let (origin, addr) = origin().await;
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        origin.set(
            "/lm",
            Route {
                body: wav_16bit(8000, &[3; 10]),
                last_modified: Some(date),
                ..Route::default()
            },
        );
        let cache = AudioCache::default();
        let url = format!("http://{addr}/lm");
        let first = cache.load(&url).await.unwrap();
        let second = cache.load(&url).await.unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(origin.seen()[1].2.as_deref(), Some(date));
    }

    #[tokio::test]
    async fn max_age_skips_the_request_and_no_store_keeps_nothing() {
        let (origin, addr) = origin().await;
        let body = wav_16bit(8000, &[1; 10]);
        origin.set(
            "/fresh.wav",
            Route {
                body: body.clone(),
                etag: Some("\"a\""),
                cache_control: Some("public, max-age=600"),
                ..Route::default()
            },
        );
        origin.set(
            "/never.wav",
            Route {
                body,
                etag: Some("\"b\""),
                cache_control: Some("no-store"),
                ..Route::default()
            },
        );
        let cache = AudioCache::default();
        for _ in 0..3 {
            cache
                .load(&format!("http://{addr}/fresh.wav"))
                .await
                .unwrap();
            cache
                .load(&format!("http://{addr}/never.wav"))
                .await
                .unwrap();
        }
        let seen = origin.seen();
        let count = |p: &str| seen.iter().filter(|s| s.0 == p).count();
        assert_eq!(count("/fresh.wav"), 1);
        assert_eq!(count("/never.wav"), 3);
        assert!(seen.iter().all(|s| s.1.is_none()), "{seen:?}");
    }

    #[test]
    fn cache_control_subset() {
        let policy = |values: &[&str], age: Option<&str>| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(CACHE_CONTROL, v.parse().unwrap());
            }
            if let Some(a) = age {
                h.insert(AGE, a.parse().unwrap());
            }
            CachePolicy::from_headers(&h)
        };
        let p = |no_store, max_age| CachePolicy { no_store, max_age };
        assert_eq!(policy(&["max-age=60"], None), p(false, Some(60)));
        assert_eq!(
            policy(&["Public, MAX-AGE=\"60\""], Some("20")),
            p(false, Some(40))
        );
        assert_eq!(policy(&["max-age=60"], Some("90")), p(false, None));
        assert_eq!(policy(&["max-age=60", "no-cache"], None), p(false, None));
        assert_eq!(policy(&["no-store"], None), p(true, None));
        assert_eq!(policy(&["max-age=abc"], None), p(false, None));
        assert_eq!(policy(&[], None), p(false, None));
    }

    #[tokio::test]
    async fn http_errors_name_the_url_and_status() {
        let (_origin, addr) = origin().await;
        let cache = AudioCache::default();
        let url = format!("http://{addr}/missing.wav");
        let err = cache.load(&url).await.unwrap_err();
        assert!(matches!(&err, AudioError::Status { status: 404, .. }));
        assert_eq!(err.to_string(), format!("GET {url} answered HTTP 404"));

        // Nobody listens on a port we just released.
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let url = format!("http://{free}/a.wav");
        let err = cache.load(&url).await.unwrap_err();
        assert!(
            matches!(&err, AudioError::Fetch { url: u, .. } if *u == url),
            "{err}"
        );
    }

    #[tokio::test]
    async fn bodies_over_the_size_limit_are_refused() {
        let (origin, addr) = origin().await;
        origin.set(
            "/big.wav",
            Route {
                body: wav_16bit(8000, &[0; 2000]),
                ..Route::default()
            },
        );
        let config = AudioConfig {
            max_bytes: 1000,
            ..AudioConfig::default()
        };
        let cache = AudioCache::new(reqwest::Client::new(), config);
        let err = cache
            .load(&format!("http://{addr}/big.wav"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, AudioError::TooLarge { limit: 1000, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn format_comes_from_magic_header_or_extension() {
        let (origin, addr) = origin().await;
        origin.set(
            "/blob",
            Route {
                body: wav_16bit(8000, &[4; 8]),
                content_type: Some("application/octet-stream"),
                ..Route::default()
            },
        );
        origin.set(
            "/tone",
            Route {
                body: vec![0xFF, 0x80, 0xFF],
                content_type: Some("audio/basic"),
                ..Route::default()
            },
        );
        origin.set(
            "/raw.ulaw",
            Route {
                body: vec![0x80, 0xFF],
                content_type: Some("application/octet-stream"),
                ..Route::default()
            },
        );
        origin.set(
            "/page",
            Route {
                body: b"<html></html>".to_vec(),
                content_type: Some("text/html"),
                ..Route::default()
            },
        );
        let cache = AudioCache::default();
        let url = |p: &str| format!("http://{addr}{p}");
        assert_eq!(&*cache.load(&url("/blob")).await.unwrap(), &[4i16; 8][..]);
        assert_eq!(
            &*cache.load(&url("/tone")).await.unwrap(),
            &[0i16, 32124, 0][..]
        );
        assert_eq!(
            &*cache.load(&url("/raw.ulaw")).await.unwrap(),
            &[32124i16, 0][..]
        );
        let err = cache.load(&url("/page")).await.unwrap_err();
        assert!(
            matches!(&err, AudioError::UnknownFormat { content_type, .. } if content_type == "text/html")
        );
    }

    #[tokio::test]
    async fn concurrent_first_loads_share_one_fetch() {
        let (origin, addr) = origin().await;
        origin.set(
            "/slow.wav",
            Route {
                body: wav_16bit(
                    22050,
                    &crate::resample::tests::sine(440.0, 22050, 22050, 5000.0),
                ),
                delay_ms: 100,
                ..Route::default()
            },
        );
        let cache = Arc::new(AudioCache::default());
        let url = format!("http://{addr}/slow.wav");
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let (cache, url) = (cache.clone(), url.clone());
                tokio::spawn(async move { cache.load(&url).await })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap().unwrap());
        }
        assert_eq!(results[0].len(), 8000);
        assert!(results.iter().all(|r| Arc::ptr_eq(r, &results[0])));
        assert_eq!(origin.seen().len(), 1);
    }
}
