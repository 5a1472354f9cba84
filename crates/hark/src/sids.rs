//! Twilio-style identifiers: two-letter prefix + 32 lowercase hex digits from 128 random bits.
//! Calls, recordings and transcriptions have typed SIDs (`store::CallSid::new_random` …); this
//! mints the untyped ones, such as webhook idempotency keys (`ID…`).
//! (RFC 2822 times for webhooks: `call_core::params::rfc2822`.)

pub fn new_sid(prefix: &str) -> String {
    let bits: u128 = rand::random();
    format!("{prefix}{bits:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sid_is_prefix_and_32_lowercase_hex() {
        let sid = new_sid("RE");
        assert_eq!(sid.len(), 34);
        assert!(sid.starts_with("RE"));
        assert!(sid[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(new_sid("RE"), sid);
    }
}
