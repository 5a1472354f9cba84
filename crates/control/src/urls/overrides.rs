//! Twilio's connection-override fragment: `https://h/x#ct=1000&rt=5000&tt=12000&rc=2&rp=ct,5xx`
//! (SPEC §2.1). The fragment configures the request and is never sent or signed.

use super::strip_fragment;

/// Which failures a retry is allowed for (`rp`: comma-separated `ct`, `rt`, `4xx`, `5xx`,
/// `all`; default `ct`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The TCP/TLS connection could not be made in time.
    pub connect_failure: bool,
    /// Connected, but the answer did not arrive in time.
    pub read_timeout: bool,
    pub status_4xx: bool,
    pub status_5xx: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            connect_failure: true,
            read_timeout: false,
            status_4xx: false,
            status_5xx: false,
        }
    }
}

/// How a fetch attempt failed, for [`RetryPolicy::allows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchFailure {
    Connect,
    ReadTimeout,
    /// A non-2xx final status.
    Status(u16),
}

impl RetryPolicy {
    pub fn allows(&self, failure: FetchFailure) -> bool {
        match failure {
            FetchFailure::Connect => self.connect_failure,
            FetchFailure::ReadTimeout => self.read_timeout,
            FetchFailure::Status(s) if (400..500).contains(&s) => self.status_4xx,
            FetchFailure::Status(s) if (500..600).contains(&s) => self.status_5xx,
            FetchFailure::Status(_) => false,
        }
    }
}

/// Per-URL HTTP client settings; defaults are Twilio's (SPEC §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionOverrides {
    pub connect_timeout_ms: u32,
    /// Time to the first response byte, and between response packets.
    pub read_timeout_ms: u32,
    /// All attempts together.
    pub total_timeout_ms: u32,
    /// Retries after the first attempt.
    pub retry_count: u32,
    pub retry_policy: RetryPolicy,
}

impl Default for ConnectionOverrides {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 5000,
            read_timeout_ms: 15_000,
            total_timeout_ms: 15_000,
            retry_count: 1,
            retry_policy: RetryPolicy::default(),
        }
    }
}

/// Splits `url` into the URL to request and sign (no fragment) and its overrides. Invalid or
/// out-of-range values keep the default, with a warning naming the key; unknown keys and
/// fragments that are not overrides are ignored (with a warning) but still stripped.
pub fn parse_overrides(url: &str) -> (String, ConnectionOverrides, Vec<String>) {
    let base = strip_fragment(url).to_string();
    let mut o = ConnectionOverrides::default();
    let mut warnings = Vec::new();
    let Some((_, fragment)) = url.split_once('#') else {
        return (base, o, warnings);
    };
    for pair in fragment.split('&').filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            warnings.push(format!(
                "URL fragment part {pair:?} is not a key=value connection override; ignored"
            ));
            continue;
        };
        let d = ConnectionOverrides::default();
        match key {
            "ct" => {
                o.connect_timeout_ms =
                    ranged(key, value, 100, 10_000, d.connect_timeout_ms, &mut warnings)
            }
            "rt" => {
                o.read_timeout_ms =
                    ranged(key, value, 100, 15_000, d.read_timeout_ms, &mut warnings)
            }
            "tt" => {
                o.total_timeout_ms =
                    ranged(key, value, 100, 15_000, d.total_timeout_ms, &mut warnings)
            }
            "rc" => o.retry_count = ranged(key, value, 0, 5, d.retry_count, &mut warnings),
            "rp" => o.retry_policy = retry_policy(value, &mut warnings),
            // Twilio's edge location and SNI switches: there is one edge here and SNI is always on.
            "e" | "sni" => warnings.push(format!(
                "connection override {key}={value:?} does not apply to this server; ignored"
            )),
            _ => warnings.push(format!("unknown connection override {key:?}; ignored")),
        }
    }
    (base, o, warnings)
}

fn ranged(
    key: &str,
    value: &str,
    min: u32,
    max: u32,
    default: u32,
    warnings: &mut Vec<String>,
) -> u32 {
    match value.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => n,
        _ => {
            warnings.push(format!(
                "connection override {key}={value:?} must be an integer {min}-{max}; using {default}"
            ));
            default
        }
    }
}

fn retry_policy(value: &str, warnings: &mut Vec<String>) -> RetryPolicy {
    let mut p = RetryPolicy {
        connect_failure: false,
        read_timeout: false,
        status_4xx: false,
        status_5xx: false,
    };
    let mut any = false;
    for token in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match token.to_ascii_lowercase().as_str() {
            "ct" => p.connect_failure = true,
            "rt" => p.read_timeout = true,
            "4xx" => p.status_4xx = true,
            "5xx" => p.status_5xx = true,
            "all" => {
                p = RetryPolicy {
                    connect_failure: true,
                    read_timeout: true,
                    status_4xx: true,
                    status_5xx: true,
                }
            }
            _ => {
                warnings.push(format!(
                    "retry policy {token:?} in rp={value:?} is unknown; ignored"
                ));
                continue;
            }
        }
        any = true;
    }
    if !any {
        warnings.push(format!("rp={value:?} names no retry policy; using ct"));
        return RetryPolicy::default();
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_fragment_gives_twilio_defaults() {
        let (url, o, w) = parse_overrides("https://h/a?x=1");
        assert_eq!(url, "https://h/a?x=1");
        assert_eq!(
            o,
            ConnectionOverrides {
                connect_timeout_ms: 5000,
                read_timeout_ms: 15_000,
                total_timeout_ms: 15_000,
                retry_count: 1,
                retry_policy: RetryPolicy {
                    connect_failure: true,
                    read_timeout: false,
                    status_4xx: false,
                    status_5xx: false
                }
            }
        );
        assert!(w.is_empty());
    }

    #[test]
    fn all_overrides_are_read_and_the_fragment_stripped() {
        let (url, o, w) =
            parse_overrides("https://h/a?x=1#ct=1000&rt=2000&tt=12000&rc=3&rp=rt,5xx");
        assert_eq!(url, "https://h/a?x=1");
        assert_eq!(
            o,
            ConnectionOverrides {
                connect_timeout_ms: 1000,
                read_timeout_ms: 2000,
                total_timeout_ms: 12_000,
                retry_count: 3,
                retry_policy: RetryPolicy {
                    connect_failure: false,
                    read_timeout: true,
                    status_4xx: false,
                    status_5xx: true
                }
            }
        );
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn range_bounds_are_inclusive() {
        let (_, o, w) = parse_overrides("https://h/#ct=100&rt=15000&tt=100&rc=0");
        assert_eq!(
            (
                o.connect_timeout_ms,
                o.read_timeout_ms,
                o.total_timeout_ms,
                o.retry_count
            ),
            (100, 15_000, 100, 0)
        );
        assert!(w.is_empty());
        let (_, o, w) = parse_overrides("https://h/#ct=10000&rc=5");
        assert_eq!(
            (o.connect_timeout_ms, o.retry_count, w.len()),
            (10_000, 5, 0)
        );
    }

    #[test]
    fn out_of_range_or_invalid_values_keep_defaults_with_warnings() {
        let (_, o, w) = parse_overrides("https://h/#ct=99&rt=15001&tt=0&rc=6");
        assert_eq!(o, ConnectionOverrides::default());
        assert_eq!(w.len(), 4);
        assert!(
            w[0].contains("ct=\"99\"") && w[0].contains("100-10000"),
            "{}",
            w[0]
        );
        assert!(
            w[1].contains("rt=\"15001\"") && w[1].contains("using 15000"),
            "{}",
            w[1]
        );
        let (_, o, w) = parse_overrides("https://h/#ct=abc&rc=-1&rt=");
        assert_eq!(o, ConnectionOverrides::default());
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn retry_policy_values() {
        let rp = |v: &str| parse_overrides(&format!("https://h/#rp={v}"));
        let (_, o, w) = rp("all");
        assert_eq!(
            o.retry_policy,
            RetryPolicy {
                connect_failure: true,
                read_timeout: true,
                status_4xx: true,
                status_5xx: true
            }
        );
        assert!(w.is_empty());
        let (_, o, _) = rp("4xx");
        assert!(o.retry_policy.status_4xx && !o.retry_policy.connect_failure);
        let (_, o, w) = rp("ct,bogus");
        assert_eq!(o.retry_policy, RetryPolicy::default());
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("bogus"));
        let (_, o, w) = rp("bogus");
        assert_eq!(o.retry_policy, RetryPolicy::default());
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn retry_policy_allows_only_listed_failures() {
        let p = RetryPolicy {
            connect_failure: false,
            read_timeout: true,
            status_4xx: false,
            status_5xx: true,
        };
        assert!(!p.allows(FetchFailure::Connect));
        assert!(p.allows(FetchFailure::ReadTimeout));
        assert!(!p.allows(FetchFailure::Status(404)));
        assert!(p.allows(FetchFailure::Status(503)));
        assert!(!p.allows(FetchFailure::Status(302)));
        assert!(RetryPolicy::default().allows(FetchFailure::Connect));
        assert!(!RetryPolicy::default().allows(FetchFailure::Status(500)));
    }

    #[test]
    fn non_override_fragments_are_stripped_and_warned() {
        let (url, o, w) = parse_overrides("https://h/page#section-2");
        assert_eq!(url, "https://h/page");
        assert_eq!(o, ConnectionOverrides::default());
        assert_eq!(w.len(), 1);
        let (url, o, w) = parse_overrides("https://h/page#ct=700&foo=1&e=ashburn&sni=y");
        assert_eq!(
            (url.as_str(), o.connect_timeout_ms),
            ("https://h/page", 700)
        );
        assert_eq!(w.len(), 3, "{w:?}");
        let (url, _, w) = parse_overrides("https://h/page#");
        assert_eq!((url.as_str(), w.len()), ("https://h/page", 0));
    }
}
