//! Recording media in S3-compatible object storage (`storage.backend = "s3"`). A recording is
//! written to the node's disk while the call runs; when it ends, [`ObjectStorage::upload_file`]
//! copies it to the bucket and checks what the bucket holds (size, and the MD5 ETag of a
//! single-part upload) before the caller may delete the local file. Reads are ranged, so any
//! node can serve any recording with `Range`.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use md5::{Digest, Md5};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};
use thiserror::Error;
use tokio::io::AsyncReadExt;

pub mod testing;

/// Above this, uploads go in parts (a 1-hour 8 kHz mono WAV is 57.6 MB: one PUT).
pub const SINGLE_PUT_MAX: u64 = 64 * 1024 * 1024;
/// S3's minimum part size is 5 MiB.
pub const PART_SIZE: usize = 16 * 1024 * 1024;

/// `[storage.s3]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Settings {
    /// `http(s)://host:port` of the S3 API; empty means AWS itself (by region).
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO, Garage,
    /// s3s-fs and most self-hosted servers need it).
    pub path_style: bool,
}

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("storage.s3: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("object storage {op} {key}: {source}")]
    Remote {
        op: &'static str,
        key: String,
        source: object_store::Error,
    },
    #[error("object {key} is not in the bucket")]
    NotFound { key: String },
    /// The bucket holds something other than what was sent.
    #[error("upload of {key} not verified: {detail}")]
    Verify { key: String, detail: String },
}

/// What a verified upload left in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub size: u64,
    pub e_tag: Option<String>,
}

#[derive(Clone)]
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    /// `s3://bucket at endpoint`, for logs.
    shown: String,
}

impl std::fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl ObjectStorage {
    /// A client for `settings`; nothing is sent until the first request.
    pub fn s3(settings: &S3Settings) -> Result<ObjectStorage, StorageError> {
        if settings.bucket.trim().is_empty() {
            return Err(StorageError::Config("bucket is empty".to_owned()));
        }
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(if settings.region.is_empty() {
                "us-east-1"
            } else {
                &settings.region
            })
            .with_virtual_hosted_style_request(!settings.path_style)
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(120))
                    .with_allow_http(settings.endpoint.starts_with("http://")),
            )
            // Bounded: a node whose bucket is down queues the upload and retries it later
            // rather than hold a call's `action` request for minutes.
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: 3,
                retry_timeout: Duration::from_secs(20),
            });
        if !settings.access_key_id.is_empty() {
            b = b
                .with_access_key_id(&settings.access_key_id)
                .with_secret_access_key(&settings.secret_access_key);
        }
        if !settings.endpoint.is_empty() {
            b = b.with_endpoint(settings.endpoint.trim_end_matches('/'));
        }
        let store = b.build().map_err(|e| StorageError::Config(e.to_string()))?;
        let at = if settings.endpoint.is_empty() {
            format!("AWS {}", settings.region)
        } else {
            settings.endpoint.clone()
        };
        Ok(ObjectStorage {
            store: Arc::new(store),
            shown: format!("s3://{} at {at}", settings.bucket),
        })
    }

    fn path(key: &str) -> Result<ObjectPath, StorageError> {
        ObjectPath::parse(key).map_err(|e| StorageError::Config(format!("object key {key}: {e}")))
    }

    fn remote<'k>(
        op: &'static str,
        key: &'k str,
    ) -> impl Fn(object_store::Error) -> StorageError + 'k {
        move |source| match source {
            object_store::Error::NotFound { .. } => StorageError::NotFound {
                key: key.to_owned(),
            },
            source => StorageError::Remote {
                op,
                key: key.to_owned(),
                source,
            },
        }
    }

    /// Copies the file at `path` to `key` and checks the bucket's copy; only then may the
    /// caller delete the file.
    pub async fn upload_file(&self, key: &str, path: &Path) -> Result<Uploaded, StorageError> {
        let io = |source| StorageError::Io {
            path: path.display().to_string(),
            source,
        };
        let location = Self::path(key)?;
        let mut file = tokio::fs::File::open(path).await.map_err(io)?;
        let size = file.metadata().await.map_err(io)?.len();
        let expected_md5 = if size <= SINGLE_PUT_MAX {
            let mut data = Vec::with_capacity(size as usize);
            file.read_to_end(&mut data).await.map_err(io)?;
            if data.len() as u64 != size {
                return Err(StorageError::Verify {
                    key: key.to_owned(),
                    detail: format!("the file changed while read ({size} then {})", data.len()),
                });
            }
            let md5 = hex(&Md5::digest(&data));
            self.store
                .put(&location, PutPayload::from(Bytes::from(data)))
                .await
                .map_err(Self::remote("put", key))?;
            Some(md5)
        } else {
            let upload = self
                .store
                .put_multipart(&location)
                .await
                .map_err(Self::remote("start multipart upload", key))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut buf = vec![0u8; 1024 * 1024];
            let mut sent = 0u64;
            loop {
                let n = file.read(&mut buf).await.map_err(io)?;
                if n == 0 {
                    break;
                }
                // Bounds the parts in flight (memory) to a few.
                writer
                    .wait_for_capacity(4)
                    .await
                    .map_err(Self::remote("upload part", key))?;
                writer.write(&buf[..n]);
                sent += n as u64;
            }
            if sent != size {
                writer.abort().await.ok();
                return Err(StorageError::Verify {
                    key: key.to_owned(),
                    detail: format!("the file changed while read ({size} then {sent})"),
                });
            }
            writer
                .finish()
                .await
                .map_err(Self::remote("complete multipart upload", key))?;
            None
        };
        let meta = self
            .store
            .head(&location)
            .await
            .map_err(Self::remote("head", key))?;
        if meta.size != size {
            return Err(StorageError::Verify {
                key: key.to_owned(),
                detail: format!("bucket holds {} bytes, file has {size}", meta.size),
            });
        }
        if let (Some(md5), Some(tag)) = (&expected_md5, &meta.e_tag) {
            let tag = tag.trim_matches('"');
            // Servers that encrypt or compute ETags otherwise send no MD5: only a 32-hex ETag
            // is a digest to compare.
            if tag.len() == 32
                && tag.bytes().all(|b| b.is_ascii_hexdigit())
                && !tag.eq_ignore_ascii_case(md5)
            {
                return Err(StorageError::Verify {
                    key: key.to_owned(),
                    detail: format!("ETag {tag} is not the MD5 {md5} of the file"),
                });
            }
        }
        Ok(Uploaded {
            size,
            e_tag: meta.e_tag,
        })
    }

    /// The object's size, or `None` if it is not there.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        match self.store.head(&Self::path(key)?).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Self::remote("head", key)(e)),
        }
    }

    /// Bytes `range` of the object.
    pub async fn read_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        self.store
            .get_range(&Self::path(key)?, range)
            .await
            .map_err(Self::remote("get range", key))
    }

    /// The whole object, written to `dest` through a temporary file beside it (a reader never
    /// sees half a file). Returns its size.
    pub async fn download(&self, key: &str, dest: &Path) -> Result<u64, StorageError> {
        let got = self
            .store
            .get(&Self::path(key)?)
            .await
            .map_err(Self::remote("get", key))?;
        let bytes = got.bytes().await.map_err(Self::remote("get", key))?;
        let tmp = dest.with_extension("download");
        let io = |source| StorageError::Io {
            path: tmp.display().to_string(),
            source,
        };
        tokio::fs::write(&tmp, &bytes).await.map_err(io)?;
        tokio::fs::rename(&tmp, dest).await.map_err(io)?;
        Ok(bytes.len() as u64)
    }

    /// Removes the object; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&Self::path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Self::remote("delete", key)(e)),
        }
    }
}

/// How the names of temporary local copies of objects end (`{key stem}.{unique}.fetched.wav`):
/// a node removes any such file at start-up, a crash having cut off the job that used it.
pub const FETCHED_SUFFIX: &str = ".fetched.wav";

/// A file name for a temporary local copy of recording `sid`, never shared by two copies (a
/// transcription and an MP3 encode may fetch the same recording at once).
pub fn fetched_name(sid: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{sid}.{}-{n}{FETCHED_SUFFIX}", std::process::id())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
