//! HTTP Basic `AccountSid:AuthToken` (SPEC §6.1), compared in constant time.

use axum::http::{header, HeaderMap};
use base64::Engine;

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

/// Whether the request carries exactly the configured credentials.
pub fn authenticated(headers: &HeaderMap, account_sid: &str, auth_token: &str) -> bool {
    match basic_credentials(headers) {
        // `&` not `&&`: both comparisons always run.
        Some((user, pass)) => {
            constant_time_eq(user.as_bytes(), account_sid.as_bytes())
                & constant_time_eq(pass.as_bytes(), auth_token.as_bytes())
        }
        None => false,
    }
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
        assert!(authenticated(
            &with_auth(&basic("AC1", "tok")),
            "AC1",
            "tok"
        ));
        assert!(!authenticated(
            &with_auth(&basic("AC1", "tok2")),
            "AC1",
            "tok"
        ));
        assert!(!authenticated(
            &with_auth(&basic("AC2", "tok")),
            "AC1",
            "tok"
        ));
        assert!(!authenticated(&with_auth(&basic("", "")), "AC1", "tok"));
        assert!(!authenticated(&HeaderMap::new(), "AC1", "tok"));
    }
}
