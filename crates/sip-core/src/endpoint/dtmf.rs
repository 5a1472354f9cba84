//! DTMF carried in SIP INFO bodies (`application/dtmf-relay`, `application/dtmf`).

/// Used when the body gives no duration.
pub const DEFAULT_DURATION_MS: u32 = 250;

/// A key from `5`, `#`, `a`, or an RFC 4733 event code `0`-`15` (`10` = `*`, `11` = `#`).
fn key(value: &str) -> Option<char> {
    let v = value.trim();
    if let Ok(code) = v.parse::<u8>() {
        return match code {
            0..=9 => char::from_digit(u32::from(code), 10),
            10 => Some('*'),
            11 => Some('#'),
            12..=15 => Some(char::from(b'A' + (code - 12))),
            _ => None,
        };
    }
    let mut chars = v.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => {
            let c = c.to_ascii_uppercase();
            matches!(c, '0'..='9' | '*' | '#' | 'A'..='D').then_some(c)
        }
        _ => None,
    }
}

/// `Signal=#\r\nDuration=160\r\n` (keys case-insensitive, spaces tolerated).
pub fn parse_dtmf_relay(body: &[u8]) -> Option<(char, u32)> {
    let text = std::str::from_utf8(body).ok()?;
    let mut digit = None;
    let mut duration = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "signal" => digit = key(v),
            "duration" => duration = v.trim().parse::<u32>().ok(),
            _ => {}
        }
    }
    Some((digit?, duration.unwrap_or(DEFAULT_DURATION_MS)))
}

/// `application/dtmf`: the body is the key itself.
pub fn parse_dtmf(body: &[u8]) -> Option<(char, u32)> {
    let text = std::str::from_utf8(body).ok()?;
    Some((key(text)?, DEFAULT_DURATION_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipp_and_linphone_relay_bodies() {
        assert_eq!(
            parse_dtmf_relay(b"Signal=#\r\nDuration=160\r\n"),
            Some(('#', 160))
        );
        assert_eq!(
            parse_dtmf_relay(b"Signal=1\r\nDuration=250"),
            Some(('1', 250))
        );
        assert_eq!(parse_dtmf_relay(b"signal= 5\r\n"), Some(('5', 250)));
        assert_eq!(
            parse_dtmf_relay(b"Signal=11\nDuration=100\n"),
            Some(('#', 100))
        );
        assert_eq!(parse_dtmf_relay(b"Signal=d\r\n"), Some(('D', 250)));
    }

    #[test]
    fn bad_relay_bodies_give_nothing() {
        assert_eq!(parse_dtmf_relay(b"Duration=160\r\n"), None);
        assert_eq!(parse_dtmf_relay(b"Signal=X\r\n"), None);
        assert_eq!(parse_dtmf_relay(b"Signal=16\r\n"), None);
        assert_eq!(parse_dtmf_relay(b"\xff"), None);
    }

    #[test]
    fn plain_dtmf_bodies() {
        assert_eq!(parse_dtmf(b"#"), Some(('#', 250)));
        assert_eq!(parse_dtmf(b" 5\r\n"), Some(('5', 250)));
        assert_eq!(parse_dtmf(b"10"), Some(('*', 250)));
        assert_eq!(parse_dtmf(b"12"), Some(('A', 250)));
        assert_eq!(parse_dtmf(b"55"), None);
        assert_eq!(parse_dtmf(b""), None);
    }
}
