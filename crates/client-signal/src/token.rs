//! Twilio AccessToken verification, for tokens as twilio-python 9.13 mints them
//! (`AccessToken` + `VoiceGrant`, signed with PyJWT):
//!
//! ```text
//! header  {"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}      (+ "twr": region)
//! payload {"jti":"SK…-<now>","grants":{"voice":{"incoming":{"allow":true},
//!          "outgoing":{"application_sid":"AP…","params":{…}}},"identity":"alice"},
//!          "iss":"SK…","exp":<now+ttl>,"nbf":<now>,"sub":"AC…"}
//! sig     base64url(HMAC-SHA256(secret as UTF-8, b64(header) "." b64(payload))), unpadded
//! ```
//!
//! Every error carries the Twilio code the SDK maps to its own errors: 31204 (AccessTokenInvalid,
//! SDK code 20101), 31205 (AccessTokenExpired, 20104), 31207 (expiration too long).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::frame::SignalError;

/// Twilio refuses tokens valid for longer than a day (error 31207).
pub const MAX_LIFETIME_SECS: u64 = 24 * 60 * 60;

/// A token whose signature, account and validity window were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `iss`: the API key (`SK…`) that signed it.
    pub key_sid: String,
    /// `sub`: the account (`AC…`).
    pub account_sid: String,
    /// `grants.identity`: the client's name (`client:<identity>` in webhooks).
    pub identity: String,
    pub jti: Option<String>,
    /// Unix seconds; absent when minted with `nbf=None`.
    pub not_before: Option<u64>,
    /// Unix seconds.
    pub expires_at: u64,
    pub voice: VoiceGrant,
}

impl VerifiedToken {
    /// Seconds left at `now_unix` (the `ttl` of our `connected` frame).
    pub fn ttl_secs(&self, now_unix: u64) -> u64 {
        self.expires_at.saturating_sub(now_unix)
    }
}

/// `grants.voice`; the default (no voice grant) allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VoiceGrant {
    /// `incoming.allow`: the client may `register` and be called.
    pub incoming_allow: bool,
    /// `outgoing`: the client may `invite`, running this application.
    pub outgoing: Option<OutgoingGrant>,
}

/// `grants.voice.outgoing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingGrant {
    /// `AP…`: the application whose TwiML the call runs.
    pub application_sid: String,
    /// `params`: added to the call's webhook parameters; values that are not strings are kept as
    /// their JSON text.
    pub params: Vec<(String, String)>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is not three dot-separated parts")]
    NotJwt,
    #[error("token {part} is not unpadded base64url")]
    Base64 { part: &'static str },
    #[error("token {part} is not a JSON object")]
    Json { part: &'static str },
    #[error("token algorithm {0:?} is not HS256")]
    Algorithm(String),
    #[error("token claim `{0}` is missing or has the wrong type")]
    Claim(&'static str),
    #[error("token is signed with unknown API key {0:?}")]
    UnknownKey(String),
    #[error("token signature does not match its API key")]
    Signature,
    #[error("token is for account {found:?}, not this one")]
    WrongAccount { found: String },
    #[error("token is not valid before {not_before} (now {now})")]
    NotYetValid { not_before: u64, now: u64 },
    #[error("token expired at {expires_at} (now {now})")]
    Expired { expires_at: u64, now: u64 },
    #[error("token lifetime of {secs} s exceeds 24 h")]
    LifetimeTooLong { secs: u64 },
    #[error("token has no grants.identity")]
    MissingIdentity,
}

impl TokenError {
    /// The Twilio error code for the SDK: 31205 expired, 31207 too long, else 31204.
    pub fn code(&self) -> u32 {
        match self {
            Self::Expired { .. } => 31205,
            Self::LifetimeTooLong { .. } => 31207,
            _ => 31204,
        }
    }

    /// The `error` payload to send: Twilio's message, not our details (those are for logs).
    pub fn to_signal_error(&self) -> SignalError {
        match self.code() {
            31205 => SignalError::token_expired(),
            31207 => SignalError::new(31207, "JWT token expiration too long"),
            _ => SignalError::token_invalid(),
        }
    }
}

/// Verifies `token` at `now_unix` (seconds), allowing `leeway_secs` of clock skew on `exp` and
/// `nbf`. `keys` maps an API key SID to its secret (the UTF-8 bytes are the HMAC key).
///
/// The signature is checked before any claim is trusted; only `iss` is read first, to pick the key.
pub fn verify<S: AsRef<[u8]>>(
    token: &str,
    keys: &impl Fn(&str) -> Option<S>,
    account_sid: &str,
    now_unix: u64,
    leeway_secs: u64,
) -> Result<VerifiedToken, TokenError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::NotJwt);
    };
    let header = decode_object(header_b64, "header")?;
    // Only HS256: `none` or an asymmetric algorithm must never be accepted with an HMAC secret.
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "HS256" => {}
        Some(Value::String(alg)) => return Err(TokenError::Algorithm(alg.clone())),
        _ => return Err(TokenError::Claim("alg")),
    }
    let claims = decode_object(payload_b64, "payload")?;
    let key_sid = string_claim(&claims, "iss")?;
    let secret = keys(&key_sid).ok_or_else(|| TokenError::UnknownKey(key_sid.clone()))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| TokenError::Base64 { part: "signature" })?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_ref()).map_err(|_| TokenError::Signature)?;
    mac.update(header_b64.as_bytes());
    mac.update(b".");
    mac.update(payload_b64.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&signature)
        .map_err(|_| TokenError::Signature)?;

    let sub = string_claim(&claims, "sub")?;
    if sub != account_sid {
        return Err(TokenError::WrongAccount { found: sub });
    }
    let expires_at = u64_claim(&claims, "exp")?.ok_or(TokenError::Claim("exp"))?;
    let not_before = u64_claim(&claims, "nbf")?;
    if let Some(not_before) = not_before {
        if now_unix.saturating_add(leeway_secs) < not_before {
            return Err(TokenError::NotYetValid {
                not_before,
                now: now_unix,
            });
        }
    }
    if now_unix > expires_at.saturating_add(leeway_secs) {
        return Err(TokenError::Expired {
            expires_at,
            now: now_unix,
        });
    }
    // Without `nbf` the lifetime counts from now.
    let lifetime = expires_at.saturating_sub(not_before.unwrap_or(now_unix));
    if lifetime > MAX_LIFETIME_SECS {
        return Err(TokenError::LifetimeTooLong { secs: lifetime });
    }
    let jti = match claims.get("jti") {
        Some(Value::String(jti)) => Some(jti.clone()),
        None | Some(Value::Null) => None,
        Some(_) => return Err(TokenError::Claim("jti")),
    };

    let grants = match claims.get("grants") {
        Some(Value::Object(grants)) => grants,
        _ => return Err(TokenError::Claim("grants")),
    };
    let identity = match grants.get("identity") {
        Some(Value::String(identity)) if !identity.is_empty() => identity.clone(),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return Err(TokenError::MissingIdentity)
        }
        Some(_) => return Err(TokenError::Claim("grants.identity")),
    };
    let voice = match grants.get("voice") {
        None | Some(Value::Null) => VoiceGrant::default(),
        Some(Value::Object(voice)) => voice_grant(voice)?,
        Some(_) => return Err(TokenError::Claim("grants.voice")),
    };
    Ok(VerifiedToken {
        key_sid,
        account_sid: sub,
        identity,
        jti,
        not_before,
        expires_at,
        voice,
    })
}

fn voice_grant(voice: &Map<String, Value>) -> Result<VoiceGrant, TokenError> {
    let incoming_allow = match voice.get("incoming") {
        None | Some(Value::Null) => false,
        Some(Value::Object(incoming)) => match incoming.get("allow") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(allow)) => *allow,
            Some(_) => return Err(TokenError::Claim("grants.voice.incoming.allow")),
        },
        Some(_) => return Err(TokenError::Claim("grants.voice.incoming")),
    };
    let outgoing = match voice.get("outgoing") {
        None | Some(Value::Null) => None,
        Some(Value::Object(outgoing)) => {
            let application_sid = match outgoing.get("application_sid") {
                Some(Value::String(sid)) => sid.clone(),
                _ => return Err(TokenError::Claim("grants.voice.outgoing.application_sid")),
            };
            let params = match outgoing.get("params") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Object(params)) => params
                    .iter()
                    .map(|(key, value)| {
                        let value = match value {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (key.clone(), value)
                    })
                    .collect(),
                Some(_) => return Err(TokenError::Claim("grants.voice.outgoing.params")),
            };
            Some(OutgoingGrant {
                application_sid,
                params,
            })
        }
        Some(_) => return Err(TokenError::Claim("grants.voice.outgoing")),
    };
    Ok(VoiceGrant {
        incoming_allow,
        outgoing,
    })
}

fn decode_object(b64: &str, part: &'static str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| TokenError::Base64 { part })?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Json { part }),
    }
}

fn string_claim(claims: &Map<String, Value>, name: &'static str) -> Result<String, TokenError> {
    match claims.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(TokenError::Claim(name)),
    }
}

/// A NumericDate claim; PyJWT writes integers, a fractional one is truncated.
fn u64_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(v), _) => Ok(Some(v)),
            (None, Some(f)) if f >= 0.0 && f.is_finite() => Ok(Some(f as u64)),
            _ => Err(TokenError::Claim(name)),
        },
        Some(_) => Err(TokenError::Claim(name)),
    }
}

/// Mints a token the way twilio-python's `AccessToken` + `VoiceGrant` do, for Hark's own
/// development endpoint (`client.dev_tokens`): valid from `now_unix` for `ttl_secs`.
pub fn mint(
    key_sid: &str,
    secret: &str,
    account_sid: &str,
    identity: &str,
    voice: &VoiceGrant,
    now_unix: u64,
    ttl_secs: u64,
) -> String {
    let mut grant = Map::new();
    if voice.incoming_allow {
        grant.insert("incoming".into(), serde_json::json!({ "allow": true }));
    }
    if let Some(out) = &voice.outgoing {
        let params: Map<String, Value> = out
            .params
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut outgoing = Map::new();
        outgoing.insert("application_sid".into(), out.application_sid.clone().into());
        if !params.is_empty() {
            outgoing.insert("params".into(), Value::Object(params));
        }
        grant.insert("outgoing".into(), Value::Object(outgoing));
    }
    let header = r#"{"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}"#;
    let payload = serde_json::json!({
        "jti": format!("{key_sid}-{now_unix}"),
        "grants": { "identity": identity, "voice": Value::Object(grant) },
        "iss": key_sid,
        "sub": account_sid,
        "nbf": now_unix,
        "exp": now_unix + ttl_secs,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let signature = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{signing_input}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Minted by twilio-python 9.13.0 at a fixed clock (NOW) with
    //   .venv/bin/python crates/client-signal/tests/data/mint_tokens.py
    // (that script holds the AccessToken/VoiceGrant calls for each constant).
    const NOW: u64 = 1_764_960_000;
    const ACCOUNT: &str = "AC00000000000000000000000000000001";
    const KEY: &str = "SK00000000000000000000000000000001";
    const SECRET: &str = "hark-test-secret-0123456789abcdef";
    const APP: &str = "AP00000000000000000000000000000001";

    include!("../tests/data/tokens.rs");

    fn keys(sid: &str) -> Option<&'static str> {
        (sid == KEY).then_some(SECRET)
    }

    fn check(token: &str, now: u64) -> Result<VerifiedToken, TokenError> {
        verify(token, &keys, ACCOUNT, now, 30)
    }

    #[test]
    fn full_voice_grant() {
        let t = check(FULL, NOW + 10).unwrap();
        assert_eq!(t.key_sid, KEY);
        assert_eq!(t.account_sid, ACCOUNT);
        assert_eq!(t.identity, "alice");
        assert_eq!(
            t.jti.as_deref(),
            Some("SK00000000000000000000000000000001-1764960000")
        );
        assert_eq!(t.not_before, Some(NOW));
        assert_eq!(t.expires_at, NOW + 600);
        assert_eq!(t.ttl_secs(NOW + 10), 590);
        assert!(t.voice.incoming_allow);
        assert_eq!(
            t.voice.outgoing,
            Some(OutgoingGrant {
                application_sid: APP.into(),
                params: vec![("x".into(), "y".into())]
            })
        );
    }

    #[test]
    fn partial_grants() {
        let bob = check(INCOMING_ONLY, NOW).unwrap();
        assert_eq!(bob.identity, "bob");
        assert!(bob.voice.incoming_allow);
        assert_eq!(bob.voice.outgoing, None);

        let out = check(OUTGOING_ONLY, NOW).unwrap();
        assert!(!out.voice.incoming_allow);
        assert_eq!(out.voice.outgoing.unwrap().params, vec![]);

        let none = check(NO_GRANTS, NOW).unwrap();
        assert_eq!(none.voice, VoiceGrant::default());
    }

    #[test]
    fn no_nbf_and_region_header_are_fine() {
        assert_eq!(check(NO_NBF, NOW).unwrap().not_before, None);
        assert!(check(REGION, NOW).is_ok());
    }

    #[test]
    fn forged_signature_is_31204() {
        let err = check(FORGED, NOW).unwrap_err();
        assert_eq!(err, TokenError::Signature);
        assert_eq!(err.code(), 31204);
        // A right signature with a wrong secret in our config is the same failure.
        let err = verify(FULL, &|_: &str| Some("other"), ACCOUNT, NOW, 30).unwrap_err();
        assert_eq!(err, TokenError::Signature);
    }

    #[test]
    fn tampered_payload_is_31204() {
        let mut parts: Vec<&str> = FULL.split('.').collect();
        let claims = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
        let claims = String::from_utf8(claims)
            .unwrap()
            .replace("\"alice\"", "\"mallory\"");
        let forged = URL_SAFE_NO_PAD.encode(claims);
        parts[1] = &forged;
        assert_eq!(
            check(&parts.join("."), NOW).unwrap_err(),
            TokenError::Signature
        );
    }

    #[test]
    fn expired_is_31205_after_leeway() {
        assert!(check(FULL, NOW + 600 + 30).is_ok());
        let err = check(FULL, NOW + 600 + 31).unwrap_err();
        assert_eq!(
            err,
            TokenError::Expired {
                expires_at: NOW + 600,
                now: NOW + 631
            }
        );
        assert_eq!(err.code(), 31205);
        assert_eq!(err.to_signal_error().message, "JWT token expired");
    }

    #[test]
    fn not_yet_valid_is_31204() {
        assert!(check(FULL, NOW - 30).is_ok());
        let err = check(FULL, NOW - 31).unwrap_err();
        assert!(matches!(err, TokenError::NotYetValid { .. }));
        assert_eq!(err.code(), 31204);
    }

    #[test]
    fn lifetime_over_a_day_is_31207() {
        let err = check(TWO_DAYS, NOW).unwrap_err();
        assert_eq!(err, TokenError::LifetimeTooLong { secs: 2 * 86400 });
        assert_eq!(err.code(), 31207);
    }

    #[test]
    fn wrong_account_and_unknown_key_are_31204() {
        let err = verify(FULL, &keys, "AC00000000000000000000000000000002", NOW, 30).unwrap_err();
        assert_eq!(
            err,
            TokenError::WrongAccount {
                found: ACCOUNT.into()
            }
        );
        assert_eq!(err.code(), 31204);
        let err = verify(FULL, &|_: &str| None::<&str>, ACCOUNT, NOW, 30).unwrap_err();
        assert_eq!(err, TokenError::UnknownKey(KEY.into()));
        assert_eq!(err.code(), 31204);
    }

    #[test]
    fn missing_identity_is_31204() {
        let err = check(NO_IDENTITY, NOW).unwrap_err();
        assert_eq!(err, TokenError::MissingIdentity);
        assert_eq!(err.code(), 31204);
    }

    #[test]
    fn alg_none_is_refused() {
        // The FULL claims re-headed as an unsigned token, with and without a signature part.
        let payload = FULL.split('.').nth(1).unwrap();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            let err = check(&token, NOW).unwrap_err();
            assert!(
                matches!(err, TokenError::Algorithm(_) | TokenError::NotJwt),
                "{err:?}"
            );
            assert_eq!(err.code(), 31204);
        }
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS512","typ":"JWT"}"#);
        let sig = FULL.split('.').nth(2).unwrap();
        assert_eq!(
            check(&format!("{header}.{payload}.{sig}"), NOW).unwrap_err(),
            TokenError::Algorithm("HS512".into())
        );
    }

    #[test]
    fn malformed_tokens_never_panic() {
        for token in [
            "",
            ".",
            "..",
            "a.b.c.d",
            "!!!.!!!.!!!",
            "e30.e30.",
            "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.AAAA",
            "eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
        ] {
            let err = check(token, NOW).unwrap_err();
            assert_eq!(err.code(), 31204, "{token:?}: {err:?}");
        }
    }

    #[test]
    fn minted_tokens_verify_with_their_grants() {
        let voice = VoiceGrant {
            incoming_allow: true,
            outgoing: Some(OutgoingGrant {
                application_sid: "AP0123456789abcdef0123456789abcdef".into(),
                params: vec![("x".into(), "y".into())],
            }),
        };
        let (key, secret, account) = ("SK1", "s3cret", "AC1");
        let token = mint(key, secret, account, "dev", &voice, 1_000, 600);
        let keys = |sid: &str| (sid == key).then_some(secret);
        let ok = verify(&token, &keys, account, 1_100, 0).expect("verifies");
        assert_eq!(ok.identity, "dev");
        assert_eq!(ok.voice, voice);
        assert_eq!((ok.not_before, ok.expires_at), (Some(1_000), 1_600));
        let wrong = |_: &str| Some("other");
        assert_eq!(
            verify(&token, &wrong, account, 1_100, 0)
                .map(|_| ())
                .unwrap_err()
                .code(),
            31204
        );
        assert_eq!(
            verify(&token, &keys, account, 1_700, 0)
                .map(|_| ())
                .unwrap_err()
                .code(),
            31205
        );
    }
}
