//! Against a real S3 server (s3s-fs on loopback): uploads are verified, reads are ranged,
//! failures say which object and leave the local file alone.

use std::path::Path;

use media_store::testing::S3Server;
use media_store::{ObjectStorage, StorageError, SINGLE_PUT_MAX};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Deterministic bytes that differ at every offset modulo 251.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap();
}

#[test]
fn upload_is_verified_and_any_range_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"), "recordings").unwrap();
    let storage = ObjectStorage::s3(&server.settings()).unwrap();
    let data = pattern(100_003);
    let file = dir.path().join("RE1.wav");
    write(&file, &data);
    rt().block_on(async {
        let up = storage.upload_file("RE1.wav", &file).await.unwrap();
        assert_eq!(up.size, 100_003);
        assert_eq!(storage.size("RE1.wav").await.unwrap(), Some(100_003));
        assert_eq!(storage.size("RE2.wav").await.unwrap(), None);
        for range in [0..44, 44..100_003, 99_999..100_003, 5000..5001] {
            let got = storage.read_range("RE1.wav", range.clone()).await.unwrap();
            assert_eq!(&got[..], &data[range.start as usize..range.end as usize]);
        }
        let back = dir.path().join("back.wav");
        assert_eq!(storage.download("RE1.wav", &back).await.unwrap(), 100_003);
        assert_eq!(std::fs::read(&back).unwrap(), data);
        storage.delete("RE1.wav").await.unwrap();
        assert_eq!(storage.size("RE1.wav").await.unwrap(), None);
        // Deleting what is gone is fine; reading it is NotFound.
        storage.delete("RE1.wav").await.unwrap();
        assert!(matches!(
            storage.read_range("RE1.wav", 0..4).await,
            Err(StorageError::NotFound { .. })
        ));
    });
    // The server keeps objects as files: the deleted one is gone from its disk too.
    assert!(!server.bucket_dir().join("RE1.wav").exists());
}

#[test]
fn a_recording_over_the_single_put_limit_goes_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"), "recordings").unwrap();
    let storage = ObjectStorage::s3(&server.settings()).unwrap();
    let len = SINGLE_PUT_MAX as usize + 3 * 1024 * 1024 + 7;
    let data = pattern(len);
    let file = dir.path().join("REbig.wav");
    write(&file, &data);
    rt().block_on(async {
        let up = storage.upload_file("REbig.wav", &file).await.unwrap();
        assert_eq!(up.size, len as u64);
        let tail = storage
            .read_range("REbig.wav", len as u64 - 1000..len as u64)
            .await
            .unwrap();
        assert_eq!(&tail[..], &data[len - 1000..]);
    });
    assert_eq!(
        std::fs::read(server.bucket_dir().join("REbig.wav")).unwrap(),
        data
    );
}

#[test]
fn a_server_that_is_down_fails_the_upload_naming_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = S3Server::start(&dir.path().join("s3"), "recordings").unwrap();
    let settings = server.settings();
    server.stop();
    let storage = ObjectStorage::s3(&settings).unwrap();
    let file = dir.path().join("RE3.wav");
    write(&file, &pattern(1000));
    let err = rt()
        .block_on(storage.upload_file("RE3.wav", &file))
        .unwrap_err();
    assert!(
        matches!(err, StorageError::Remote { op: "put", ref key, .. } if key == "RE3.wav"),
        "{err:?}"
    );
    assert!(err.to_string().contains("RE3.wav"), "{err}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        pattern(1000),
        "the file is untouched"
    );
}

#[test]
fn wrong_credentials_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"), "recordings").unwrap();
    let mut settings = server.settings();
    settings.secret_access_key = "not-the-secret".into();
    let storage = ObjectStorage::s3(&settings).unwrap();
    let file = dir.path().join("RE4.wav");
    write(&file, b"RIFF");
    let err = rt()
        .block_on(storage.upload_file("RE4.wav", &file))
        .unwrap_err();
    assert!(matches!(err, StorageError::Remote { .. }), "{err:?}");
    assert!(!server.bucket_dir().join("RE4.wav").exists());
}

#[test]
fn an_empty_bucket_name_is_a_config_error() {
    let err = ObjectStorage::s3(&media_store::S3Settings::default()).unwrap_err();
    assert!(matches!(err, StorageError::Config(_)), "{err:?}");
}
