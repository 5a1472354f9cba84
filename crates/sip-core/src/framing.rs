//! SIP over TCP: split a byte stream into messages by Content-Length (RFC 3261 §18.3).

use thiserror::Error;

/// Largest message accepted on a stream.
pub const MAX_MESSAGE: usize = 65_535;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FramingError {
    #[error("message exceeds {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("Content-Length is missing or invalid on a stream transport")]
    BadContentLength,
}

/// Accumulates stream bytes; yields whole messages. CRLF keep-alives (RFC 5626) are skipped.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
}

impl StreamFramer {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
    /// The next complete message, `Ok(None)` while incomplete. After an error the stream
    /// cannot be resynchronised and should be closed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        // Keep-alive CRLFs (and stray LFs) between messages carry nothing.
        let skip = self
            .buf
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        if skip > 0 {
            self.buf.drain(..skip);
        }
        let Some((head_end, body_start)) = header_end(&self.buf) else {
            if self.buf.len() > MAX_MESSAGE {
                return Err(FramingError::TooLarge);
            }
            return Ok(None);
        };
        let head = self.buf.get(..head_end).unwrap_or(&[]);
        let length = content_length(head).ok_or(FramingError::BadContentLength)?;
        let total = body_start
            .checked_add(length)
            .ok_or(FramingError::TooLarge)?;
        if total > MAX_MESSAGE {
            return Err(FramingError::TooLarge);
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let message: Vec<u8> = self.buf.drain(..total).collect();
        Ok(Some(message))
    }
    /// Bytes held that do not yet make a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// Where the header section ends and the body starts: at the first empty line, with lines
/// split at LF and an optional CR before it — exactly where the parser ends it
/// (`message::parse_lenient`), so framing and parsing never disagree on the body.
fn header_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut start = 0;
    while let Some(lf) = buf.get(start..)?.iter().position(|&b| b == b'\n') {
        let end = start + lf;
        let line = buf.get(start..end)?;
        if line.is_empty() || line == b"\r" {
            return Some((start, end + 1));
        }
        start = end + 1;
    }
    None
}

/// The Content-Length (or compact `l`) of a header block; `None` if missing, repeated with
/// different values, or not a number. Headers are read as the parser reads them: a line that
/// starts with SP or HTAB continues the header before it (RFC 3261 §7.3.1), so ` l: 0` there is
/// not a Content-Length, and `Content-Length:` folded onto the next line is one.
fn content_length(head: &[u8]) -> Option<usize> {
    let mut found: Option<usize> = None;
    let mut check = |header: &[u8]| -> Option<()> {
        let Some(colon) = header.iter().position(|&b| b == b':') else {
            return Some(());
        };
        let (name, value) = header.split_at(colon);
        let name = name.trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let value = std::str::from_utf8(value.get(1..)?).ok()?.trim();
            let n: usize = crate::message::parse_digits(value)?;
            if found.is_some_and(|f| f != n) {
                return None;
            }
            found = Some(n);
        }
        Some(())
    };
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    // The start line is no header.
    lines.next();
    let mut header: Vec<u8> = Vec::new();
    for line in lines {
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            header.push(b' ');
            header.extend_from_slice(line.trim_ascii_start());
            continue;
        }
        check(&header)?;
        header.clear();
        header.extend_from_slice(line);
    }
    check(&header)?;
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const BYE: &[u8] = b"BYE sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 4\r\n\r\nbody";

    #[test]
    fn incomplete_is_none_until_body_arrives() {
        let mut f = StreamFramer::new();
        for (i, b) in BYE.iter().enumerate() {
            assert_eq!(f.next_message(), Ok(None), "after {i} bytes");
            f.push(&[*b]);
        }
        assert_eq!(f.next_message(), Ok(Some(BYE.to_vec())));
        assert_eq!(f.next_message(), Ok(None));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn two_messages_in_one_read_with_keepalives_between() {
        let mut f = StreamFramer::new();
        let short = b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n";
        f.push(b"\r\n\r\n");
        f.push(BYE);
        f.push(b"\r\n\r\n");
        f.push(short);
        f.push(b"INV");
        assert_eq!(f.next_message(), Ok(Some(BYE.to_vec())));
        assert_eq!(f.next_message(), Ok(Some(short.to_vec())));
        assert_eq!(f.next_message(), Ok(None));
        assert_eq!(f.buffered(), 3);
    }

    #[test]
    fn missing_or_bad_content_length_is_an_error() {
        for head in [
            &b"BYE sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n"[..],
            b"BYE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n",
            b"BYE sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n",
        ] {
            let mut f = StreamFramer::new();
            f.push(head);
            assert_eq!(f.next_message(), Err(FramingError::BadContentLength));
        }
    }

    #[test]
    fn oversize_is_an_error() {
        let mut f = StreamFramer::new();
        f.push(b"BYE sip:a@b SIP/2.0\r\nContent-Length: 65535\r\n\r\n");
        assert_eq!(f.next_message(), Err(FramingError::TooLarge));
        let mut g = StreamFramer::new();
        g.push(&vec![b'a'; MAX_MESSAGE + 1]);
        assert_eq!(g.next_message(), Err(FramingError::TooLarge));
    }

    /// cargo-fuzz `sip_framer` found the framer ending the header section later than the
    /// parser (only at CRLFCRLF): a bare-LF empty line ends it for both.
    #[test]
    fn folded_lines_belong_to_the_header_before_them() {
        // ` l:0` continues CSeq (the parser's reading): no Content-Length on a stream.
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 8 OPTIONS\r\n l:0\r\n\r\n");
        assert!(matches!(
            f.next_message(),
            Err(FramingError::BadContentLength)
        ));
        // A Content-Length whose value is folded onto the next line is one.
        let msg = b"BYE sip:a@b SIP/2.0\r\nContent-Length:\r\n  4\r\n\r\nbody";
        let mut f = StreamFramer::new();
        f.push(msg);
        assert_eq!(f.next_message().unwrap(), Some(msg.to_vec()));
    }

    #[test]
    fn a_bare_lf_empty_line_ends_the_headers_as_the_parser_says() {
        let msg = b"INVITE sip:a@b SIP/2.0\r\nX: y\n\r\nContent-Length: 4\r\n\r\nbody";
        let mut f = StreamFramer::new();
        f.push(msg);
        let framed = f.next_message();
        // No Content-Length before the empty line: on a stream that is unframeable.
        assert_eq!(framed, Err(FramingError::BadContentLength));
        let lf_only = b"OPTIONS sip:a@b SIP/2.0\nl: 2\n\nokMORE";
        let mut f = StreamFramer::new();
        f.push(lf_only);
        let one = f.next_message().expect("framed").expect("whole");
        assert_eq!(one, b"OPTIONS sip:a@b SIP/2.0\nl: 2\n\nok".to_vec());
        let parsed = crate::message::parse_message(&one).expect("parses");
        match parsed {
            crate::message::Message::Request(r) => assert_eq!(r.body, b"ok".to_vec()),
            other => panic!("{other:?}"),
        }
        assert_eq!(f.buffered(), 4);
    }
}
