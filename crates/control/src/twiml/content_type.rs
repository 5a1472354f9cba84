//! What to do with a fetched answer, by its `Content-Type` (SPEC §2.1).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    /// `text/xml`, `application/xml`, `text/html`: parse as TwiML.
    Twiml,
    /// `audio/*`: play it, then hang up.
    Audio,
    /// `text/plain`: say it, then hang up.
    Text,
    /// Anything else, including a missing header: error 12300.
    Unsupported,
}

/// Classifies a `Content-Type` header value. Case-insensitive; parameters (`; charset=…`) are
/// ignored. A missing header (`""`) is `Unsupported`: sniffing the body would accept answers
/// Twilio refuses.
pub fn classify_content_type(header: &str) -> ContentKind {
    let essence = header.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return ContentKind::Unsupported;
    };
    let (kind, subtype) = (kind.trim(), subtype.trim());
    let is = |k: &str, s: &str| kind.eq_ignore_ascii_case(k) && subtype.eq_ignore_ascii_case(s);
    if is("text", "xml") || is("application", "xml") || is("text", "html") {
        ContentKind::Twiml
    } else if is("text", "plain") {
        ContentKind::Text
    } else if kind.eq_ignore_ascii_case("audio")
        && !subtype.is_empty()
        && !subtype.contains(char::is_whitespace)
    {
        ContentKind::Audio
    } else {
        ContentKind::Unsupported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_table_spec_2_1() {
        let table = [
            ("text/xml", ContentKind::Twiml),
            ("application/xml", ContentKind::Twiml),
            ("text/html", ContentKind::Twiml),
            ("text/xml; charset=utf-8", ContentKind::Twiml),
            ("Application/XML;charset=\"UTF-8\"", ContentKind::Twiml),
            (" TEXT/HTML ", ContentKind::Twiml),
            ("audio/mpeg", ContentKind::Audio),
            ("audio/wav", ContentKind::Audio),
            ("audio/x-wav; rate=8000", ContentKind::Audio),
            ("Audio/Basic", ContentKind::Audio),
            ("text/plain", ContentKind::Text),
            ("text/plain; charset=iso-8859-1", ContentKind::Text),
            ("", ContentKind::Unsupported),
            ("application/json", ContentKind::Unsupported),
            ("application/octet-stream", ContentKind::Unsupported),
            ("text/xmlx", ContentKind::Unsupported),
            ("application/xhtml+xml", ContentKind::Unsupported),
            ("audio/", ContentKind::Unsupported),
            ("audio", ContentKind::Unsupported),
            ("xml", ContentKind::Unsupported),
            ("; charset=utf-8", ContentKind::Unsupported),
        ];
        for (header, kind) in table {
            assert_eq!(classify_content_type(header), kind, "{header:?}");
        }
    }
}
