//! A private S3 server for tests and the cluster script: `s3s-fs` (installed by
//! scripts/setup.sh: `cargo install s3s-fs@0.14.1 --features binary --locked`) serving a
//! temporary directory on 127.0.0.1 at a free port, killed when dropped.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::S3Settings;

pub const ACCESS_KEY: &str = "hark-test-key";
pub const SECRET_KEY: &str = "hark-test-secret-0123456789";

/// `s3s-fs` on PATH, else where `cargo install` puts it.
pub fn s3s_fs_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("s3s-fs"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        let p = home.join("bin").join("s3s-fs");
        p.is_file().then_some(p)
    })
}

pub struct S3Server {
    port: u16,
    root: PathBuf,
    child: Child,
    bucket: String,
}

impl S3Server {
    /// Starts the server with bucket `bucket` (a directory under its root) and waits until it
    /// accepts connections.
    pub fn start(root: &Path, bucket: &str) -> Result<S3Server, String> {
        let port = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("free port: {e}"))?;
        Self::start_on(root, bucket, port)
    }

    /// [`S3Server::start`] on a given port (a server that comes back where it was).
    pub fn start_on(root: &Path, bucket: &str, port: u16) -> Result<S3Server, String> {
        let bin = s3s_fs_binary().ok_or("s3s-fs is not installed; run scripts/setup.sh")?;
        std::fs::create_dir_all(root.join(bucket))
            .map_err(|e| format!("{}: {e}", root.display()))?;
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("s3s-fs: {e}"))?;
        let mut server = S3Server {
            port,
            root: root.to_path_buf(),
            child,
            bucket: bucket.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        while TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("s3s-fs exited: {status}"));
            }
            if Instant::now() >= deadline {
                return Err(format!("s3s-fs did not listen on {addr} within 20 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where the bucket's objects are files.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.join(&self.bucket)
    }

    pub fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint: self.endpoint(),
            bucket: self.bucket.clone(),
            region: "us-east-1".to_owned(),
            access_key_id: ACCESS_KEY.to_owned(),
            secret_access_key: SECRET_KEY.to_owned(),
            path_style: true,
        }
    }

    /// Stops the server (its port refuses connections afterwards) without removing data.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
