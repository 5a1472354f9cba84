//! `X-Twilio-Signature` (SPEC §5) and the form encoding it signs.

/// Base64(HMAC-SHA1(auth_token, url + sorted name+value pairs)). For GET pass no params (they
/// are in the URL already). Identical pairs count once.
pub fn compute_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    todo!()
}

/// `application/x-www-form-urlencoded` with spaces as `+`.
pub fn form_encode(params: &[(String, String)]) -> String {
    todo!()
}

/// `url` with `params` appended to its query string (for GET requests).
pub fn url_with_query(url: &str, params: &[(String, String)]) -> String {
    todo!()
}
