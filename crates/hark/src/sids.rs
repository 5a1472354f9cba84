//! Twilio-style identifiers: two-letter prefix + 32 lowercase hex digits from 128 random bits.
//! Calls, recordings and transcriptions have typed SIDs (`store::CallSid::new_random` …); this
//! mints the untyped ones, such as webhook idempotency keys (`ID…`).

pub fn new_sid(prefix: &str) -> String {
    let bits: u128 = rand::random();
    format!("{prefix}{bits:032x}")
}

/// RFC 2822 time as Twilio writes it: `Fri, 14 Oct 2016 21:56:34 +0000`.
pub fn rfc2822_now() -> String {
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

/// [`rfc2822_now`]'s format for Unix milliseconds.
pub fn rfc2822(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
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

    #[test]
    fn rfc2822_of_unix_ms() {
        assert_eq!(
            rfc2822(1_476_482_194_000),
            "Fri, 14 Oct 2016 21:56:34 +0000"
        );
    }

    #[test]
    fn rfc2822_shape() {
        let t = rfc2822_now();
        assert!(t.ends_with(" +0000"), "{t}");
        assert_eq!(t.len(), "Fri, 14 Oct 2016 21:56:34 +0000".len());
    }
}
