//! A SIP registrar (RFC 3261 §10) for phones that `<Dial><Client>` reaches by identity, with
//! digest authentication (RFC 3261 §22, RFC 7616 / RFC 8760: SHA-256 and MD5 both offered). Sans-IO: the caller passes the time and the request and
//! sends the answer it gets back.
//!
//! Nonces are stateless: `<unix secs hex>.<HMAC-SHA256(secret, secs) truncated>`, good for
//! [`NONCE_TTL_SECS`]; an older one is answered 401 with `stale=true` so the phone retries
//! without asking its user.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::message::Request;

/// How long a nonce is accepted.
pub const NONCE_TTL_SECS: u64 = 300;

/// A `[[user]]`: an identity that may register (and be dialled) with its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUser {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    pub realm: String,
    pub users: Vec<SipUser>,
    /// Shorter requested expiries get 423 with `Min-Expires` (RFC 3261 §10.3 step 7).
    pub min_expires: u32,
    /// Longer ones are cut to this.
    pub max_expires: u32,
    /// Used when the request names none.
    pub default_expires: u32,
}

impl RegistrarConfig {
    pub fn new(realm: impl Into<String>, users: Vec<SipUser>) -> Self {
        Self {
            realm: realm.into(),
            users,
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
        }
    }
}

/// One registered contact of an address of record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The contact URI, without angle brackets or parameters.
    pub contact: String,
    pub expires_at: Instant,
    pub call_id: String,
    pub cseq: u32,
}

/// What to answer a REGISTER with: status, reason and headers to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterReply {
    pub status: u16,
    pub reason: &'static str,
    pub headers: Vec<(&'static str, String)>,
}

impl RegisterReply {
    fn new(status: u16, reason: &'static str) -> Self {
        Self {
            status,
            reason,
            headers: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// The outcome of [`Registrar::authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authn {
    /// The digest proves this user.
    User(String),
    /// Answer with this 401 and wait for the retry.
    Challenge(RegisterReply),
    /// Wrong credentials for the user named (unknown user, wrong password, other realm).
    Forbidden(String),
}

/// Compares without an early exit, so timing does not reveal how much of a digest was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    fn hash(self, text: &str) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(text.as_bytes())),
            Algorithm::Sha256 => hex(&Sha256::digest(text.as_bytes())),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub struct Registrar {
    config: RegistrarConfig,
    secret: [u8; 32],
    bindings: HashMap<String, Vec<Binding>>,
}

impl Registrar {
    /// `secret` keys the nonces (random per start in the daemon).
    pub fn new(config: RegistrarConfig, secret: [u8; 32]) -> Self {
        Self {
            config,
            secret,
            bindings: HashMap::new(),
        }
    }

    /// The contacts registered for `user` now.
    pub fn lookup(&self, now: Instant, user: &str) -> Vec<Binding> {
        self.bindings
            .get(user)
            .map(|b| b.iter().filter(|b| b.expires_at > now).cloned().collect())
            .unwrap_or_default()
    }

    /// Whether any user is configured: without one, REGISTER is not offered at all.
    pub fn enabled(&self) -> bool {
        !self.config.users.is_empty()
    }

    fn nonce(&self, unix_secs: u64) -> String {
        format!("{unix_secs:x}.{}", self.nonce_mac(unix_secs))
    }

    fn nonce_mac(&self, unix_secs: u64) -> String {
        match Hmac::<Sha256>::new_from_slice(&self.secret) {
            Ok(mut mac) => {
                mac.update(&unix_secs.to_be_bytes());
                hex(&mac.finalize().into_bytes()[..12])
            }
            Err(_) => String::new(),
        }
    }

    /// `Some(fresh)` for a nonce we made (fresh: within its lifetime), `None` for a forgery.
    fn check_nonce(&self, nonce: &str, unix_now: u64) -> Option<bool> {
        let (secs, mac) = nonce.split_once('.')?;
        let secs = u64::from_str_radix(secs, 16).ok()?;
        (self.nonce_mac(secs) == mac).then(|| unix_now.saturating_sub(secs) <= NONCE_TTL_SECS)
    }

    fn challenge(&self, unix_now: u64, stale: bool) -> RegisterReply {
        let nonce = self.nonce(unix_now);
        let stale = if stale { ", stale=true" } else { "" };
        let realm = &self.config.realm;
        let mut reply = RegisterReply::new(401, "Unauthorized");
        // Both, MD5 first: phones (and SIPp) that read only the first challenge know MD5; those
        // that read them all pick SHA-256 (RFC 8760).
        for algorithm in ["MD5", "SHA-256"] {
            reply = reply.with(
                "WWW-Authenticate",
                format!(
                    "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={algorithm}, qop=\"auth\"{stale}"
                ),
            );
        }
        reply
    }

    /// Checks a request's `Authorization` against the `[[user]]`s (RFC 3261 §22.4, RFC 8760):
    /// the user it proves, or the 401 challenge to send (none yet, an unknown or stale nonce),
    /// or `Forbidden` (an unknown user, a wrong password, another realm).
    pub fn authenticate(&self, unix_now: u64, req: &Request) -> Authn {
        let Some(auth) = req.headers.get("Authorization").and_then(parse_digest) else {
            return Authn::Challenge(self.challenge(unix_now, false));
        };
        let Some(creds) = self
            .config
            .users
            .iter()
            .find(|u| u.username == auth.username)
        else {
            return Authn::Forbidden(auth.username);
        };
        match self.check_nonce(&auth.nonce, unix_now) {
            None => return Authn::Challenge(self.challenge(unix_now, false)),
            Some(false) => return Authn::Challenge(self.challenge(unix_now, true)),
            Some(true) => {}
        }
        let algorithm = match auth.algorithm.to_ascii_uppercase().as_str() {
            "" | "MD5" => Algorithm::Md5,
            "SHA-256" => Algorithm::Sha256,
            _ => return Authn::Challenge(self.challenge(unix_now, false)),
        };
        let ha1 = algorithm.hash(&format!(
            "{}:{}:{}",
            creds.username, self.config.realm, creds.password
        ));
        let ha2 = algorithm.hash(&format!("{}:{}", req.method, auth.uri));
        let expected = match auth.qop.as_str() {
            "auth" => algorithm.hash(&format!(
                "{ha1}:{}:{}:{}:auth:{ha2}",
                auth.nonce, auth.nc, auth.cnonce
            )),
            "" => algorithm.hash(&format!("{ha1}:{}:{ha2}", auth.nonce)),
            _ => return Authn::Challenge(self.challenge(unix_now, false)),
        };
        if !constant_time_eq(
            expected.as_bytes(),
            auth.response.to_ascii_lowercase().as_bytes(),
        ) || auth.realm != self.config.realm
        {
            return Authn::Forbidden(auth.username);
        }
        Authn::User(auth.username)
    }

    /// Answers one REGISTER: 401 with a challenge until its digest is right, then the
    /// bindings (RFC 3261 §10.3): add, refresh, remove (`Expires: 0`, `Contact: *`), and 200
    /// listing every current contact with its remaining expiry.
    pub fn handle(&mut self, now: Instant, unix_now: u64, req: &Request) -> RegisterReply {
        let Some(user) = to_user(req) else {
            return RegisterReply::new(400, "Bad Request");
        };
        match self.authenticate(unix_now, req) {
            Authn::Challenge(reply) => reply,
            Authn::Forbidden(_) => RegisterReply::new(403, "Forbidden"),
            // An account registers its own address only.
            Authn::User(name) if name != user => RegisterReply::new(403, "Forbidden"),
            Authn::User(_) => self.update(now, &user, req),
        }
    }

    fn update(&mut self, now: Instant, user: &str, req: &Request) -> RegisterReply {
        let call_id = req.headers.get("Call-ID").unwrap_or_default().to_string();
        let cseq = req
            .headers
            .get("CSeq")
            .and_then(|c| c.split_whitespace().next())
            .and_then(crate::message::parse_digits::<u32>)
            .unwrap_or(0);
        let header_expires = req
            .headers
            .get("Expires")
            .and_then(crate::message::parse_digits::<u32>);
        let contacts = req.headers.get_all("Contact");
        let bindings = self.bindings.entry(user.to_string()).or_default();
        bindings.retain(|b| b.expires_at > now);
        if contacts.iter().any(|c| c.trim() == "*") {
            // RFC 3261 §10.3 step 6: `*` only alone and with Expires: 0.
            if contacts.len() != 1 || header_expires != Some(0) {
                return RegisterReply::new(400, "Bad Request");
            }
            bindings.clear();
            return RegisterReply::new(200, "OK");
        }
        for contact in contacts.iter().flat_map(|c| split_contacts(c)) {
            let Some((uri, params)) = contact_uri(&contact) else {
                return RegisterReply::new(400, "Bad Request");
            };
            let requested = param(params, "expires")
                .and_then(crate::message::parse_digits::<u32>)
                .or(header_expires)
                .unwrap_or(self.config.default_expires);
            if requested != 0 && requested < self.config.min_expires {
                return RegisterReply::new(423, "Interval Too Brief")
                    .with("Min-Expires", self.config.min_expires.to_string());
            }
            let existing = bindings.iter().position(|b| b.contact == uri);
            if let Some(i) = existing {
                // A retransmission or reordering from the same client is not applied again.
                let b = &bindings[i];
                if b.call_id == call_id && cseq <= b.cseq {
                    continue;
                }
            }
            if requested == 0 {
                if let Some(i) = existing {
                    bindings.remove(i);
                }
                continue;
            }
            let expires = requested.min(self.config.max_expires);
            let binding = Binding {
                contact: uri.to_string(),
                expires_at: now + Duration::from_secs(u64::from(expires)),
                call_id: call_id.clone(),
                cseq,
            };
            match existing {
                Some(i) => bindings[i] = binding,
                None => bindings.push(binding),
            }
        }
        let mut reply = RegisterReply::new(200, "OK");
        for b in bindings.iter() {
            let left = b.expires_at.saturating_duration_since(now).as_secs();
            reply = reply.with("Contact", format!("<{}>;expires={left}", b.contact));
        }
        reply
    }
}

/// The user part of the To URI: the address of record.
fn to_user(req: &Request) -> Option<String> {
    let to = req.headers.get("To")?;
    let (uri, _) = contact_uri(to)?;
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let (user, _) = rest.split_once('@')?;
    (!user.is_empty()).then(|| user.to_string())
}

/// Splits a Contact header value on the commas between contacts (not inside `<…>` or quotes).
fn split_contacts(value: &str) -> Vec<String> {
    let (mut out, mut cur, mut angle, mut quote) = (Vec::new(), String::new(), false, false);
    for ch in value.chars() {
        match ch {
            '"' if !angle => quote = !quote,
            '<' if !quote => angle = true,
            '>' if !quote => angle = false,
            ',' if !angle && !quote => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur);
    out.into_iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

/// `"Name" <sip:u@h>;p=v` → (`sip:u@h`, `;p=v`); a bare `sip:u@h;p=v` keeps its parameters
/// as header parameters (RFC 3261 §20.10).
fn contact_uri(value: &str) -> Option<(&str, &str)> {
    let value = value.trim();
    if let Some(open) = value.find('<') {
        let close = open + value[open..].find('>')?;
        return Some((value[open + 1..close].trim(), &value[close + 1..]));
    }
    let end = value.find(';').unwrap_or(value.len());
    let uri = value[..end].trim();
    (uri.starts_with("sip:") || uri.starts_with("sips:")).then_some((uri, &value[end..]))
}

fn param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The fields of `Authorization: Digest …` we check.
#[derive(Debug, Default)]
struct DigestAuth {
    username: String,
    realm: String,
    nonce: String,
    uri: String,
    response: String,
    algorithm: String,
    qop: String,
    nc: String,
    cnonce: String,
}

/// The `name=value` / `name="value"` pairs of a `Digest` header value (names lowercased).
fn digest_params(value: &str) -> Option<Vec<(String, String)>> {
    let rest = value.trim();
    let (scheme, bytes) = rest.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let mut out = Vec::new();
    // Comma-separated; commas inside quotes belong to the value.
    let mut pos = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let trimmed = rest.trim_start_matches([' ', '\t', ',']);
        pos += rest.len() - trimmed.len();
        if trimmed.is_empty() {
            break;
        }
        let eq = trimmed.find('=')?;
        let name = trimmed[..eq].trim().to_ascii_lowercase();
        let after = &trimmed[eq + 1..];
        let after_trim = after.trim_start();
        let skipped = after.len() - after_trim.len();
        let (val, used) = if let Some(q) = after_trim.strip_prefix('"') {
            let end = q.find('"')?;
            (q[..end].to_string(), 1 + end + 1)
        } else {
            let end = after_trim.find(',').unwrap_or(after_trim.len());
            (after_trim[..end].trim().to_string(), end)
        };
        pos += eq + 1 + skipped + used;
        out.push((name, val));
    }
    Some(out)
}

fn parse_digest(value: &str) -> Option<DigestAuth> {
    let mut auth = DigestAuth::default();
    for (name, val) in digest_params(value)? {
        match name.as_str() {
            "username" => auth.username = val,
            "realm" => auth.realm = val,
            "nonce" => auth.nonce = val,
            "uri" => auth.uri = val,
            "response" => auth.response = val,
            "algorithm" => auth.algorithm = val,
            "qop" => auth.qop = val,
            "nc" => auth.nc = val,
            "cnonce" => auth.cnonce = val,
            _ => {}
        }
    }
    (!auth.username.is_empty() && !auth.nonce.is_empty() && !auth.response.is_empty())
        .then_some(auth)
}

/// The client side: the `Authorization` (or `Proxy-Authorization`) value answering `challenge`
/// (a `WWW-Authenticate`/`Proxy-Authenticate` value) for `method` on `uri`. MD5 or SHA-256,
/// `qop=auth` when offered (nc 1, `cnonce` given). `None` for a challenge we cannot answer.
pub fn digest_authorization(
    challenge: &str,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
) -> Option<String> {
    let params = digest_params(challenge)?;
    let get = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let realm = get("realm")?;
    let nonce = get("nonce")?;
    let algorithm_name = get("algorithm").unwrap_or("MD5");
    let algorithm = match algorithm_name.to_ascii_uppercase().as_str() {
        "MD5" => Algorithm::Md5,
        "SHA-256" => Algorithm::Sha256,
        _ => return None,
    };
    let qop_auth = get("qop").is_some_and(|q| q.split(',').any(|t| t.trim() == "auth"));
    let ha1 = algorithm.hash(&format!("{username}:{realm}:{password}"));
    let ha2 = algorithm.hash(&format!("{method}:{uri}"));
    let mut value = format!(
        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm={algorithm_name}"
    );
    let response = if qop_auth {
        value.push_str(&format!(", qop=auth, nc=00000001, cnonce=\"{cnonce}\""));
        algorithm.hash(&format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"))
    } else {
        algorithm.hash(&format!("{ha1}:{nonce}:{ha2}"))
    };
    value.push_str(&format!(", response=\"{response}\""));
    if let Some(opaque) = get("opaque") {
        value.push_str(&format!(", opaque=\"{opaque}\""));
    }
    Some(value)
}

#[cfg(test)]
mod tests;
