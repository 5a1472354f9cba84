//! A private PostgreSQL server for tests and the cluster script: `initdb` into a temporary
//! directory, `postgres` on 127.0.0.1 at a free port, stopped when the returned value is
//! dropped or, failing that, when the process that started it exits (a watchdog shell polls
//! its parent). Needs Debian's `postgresql` (scripts/setup.sh installs it). As root, the server
//! runs as the `postgres` user (it refuses root).

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::db::Db;
use crate::{Store, StoreError};

/// The bin directory of the newest PostgreSQL installed by Debian.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

pub struct PostgresServer {
    port: u16,
    dir: PathBuf,
    watchdog: Child,
}

static SCHEMAS: AtomicU32 = AtomicU32::new(0);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc_geteuid() == 0 }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// `program` as the `postgres` user when we are root (setpriv execs it: same PID).
fn as_postgres_argv(program: &Path) -> Vec<OsString> {
    let mut argv: Vec<OsString> = Vec::new();
    if is_root() {
        argv.extend(
            [
                "setpriv",
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ]
            .map(OsString::from),
        );
    }
    argv.push(program.into());
    argv
}

fn as_postgres(program: &Path) -> Command {
    let argv = as_postgres_argv(program);
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..]);
    c
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

impl PostgresServer {
    /// Starts a server with a trusted superuser `hark` and waits until it accepts connections.
    pub fn start() -> Result<PostgresServer, String> {
        let bin = postgres_bin_dir().ok_or(
            "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb); run scripts/setup.sh",
        )?;
        let dir = std::env::temp_dir().join(format!(
            "hark-pg-{}-{}",
            std::process::id(),
            SCHEMAS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !ok.success() {
                return Err(format!("chown postgres {} failed", dir.display()));
            }
        }
        let data = dir.join("data");
        let out = as_postgres(&bin.join("initdb"))
            .args([
                "-U",
                "hark",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let port = free_port()?;
        // The watchdog runs the server in the background and stops it (fast shutdown) when
        // either this process or the server is gone; it then removes the directory.
        let script = r#"
            "$@" & pg=$!
            while kill -0 "$PARENT" 2>/dev/null && kill -0 "$pg" 2>/dev/null; do sleep 1; done
            kill -INT "$pg" 2>/dev/null; wait "$pg"; rm -rf "$DIR"
        "#;
        let mut watchdog = Command::new("sh");
        watchdog
            .arg("-c")
            .arg(script)
            .arg("pg-watchdog")
            .args(as_postgres_argv(&bin.join("postgres")));
        let log = std::fs::File::create(dir.join("server.log"))
            .map_err(|e| format!("server log: {e}"))?;
        let child = watchdog
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(&dir)
            // Test data: no durability needed, speed matters.
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=200"])
            .env("PARENT", std::process::id().to_string())
            .env("DIR", &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("postgres: {e}"))?;
        let server = PostgresServer {
            port,
            dir,
            watchdog: child,
        };
        server.wait_ready(Duration::from_secs(30))?;
        Ok(server)
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port);
        loop {
            if TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200)).is_ok() {
                // Accepting TCP is not yet accepting logins: try one.
                match Store::connect_postgres(&self.url(), 1) {
                    Ok(_) => return Ok(()),
                    Err(e) if Instant::now() >= deadline => return Err(e.to_string()),
                    Err(_) => {}
                }
            }
            if Instant::now() >= deadline {
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                return Err(format!(
                    "PostgreSQL did not start on port {} within {}s: {log}",
                    self.port,
                    limit.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `postgres` database as the superuser `hark`.
    pub fn url(&self) -> String {
        format!("postgres://hark@127.0.0.1:{}/postgres", self.port)
    }

    /// A URL whose tables live in a new, empty schema: one per test, in one server.
    pub fn fresh_schema_url(&self) -> Result<String, StoreError> {
        let n = SCHEMAS.fetch_add(1, Ordering::Relaxed);
        let schema = format!("t{}_{n}", std::process::id());
        let admin = crate::pg::PgPool::connect(&self.url(), 1)?;
        admin.with(|db| db.batch("create schema", &format!("CREATE SCHEMA {schema}")))?;
        Ok(format!("{}?options=-csearch_path%3D{schema}", self.url()))
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // Stop the server (fast shutdown); the watchdog sees it go and removes the directory.
        let pid_file = self.dir.join("data").join("postmaster.pid");
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok()))
        {
            let _ = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.watchdog.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}
