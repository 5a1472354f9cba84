//! `X-Twilio-Signature` (SPEC §5) and the form encoding it signs.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

fn hmac_sha1_base64(auth_token: &str, message: &[u8]) -> String {
    // HMAC accepts keys of any length, so this never fails.
    match Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) {
        Ok(mut mac) => {
            mac.update(message);
            STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Base64(HMAC-SHA1(auth_token, url + sorted name+value pairs)). For GET pass no params (they
/// are in the URL already). Identical pairs count once.
///
/// Matches twilio-python's `RequestValidator.compute_signature`: names in ascending order, the
/// values of one name in ascending order, duplicates (`set`) dropped. Rust's `str` ordering is
/// byte order, which for UTF-8 equals Python's code-point order.
pub fn compute_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut message = String::with_capacity(
        url.len() + params.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>(),
    );
    message.push_str(url);
    for (name, value) in pairs {
        message.push_str(name);
        message.push_str(value);
    }
    hmac_sha1_base64(auth_token, message.as_bytes())
}

/// Signs a JSON-body request (SPEC §5 step 4): returns the URL with
/// `bodySHA256=<hex SHA-256 of body>` appended — the URL to request — and the signature of
/// that URL alone.
pub fn compute_json_signature(auth_token: &str, url: &str, body: &[u8]) -> (String, String) {
    let digest = Sha256::digest(body);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let signed_url = url_with_query(url, &[("bodySHA256".to_string(), hex)]);
    let signature = compute_signature(auth_token, &signed_url, &[]);
    (signed_url, signature)
}

/// `application/x-www-form-urlencoded` with spaces as `+`.
pub fn form_encode(params: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// `url` with `params` appended to its query string (for GET requests). The `#fragment` (our
/// connection overrides) is dropped: it is never sent or signed.
pub fn url_with_query(url: &str, params: &[(String, String)]) -> String {
    let base = crate::urls::strip_fragment(url);
    if params.is_empty() {
        return base.to_string();
    }
    let separator = match base.find('?') {
        None => "?",
        Some(_) if base.ends_with('?') || base.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{base}{separator}{}", form_encode(params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const EXAMPLE_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn example_params(phone: &str) -> Vec<(String, String)> {
        p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", phone),
            ("Digits", "1234"),
            ("From", phone),
            ("To", "+18005551212"),
        ])
    }

    #[test]
    fn twilio_docs_example_signature() {
        // twilio.com/docs/usage/security worked example (caller +12349013030).
        assert_eq!(
            compute_signature("12345", EXAMPLE_URL, &example_params("+12349013030")),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    #[test]
    fn twilio_helper_library_vector() {
        // twilio-php / twilio-csharp RequestValidatorTest (caller +14158675309).
        assert_eq!(
            compute_signature("12345", EXAMPLE_URL, &example_params("+14158675309")),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    #[test]
    fn param_order_does_not_matter() {
        let mut params = example_params("+14158675309");
        params.reverse();
        assert_eq!(
            compute_signature("12345", EXAMPLE_URL, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    #[test]
    fn repeated_names_sort_values_and_drop_duplicates_like_twilio() {
        // twilio-php testValidateWithArrayAndDuplicates.
        let params = p(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            compute_signature("12345", EXAMPLE_URL, &params),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }

    #[test]
    fn signed_string_is_url_then_sorted_names_and_values() {
        // Repeated name: values sorted; identical pair counted once; empty value still signed.
        let params = p(&[
            ("b", "2"),
            ("a", "z"),
            ("b", "1"),
            ("a", "z"),
            ("e", ""),
            ("a", "y"),
        ]);
        assert_eq!(
            compute_signature("tok", "https://h/x", &params),
            hmac_sha1_base64("tok", b"https://h/xayazb1b2e")
        );
    }

    #[test]
    fn empty_value_changes_the_signature() {
        let with_empty = compute_signature(
            "tok",
            "https://h/x",
            &p(&[("A", "1"), ("ForwardedFrom", "")]),
        );
        let without = compute_signature("tok", "https://h/x", &p(&[("A", "1")]));
        assert_ne!(with_empty, without);
        assert_eq!(
            with_empty,
            hmac_sha1_base64("tok", b"https://h/xA1ForwardedFrom")
        );
    }

    #[test]
    fn unicode_sorts_by_code_point_and_signs_utf8() {
        // 'Z' (U+005A) < 'a' (U+0061) < 'é' (U+00E9) < '日' (U+65E5).
        let params = p(&[("日", "本"), ("é", "ü"), ("a", "1"), ("Z", "2")]);
        let msg = "https://h/xZ2a1éü日本";
        assert_eq!(
            compute_signature("tök", "https://h/x", &params),
            hmac_sha1_base64("tök", msg.as_bytes())
        );
    }

    #[test]
    fn get_signs_the_url_with_query_only() {
        let url = url_with_query(
            "https://h/x#rc=2",
            &p(&[("CallSid", "CA1"), ("From", "+1 2")]),
        );
        assert_eq!(url, "https://h/x?CallSid=CA1&From=%2B1+2");
        assert_eq!(
            compute_signature("tok", &url, &[]),
            hmac_sha1_base64("tok", url.as_bytes())
        );
    }

    #[test]
    fn json_signature_matches_twilio_helper_vector() {
        // twilio-php testValidateWithBody.
        let (url, sig) = compute_json_signature(
            "12345",
            EXAMPLE_URL,
            br#"{"property": "value", "boolean": true}"#,
        );
        assert_eq!(
            url,
            "https://mycompany.com/myapp.php?foo=1&bar=2\
             &bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        assert_eq!(sig, "a9nBmqA0ju/hNViExpshrM61xv4=");
    }

    #[test]
    fn json_signature_appends_body_sha256() {
        let (url, sig) = compute_json_signature("tok", "https://h/x?a=1#ct=100", b"{}");
        assert_eq!(url, "https://h/x?a=1&bodySHA256=44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        assert_eq!(sig, hmac_sha1_base64("tok", url.as_bytes()));
        let (url, _) = compute_json_signature("tok", "https://h/x", b"");
        assert_eq!(url, "https://h/x?bodySHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn form_encode_uses_plus_for_space_and_percent_escapes() {
        let body = form_encode(&p(&[
            ("From", "+1 415"),
            ("Name", "Zoë & co"),
            ("Empty", ""),
        ]));
        assert_eq!(body, "From=%2B1+415&Name=Zo%C3%AB+%26+co&Empty=");
    }

    #[test]
    fn url_with_query_picks_the_separator() {
        let q = p(&[("a", "1")]);
        assert_eq!(url_with_query("https://h/x?y=2", &q), "https://h/x?y=2&a=1");
        assert_eq!(url_with_query("https://h/x?", &q), "https://h/x?a=1");
        assert_eq!(
            url_with_query("https://h/x?y=2&", &q),
            "https://h/x?y=2&a=1"
        );
        assert_eq!(url_with_query("https://h/x#f", &[]), "https://h/x");
    }
}
