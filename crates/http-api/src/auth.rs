//! HTTP Basic `AccountSid:AuthToken` (SPEC §6.1), or `ApiKeySid:secret` of a configured API key
//! as Twilio accepts it, compared in constant time.

use axum::http::{header, HeaderMap};
use base64::Engine;

/// An API key (`[[api_key]]`): REST Basic auth as `SK…:secret` for the configured account, and
/// (later) the key that signs access tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub sid: store::ApiKeySid,
    pub secret: String,
}

// Hand-written so that logging a config never prints a secret.
impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("sid", &self.sid)
            .field("secret", &"…")
            .finish()
    }
}

/// Equality whose running time depends only on the lengths, not on where the bytes differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    // A length mismatch must not end the loop early either.
    let mut diff: u8 = u8::from(a.len() != b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// `(user, password)` of an `Authorization: Basic …` header, if there is a well-formed one.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// Whether the request carries exactly the configured credentials: the account's
/// `AccountSid:AuthToken`, or `ApiKeySid:secret` of one of `api_keys` (which all belong to that
/// account).
pub fn authenticated(
    headers: &HeaderMap,
    account_sid: &str,
    auth_token: &str,
    api_keys: &[ApiKey],
) -> bool {
    let Some((user, pass)) = basic_credentials(headers) else {
        return false;
    };
    credentials_match(&user, &pass, account_sid, auth_token, api_keys)
}

/// Whether `user:pass` is `AccountSid:AuthToken` or `ApiKeySid:secret` of one of `api_keys`
/// (Basic auth, and the console's sign-in).
pub fn credentials_match(
    user: &str,
    pass: &str,
    account_sid: &str,
    auth_token: &str,
    api_keys: &[ApiKey],
) -> bool {
    // `&` and `|` not `&&` and `||`: every comparison always runs, so the time taken says
    // nothing about which part (or which key) was wrong.
    // An empty token or secret never matches, even an empty password.
    let mut ok = constant_time_eq(user.as_bytes(), account_sid.as_bytes())
        & constant_time_eq(pass.as_bytes(), auth_token.as_bytes())
        & !auth_token.is_empty();
    for key in api_keys {
        ok |= constant_time_eq(user.as_bytes(), key.sid.as_str().as_bytes())
            & constant_time_eq(pass.as_bytes(), key.secret.as_bytes())
            & !key.secret.is_empty();
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    fn basic(user: &str, pass: &str) -> String {
        let raw = format!("{user}:{pass}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    #[test]
    fn constant_time_eq_matches_slice_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret1"));
        assert!(!constant_time_eq(b"secret1", b"secret"));
        // A prefix padded with NULs is still different.
        assert!(!constant_time_eq(b"ab", b"ab\0"));
        assert!(!constant_time_eq(b"", b"\0"));
    }

    #[test]
    fn basic_header_decodes_user_and_password_with_colons_in_password() {
        let h = with_auth(&basic("AC1", "to:ken"));
        assert_eq!(
            basic_credentials(&h),
            Some(("AC1".to_string(), "to:ken".to_string()))
        );
        // Scheme is case-insensitive (RFC 7235 §2.1).
        let h = with_auth(&basic("AC1", "t").replace("Basic", "bAsIc"));
        assert_eq!(
            basic_credentials(&h),
            Some(("AC1".to_string(), "t".to_string()))
        );
    }

    #[test]
    fn malformed_or_other_scheme_is_no_credentials() {
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
        assert_eq!(basic_credentials(&with_auth("Bearer abc")), None);
        assert_eq!(basic_credentials(&with_auth("Basic !!!")), None);
        // Valid base64 but no colon.
        assert_eq!(basic_credentials(&with_auth("Basic QUMx")), None);
        assert_eq!(basic_credentials(&with_auth("Basic")), None);
    }

    #[test]
    fn only_the_exact_account_and_token_authenticate() {
        let ok = |user: &str, pass: &str| {
            authenticated(&with_auth(&basic(user, pass)), "AC1", "tok", &[])
        };
        assert!(ok("AC1", "tok"));
        assert!(!ok("AC1", "tok2"));
        assert!(!ok("AC2", "tok"));
        assert!(!ok("", ""));
        assert!(!authenticated(&HeaderMap::new(), "AC1", "tok", &[]));
    }

    fn key(n: u128, secret: &str) -> ApiKey {
        ApiKey {
            sid: store::ApiKeySid::from_bits(n),
            secret: secret.into(),
        }
    }

    #[test]
    fn an_api_key_sid_with_its_own_secret_authenticates() {
        let keys = [key(0xa1, "s1"), key(0xa2, "s2")];
        let sid = |n: u128| store::ApiKeySid::from_bits(n).into_string();
        let ok = |user: &str, pass: &str| {
            authenticated(&with_auth(&basic(user, pass)), "AC1", "tok", &keys)
        };
        assert!(ok(&sid(0xa1), "s1"));
        assert!(ok(&sid(0xa2), "s2"));
        // The account's own credentials still work beside the keys.
        assert!(ok("AC1", "tok"));
        // A key's secret belongs to that key only, and is no auth token.
        assert!(!ok(&sid(0xa1), "s2"));
        assert!(!ok(&sid(0xa2), "s1"));
        assert!(!ok(&sid(0xa1), "tok"));
        assert!(!ok("AC1", "s1"));
        // An unconfigured key, a prefix of a secret, an empty secret.
        assert!(!ok(&sid(0xa3), "s1"));
        assert!(!ok(&sid(0xa1), "s"));
        assert!(!ok(&sid(0xa1), ""));
        // SIDs compare exactly: the key SID in upper case is another user name.
        assert!(!ok(&sid(0xa1).to_ascii_uppercase(), "s1"));
    }

    #[test]
    fn api_key_debug_hides_the_secret() {
        let text = format!("{:?}", key(1, "very-secret"));
        assert!(text.contains("SK"), "{text}");
        assert!(!text.contains("very-secret"), "{text}");
    }
}
