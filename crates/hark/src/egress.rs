//! Where Hark's own HTTP requests may go (the SSRF guard of `<Play>`, `<Redirect>`, actions,
//! callbacks and `voice_url`): a TwiML document can name any URL, and a server that fetches
//! whatever it is told can be made to read the cloud's metadata service or a database port on
//! the private network.
//!
//! Public addresses are always allowed. Loopback, private, link-local, CGNAT and unique-local
//! addresses only when configured: in `webhook.allow_private` (networks), or when their host
//! is named by the operator — in the configuration (every application URL, and URLs written in
//! static TwiML) or in an authenticated API request (`Url`, `Twiml`, `StatusCallback`…). A
//! hostname is checked on every address it resolves to (a resolver that filters, so DNS
//! rebinding cannot slip through), an IP literal before the request and at each redirect.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use sip_core::access::{canonical, Cidr};
use thiserror::Error;

/// Hosts remembered from API requests at most (the config's are always kept).
const MAX_LEARNED_HOSTS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{url}: {host} is a private address; Hark does not fetch from private networks unless configured (webhook.allow_private, or name the host in the config)")]
pub struct Refused {
    pub url: String,
    pub host: String,
}

/// The policy, shared by every HTTP client of the daemon.
#[derive(Debug, Default)]
pub struct Egress {
    allow: Vec<Cidr>,
    hosts: RwLock<Hosts>,
}

#[derive(Debug, Default)]
struct Hosts {
    /// Lower-case host names and IP literals the operator named.
    names: HashSet<String>,
    /// The IP literals among them, for a name that resolves to one (`localhost`).
    ips: HashSet<IpAddr>,
    /// How many were learned from API requests (bounded).
    learned: usize,
}

/// Loopback, private, link-local, shared (CGNAT), unspecified, broadcast or unique-local.
pub fn is_private(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// The host of an http(s) URL, lower-case, without brackets.
fn url_host(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let host = parsed.host_str()?;
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
    )
}

impl Egress {
    /// Everything allowed (tests of other parts).
    pub fn allow_all() -> Self {
        Egress::new(vec![Cidr::any_v4(), Cidr::any_v6()])
    }

    pub fn new(allow: Vec<Cidr>) -> Self {
        Egress {
            allow,
            hosts: RwLock::default(),
        }
    }

    fn hosts(&self) -> std::sync::RwLockReadGuard<'_, Hosts> {
        self.hosts.read().unwrap_or_else(|p| p.into_inner())
    }

    fn add_host(&self, host: String, learned: bool) {
        let mut hosts = self.hosts.write().unwrap_or_else(|p| p.into_inner());
        if hosts.names.contains(&host) {
            return;
        }
        if learned {
            if hosts.learned >= MAX_LEARNED_HOSTS {
                return;
            }
            hosts.learned += 1;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            hosts.ips.insert(canonical(ip));
        }
        hosts.names.insert(host);
    }

    /// Trusts the hosts of every http(s) URL written in `text` (a URL, or TwiML with URLs in
    /// attributes and bodies). `learned`: from an API request rather than the config.
    pub fn trust_urls_in(&self, text: &str, learned: bool) {
        let mut rest = text;
        while let Some(i) = rest.find("http") {
            let candidate = &rest[i..];
            let end = candidate
                .find(|c: char| c.is_whitespace() || "\"'<>\\`".contains(c))
                .unwrap_or(candidate.len());
            if let Some(host) = url_host(&candidate[..end]) {
                self.add_host(host, learned);
            }
            rest = &candidate[4..];
        }
    }

    /// Whether a connection from a fetch of `host` may go to `ip`.
    pub fn ip_allowed(&self, host: &str, ip: IpAddr) -> bool {
        if !is_private(ip) || self.allow.iter().any(|c| c.contains(ip)) {
            return true;
        }
        let hosts = self.hosts();
        hosts.names.contains(&host.to_ascii_lowercase()) || hosts.ips.contains(&canonical(ip))
    }

    /// Checks a URL whose host is an IP literal (a name is checked when it resolves).
    pub fn check_url(&self, url: &str) -> Result<(), Refused> {
        let Some(host) = url_host(url) else {
            return Ok(());
        };
        match host.parse::<IpAddr>() {
            Ok(ip) if !self.ip_allowed(&host, ip) => Err(Refused {
                url: url.chars().take(200).collect(),
                host,
            }),
            _ => Ok(()),
        }
    }

    /// reqwest's resolver for clients under this policy.
    pub fn resolver(self: &Arc<Self>) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver(self.clone()))
    }

    /// A redirect policy that follows at most `max` redirects, none to a refused address.
    pub fn redirect_policy(self: &Arc<Self>, max: usize) -> reqwest::redirect::Policy {
        let egress = self.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= max {
                return attempt.error(format!("more than {max} redirects"));
            }
            match egress.check_url(attempt.url().as_str()) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            }
        })
    }
}

/// Resolves with the system resolver and keeps only the addresses the policy allows; a name
/// that resolves only to refused addresses is an error naming the guard.
pub struct GuardedResolver(Arc<Egress>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let egress = self.0.clone();
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| egress.ip_allowed(&host, a.ip()))
                .collect();
            if allowed.is_empty() && !found.is_empty() {
                let refused = Refused {
                    url: host.clone(),
                    host: found
                        .first()
                        .map(|a| a.ip().to_string())
                        .unwrap_or_default(),
                };
                return Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn private_ranges_are_private_and_public_ones_are_not() {
        for p in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip(p)), "{p}");
        }
        for p in [
            "8.8.8.8",
            "192.0.2.1",
            "2001:db8::1",
            "172.32.0.1",
            "100.128.0.1",
        ] {
            assert!(!is_private(ip(p)), "{p}");
        }
    }

    #[test]
    fn private_destinations_need_the_operator_to_name_them() {
        let egress = Egress::new(vec!["10.20.0.0/16".parse().expect("cidr")]);
        assert!(egress.check_url("https://93.184.216.34/x.wav").is_ok());
        assert!(egress
            .check_url("http://169.254.169.254/latest/meta-data/")
            .is_err());
        assert!(
            egress.check_url("http://10.20.3.4/ok.wav").is_ok(),
            "allow_private"
        );
        assert!(egress.check_url("http://10.21.3.4/no.wav").is_err());
        assert!(egress.check_url("http://[::1]:8080/x").is_err());
        egress.trust_urls_in(
            r#"<Response><Play>http://127.0.0.1:9000/a.wav</Play><Redirect>http://[::1]:80/r</Redirect></Response>"#,
            false,
        );
        assert!(egress
            .check_url("http://127.0.0.1:7000/other-port.wav")
            .is_ok());
        assert!(egress.check_url("http://[::1]:1/x").is_ok());
        assert!(egress.check_url("http://127.0.0.2/x").is_err());
        // A name the operator wrote may resolve to a private address; `localhost` reaching
        // 127.0.0.1 is allowed because 127.0.0.1 was named.
        egress.trust_urls_in("http://hooks.internal:8080/voice", true);
        assert!(egress.ip_allowed("hooks.internal", ip("10.9.9.9")));
        assert!(egress.ip_allowed("localhost", ip("127.0.0.1")));
        assert!(!egress.ip_allowed("evil.example", ip("192.168.0.1")));
        assert!(egress.ip_allowed("evil.example", ip("203.0.113.7")));
    }

    #[test]
    fn learned_hosts_are_bounded() {
        let egress = Egress::default();
        for i in 0..(MAX_LEARNED_HOSTS + 10) {
            egress.trust_urls_in(&format!("http://h{i}.example/"), true);
        }
        assert_eq!(egress.hosts().names.len(), MAX_LEARNED_HOSTS);
        egress.trust_urls_in("http://configured.example/", false);
        assert!(egress.hosts().names.contains("configured.example"));
    }
}

#[cfg(test)]
mod client_tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server on 127.0.0.1 answering one request with 200 `ok`.
    async fn one_shot() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            }
        });
        format!("http://{addr}/x")
    }

    #[tokio::test]
    async fn a_guarded_client_reaches_allowed_literals_and_names() {
        let url = one_shot().await;
        let egress = Arc::new(Egress::new(vec!["127.0.0.0/8".parse().expect("cidr")]));
        let client = reqwest::Client::builder()
            .redirect(egress.redirect_policy(10))
            .dns_resolver(egress.resolver())
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("client");
        let r = client.get(&url).send().await.expect("literal allowed");
        assert_eq!(r.status(), 200);
        let by_name = url.replace("127.0.0.1", "localhost");
        let r = client.get(&by_name).send().await.expect("name allowed");
        assert_eq!(r.status(), 200);
        let closed = Arc::new(Egress::default());
        let client = reqwest::Client::builder()
            .dns_resolver(closed.resolver())
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("client");
        let e = client.get(&by_name).send().await.expect_err("name refused");
        let mut chain = Vec::new();
        let mut source: Option<&dyn std::error::Error> = Some(&e);
        while let Some(s) = source {
            chain.push(s.to_string());
            source = s.source();
        }
        assert!(
            chain.iter().any(|m| m.contains("is a private address")),
            "{chain:?}"
        );
    }
}
