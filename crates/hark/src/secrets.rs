//! The account's auth token when the config sets none, and the refusal to serve the API beyond
//! loopback with a token anyone could guess.
//!
//! A daemon started without `account.auth_token` generates one (128 random bits, 32 hex digits
//! like Twilio's), stores it in `account.auth_token_file` (default `{storage.dir}/auth_token`)
//! created with mode 0600, and says where; later starts read it from there.

use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::Config;

#[derive(Debug, Error)]
pub enum SecretsError {
    #[error("config key `account.auth_token_file`: {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config key `account.auth_token_file`: {0} is empty; delete it to have a new token generated")]
    EmptyTokenFile(PathBuf),
    #[error("config key `{key}`: too weak to serve the API on {listen} (not loopback): {why}. Use 16 or more random characters (e.g. `openssl rand -hex 16`), or listen on 127.0.0.1")]
    Weak {
        key: &'static str,
        listen: std::net::SocketAddr,
        why: &'static str,
    },
}

/// Defaults and examples that must never guard an API reachable from the network.
const KNOWN_WEAK: [&str; 12] = [
    "changeme",
    "change-me",
    "password",
    "secret",
    "admin",
    "token",
    "default",
    "test",
    "hark",
    "twilio",
    "123456",
    "letmein",
];

/// Why `secret` is too weak for a network-facing API, if it is.
pub fn weakness(secret: &str) -> Option<&'static str> {
    let lower = secret.trim().to_ascii_lowercase();
    if KNOWN_WEAK.iter().any(|w| lower.contains(w)) && lower.len() < 24 {
        return Some("it is (or contains) a well-known default");
    }
    if lower.chars().count() < 16 {
        return Some("it is shorter than 16 characters");
    }
    let mut distinct: Vec<char> = lower.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 6 {
        return Some("it repeats fewer than 6 different characters");
    }
    None
}

/// Where a generated token is kept.
pub fn token_path(config: &Config) -> PathBuf {
    config
        .auth_token_file
        .clone()
        .unwrap_or_else(|| config.storage_dir.join("auth_token"))
}

/// Fills in `config.auth_token` from its file (generating the file on first start), then
/// checks every API secret when `http.listen` is not loopback.
pub fn settle(config: &mut Config) -> Result<(), SecretsError> {
    if config.auth_token.is_empty() {
        let path = token_path(config);
        config.auth_token = load_or_generate(&path)?;
    } else if weakness(&config.auth_token).is_some() {
        tracing::warn!(
            "account.auth_token is weak; acceptable only while the API listens on loopback"
        );
    }
    let listen = config.http_listen;
    if listen.ip().is_loopback() {
        return Ok(());
    }
    let mut secrets: Vec<(&'static str, &str)> = vec![("account.auth_token", &config.auth_token)];
    secrets.extend(
        config
            .api_keys
            .iter()
            .map(|k| ("api_key.secret", k.secret.as_str())),
    );
    if !config.bot_api_token.is_empty() {
        secrets.push(("bot.api_token", &config.bot_api_token));
    }
    secrets.extend(
        config
            .voice_log
            .tokens
            .iter()
            .map(|t| ("transcripts.api_token", t.token.as_str())),
    );
    for (key, secret) in secrets {
        if let Some(why) = weakness(secret) {
            return Err(SecretsError::Weak { key, listen, why });
        }
    }
    Ok(())
}

fn load_or_generate(path: &Path) -> Result<String, SecretsError> {
    let io = |source| SecretsError::TokenFile {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim().to_string();
            if token.is_empty() {
                return Err(SecretsError::EmptyTokenFile(path.to_path_buf()));
            }
            tighten(path).map_err(io)?;
            tracing::info!(file = %path.display(), "account auth token read from its file");
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let token: String = (0..16)
                .map(|_| format!("{:02x}", rand::random::<u8>()))
                .collect();
            let mut file = create_private(path).map_err(io)?;
            writeln!(file, "{token}").map_err(io)?;
            file.sync_all().map_err(io)?;
            tracing::warn!(
                file = %path.display(),
                "account.auth_token was not set: generated a new one and stored it in this file (mode 0600); REST clients and webhook signatures use it"
            );
            // Also on stderr without the log's formatting, for the operator at the console.
            eprintln!(
                "hark: generated the account auth token; it is in {} (mode 0600)",
                path.display()
            );
            Ok(token)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// A token file others can read is made private again (and said so).
#[cfg(unix)]
fn tighten(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        tracing::warn!(file = %path.display(), old_mode = format!("{mode:o}"), "auth token file was readable by others; made it 0600");
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_secrets_are_named_and_random_ones_pass() {
        for weak in [
            "changeme",
            "CHANGEME",
            "password123",
            "short",
            "aaaaaaaaaaaaaaaaaaaa",
            "abababababababababab",
        ] {
            assert!(weakness(weak).is_some(), "{weak}");
        }
        for strong in [
            "9f86d081884c7d659a2feaa0c55ad015",
            "correct-horse-battery-staple",
        ] {
            assert_eq!(weakness(strong), None, "{strong}");
        }
    }

    fn config_in(dir: &Path, extra: &str) -> Config {
        let text = format!(
            "[storage]\ndir = {:?}\n[account]\nauth_token = \"\"\n{extra}",
            dir.display().to_string()
        );
        let file = dir.join("hark.toml");
        std::fs::create_dir_all(dir).expect("dir");
        std::fs::write(&file, text).expect("config");
        Config::load(Some(&file)).expect("valid config")
    }

    #[cfg(unix)]
    #[test]
    fn a_missing_token_is_generated_once_into_a_private_file_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("hark-secrets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut first = config_in(&dir, "");
        settle(&mut first).expect("generated");
        assert_eq!(first.auth_token.len(), 32);
        assert!(first.auth_token.chars().all(|c| c.is_ascii_hexdigit()));
        let path = dir.join("auth_token");
        let mode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut second = config_in(&dir, "");
        settle(&mut second).expect("read back");
        assert_eq!(second.auth_token, first.auth_token);
        // Loosened by hand: made private again on the next start.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let mut third = config_in(&dir, "");
        settle(&mut third).expect("read back");
        let mode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_weak_token_is_refused_beyond_loopback_only() {
        let dir = std::env::temp_dir().join(format!("hark-secrets-weak-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut local = config_in(&dir, "");
        local.auth_token = "changeme".into();
        settle(&mut local).expect("loopback: allowed, with a warning");
        let mut public = config_in(&dir, "");
        public.auth_token = "changeme".into();
        public.http_listen = "0.0.0.0:8080".parse().expect("addr");
        let err = settle(&mut public).expect_err("refused");
        assert!(err.to_string().contains("`account.auth_token`"), "{err}");
        public.auth_token = "9f86d081884c7d659a2feaa0c55ad015".into();
        public.bot_api_token = "bot".into();
        let err = settle(&mut public).expect_err("refused");
        assert!(err.to_string().contains("`bot.api_token`"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
