//! Who may send SIP to Hark, checked before a byte is parsed: trusted source networks, a
//! per-source request rate with a temporary ban (Kamailio's pike), and caps on concurrent and
//! new calls (Asterisk's maxcalls, FreeSWITCH's session limits). Sans-IO like the endpoint:
//! every check takes the time.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use thiserror::Error;

/// An IP network, `10.0.0.0/8`, `2001:db8::/32`, or one address (`192.0.2.7`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{text:?} is not an address or network (a.b.c.d/n, x::y/n): {why}")]
pub struct CidrError {
    text: String,
    why: &'static str,
}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(text: &str) -> Result<Self, CidrError> {
        let bad = |why| CidrError {
            text: text.to_string(),
            why,
        };
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| bad("prefix length too long"))?
            }
            Some(_) => return Err(bad("prefix length is not a number")),
        };
        if prefix > max {
            return Err(bad("prefix length beyond the address"));
        }
        let cidr = Cidr { net, prefix };
        if cidr.mask(net) != net {
            return Err(bad("host bits set beyond the prefix"));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

impl Cidr {
    fn mask(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((bits & mask).into())
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((bits & mask).into())
            }
        }
    }

    /// `ip` is in this network. An IPv4-mapped IPv6 source (`::ffff:a.b.c.d`, a dual-stack
    /// socket) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.net.is_ipv4() && self.mask(ip) == self.net
    }
}

/// The address a source is counted under: IPv4-mapped IPv6 as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What becomes of a request from a source that is neither trusted nor an authenticated user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untrusted {
    /// 403 Forbidden (a scanner learns a SIP server is there, and nothing else).
    Reject,
    /// No answer at all, decided before parsing when no `[[user]]` could authenticate.
    Drop,
}

/// Pike: more than `requests` messages from one source within `window` bans it for `ban`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub window: Duration,
    pub ban: Duration,
}

/// Caps on calls, each 0 for none. Over a cap, an INVITE gets 503 with Retry-After.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallLimits {
    pub max_calls: u32,
    pub max_calls_per_source: u32,
    pub max_new_per_sec: u32,
    pub max_new_per_sec_per_source: u32,
    /// Retry-After of a 503 for the concurrent-call caps (rate caps say 1 s).
    pub retry_after_secs: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    /// Sources that may call without authenticating (trunks, proxies). Empty: none.
    pub trusted: Vec<Cidr>,
    pub untrusted: Untrusted,
    /// `None`: no rate limit. Trusted sources are never rate limited.
    pub rate_limit: Option<RateLimit>,
    pub calls: CallLimits,
}

impl AccessConfig {
    /// Everyone is trusted and nothing is limited (the endpoint's default, and tests').
    pub fn open() -> Self {
        AccessConfig {
            trusted: vec![Cidr::any_v4(), Cidr::any_v6()],
            untrusted: Untrusted::Reject,
            rate_limit: None,
            calls: CallLimits::default(),
        }
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }
}

impl Cidr {
    pub fn any_v4() -> Cidr {
        Cidr {
            net: IpAddr::V4(0.into()),
            prefix: 0,
        }
    }
    pub fn any_v6() -> Cidr {
        Cidr {
            net: IpAddr::V6(0.into()),
            prefix: 0,
        }
    }
}

/// The verdict on one message, before parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Parse and handle it; `trusted` says whether its source may call without authenticating.
    Pass { trusted: bool },
    /// This message took the source over the rate limit: banned from now until `until`.
    Banned { until: Instant, requests: u32 },
    /// The source is banned (or untrusted, in drop mode with nobody to authenticate): ignored.
    Drop,
}

/// Sources tracked at most at once; beyond it, stale entries are swept, and if none is stale
/// the counts start again (a spoofed-source flood can neither grow memory nor cost a scan per
/// packet).
const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

/// The per-source request-rate limit and its bans.
#[derive(Debug, Default)]
pub struct RateGuard {
    windows: HashMap<IpAddr, Window>,
    bans: HashMap<IpAddr, Instant>,
}

impl RateGuard {
    /// Counts one message from `ip`. `Some(requests)` when it crossed the limit (the ban starts).
    fn count(&mut self, now: Instant, ip: IpAddr, limit: &RateLimit) -> Option<u32> {
        if self.windows.len() >= MAX_SOURCES && !self.windows.contains_key(&ip) {
            self.sweep(now, limit.window);
        }
        let w = self.windows.entry(ip).or_insert(Window {
            started: now,
            count: 0,
        });
        if now.saturating_duration_since(w.started) >= limit.window {
            *w = Window {
                started: now,
                count: 0,
            };
        }
        w.count = w.count.saturating_add(1);
        if w.count > limit.requests {
            let requests = w.count;
            self.windows.remove(&ip);
            if self.bans.len() >= MAX_SOURCES {
                self.bans.retain(|_, until| *until > now);
            }
            self.bans.insert(ip, now + limit.ban);
            return Some(requests);
        }
        None
    }

    fn sweep(&mut self, now: Instant, window: Duration) {
        self.windows
            .retain(|_, w| now.saturating_duration_since(w.started) < window);
        if self.windows.len() >= MAX_SOURCES {
            // All fresh: a spoofed-source flood. Start counting again rather than pay a scan per
            // new source; bans stay.
            self.windows.clear();
        }
    }

    /// The end of `ip`'s ban, if it is banned now.
    pub fn banned_until(&self, now: Instant, ip: IpAddr) -> Option<Instant> {
        self.bans.get(&ip).copied().filter(|until| *until > now)
    }

    /// Forgets ended bans and stale windows (called from the endpoint's timer).
    pub fn expire(&mut self, now: Instant, window: Duration) {
        self.bans.retain(|_, until| *until > now);
        self.windows
            .retain(|_, w| now.saturating_duration_since(w.started) < window);
    }

    /// (sources counted, sources banned), for leak checks.
    pub fn size(&self) -> (usize, usize) {
        (self.windows.len(), self.bans.len())
    }
}

/// Screens one message from `ip` before parsing. `can_authenticate`: some `[[user]]` could
/// make an untrusted source's request acceptable, so it must be parsed to be challenged.
pub fn screen(
    config: &AccessConfig,
    guard: &mut RateGuard,
    now: Instant,
    ip: IpAddr,
    can_authenticate: bool,
) -> Screen {
    let ip = canonical(ip);
    if config.is_trusted(ip) {
        return Screen::Pass { trusted: true };
    }
    if guard.banned_until(now, ip).is_some() {
        return Screen::Drop;
    }
    if let Some(limit) = &config.rate_limit {
        if let Some(requests) = guard.count(now, ip, limit) {
            return Screen::Banned {
                until: now + limit.ban,
                requests,
            };
        }
    }
    if config.untrusted == Untrusted::Drop && !can_authenticate {
        return Screen::Drop;
    }
    Screen::Pass { trusted: false }
}

/// Why an INVITE was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallRefusal {
    /// `max_calls` calls are up.
    TooManyCalls,
    /// `max_calls_per_source` calls are up from this source.
    TooManyCallsFromSource,
    /// `max_new_per_sec` new calls in the last second.
    TooFast,
    /// `max_new_per_sec_per_source` new calls from this source in the last second.
    TooFastFromSource,
}

impl CallRefusal {
    /// The `reason` label of metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            CallRefusal::TooManyCalls => "max_calls",
            CallRefusal::TooManyCallsFromSource => "max_calls_per_source",
            CallRefusal::TooFast => "max_new_calls_per_sec",
            CallRefusal::TooFastFromSource => "max_new_calls_per_sec_per_source",
        }
    }
}

/// A token bucket refilled at `rate` per second, holding at most `rate` (one second's burst).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(now: Instant, rate: u32) -> Self {
        Bucket {
            tokens: f64::from(rate),
            at: now,
        }
    }
    fn refill(&mut self, now: Instant, rate: u32) {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + secs * f64::from(rate)).min(f64::from(rate));
        self.at = now;
    }
}

/// Concurrent calls and new-call rates, in all and by source.
#[derive(Debug, Default)]
pub struct CallAdmission {
    active: usize,
    active_by_source: HashMap<IpAddr, usize>,
    total_rate: Option<Bucket>,
    rate_by_source: HashMap<IpAddr, Bucket>,
}

impl CallAdmission {
    /// Admits a new call from `ip` (counting it) or says which cap it hits.
    pub fn admit(
        &mut self,
        limits: &CallLimits,
        now: Instant,
        ip: IpAddr,
    ) -> Result<(), CallRefusal> {
        let ip = canonical(ip);
        if limits.max_calls > 0 && self.active >= limits.max_calls as usize {
            return Err(CallRefusal::TooManyCalls);
        }
        let from_source = self.active_by_source.get(&ip).copied().unwrap_or(0);
        if limits.max_calls_per_source > 0 && from_source >= limits.max_calls_per_source as usize {
            return Err(CallRefusal::TooManyCallsFromSource);
        }
        if limits.max_new_per_sec > 0 {
            let rate = limits.max_new_per_sec;
            let b = self
                .total_rate
                .get_or_insert_with(|| Bucket::full(now, rate));
            b.refill(now, rate);
            if b.tokens < 1.0 {
                return Err(CallRefusal::TooFast);
            }
        }
        if limits.max_new_per_sec_per_source > 0 {
            let rate = limits.max_new_per_sec_per_source;
            if self.rate_by_source.len() >= MAX_SOURCES && !self.rate_by_source.contains_key(&ip) {
                // A full bucket is the same as no entry: forget those.
                self.rate_by_source.retain(|_, b| {
                    b.refill(now, rate);
                    b.tokens < f64::from(rate)
                });
                if self.rate_by_source.len() >= MAX_SOURCES {
                    self.rate_by_source.clear();
                }
            }
            let b = self
                .rate_by_source
                .entry(ip)
                .or_insert_with(|| Bucket::full(now, rate));
            b.refill(now, rate);
            if b.tokens < 1.0 {
                return Err(CallRefusal::TooFastFromSource);
            }
            b.tokens -= 1.0;
        }
        if let Some(b) = self.total_rate.as_mut() {
            b.tokens -= 1.0;
        }
        self.active += 1;
        *self.active_by_source.entry(ip).or_insert(0) += 1;
        Ok(())
    }

    /// A call admitted from `ip` has ended.
    pub fn release(&mut self, ip: IpAddr) {
        let ip = canonical(ip);
        self.active = self.active.saturating_sub(1);
        if let Some(n) = self.active_by_source.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.active_by_source.remove(&ip);
            }
        }
    }

    /// Calls up now.
    pub fn active(&self) -> usize {
        self.active
    }

    /// Forgets per-source buckets that are full again (as if never used).
    pub fn expire(&mut self, now: Instant, limits: &CallLimits) {
        let rate = limits.max_new_per_sec_per_source;
        self.rate_by_source.retain(|_, b| {
            b.refill(now, rate);
            b.tokens < f64::from(rate)
        });
    }

    /// (sources with calls up, sources with a rate bucket), for leak checks.
    pub fn size(&self) -> (usize, usize) {
        (self.active_by_source.len(), self.rate_by_source.len())
    }
}

#[cfg(test)]
mod tests;
