//! SIP message parse and print.

use std::fmt;

use thiserror::Error;

mod fields;
pub use fields::{header_tag, host_port, uri_host_port, uri_user, CSeq, NameAddr, Via};

/// Largest message we parse (the UDP datagram limit; RFC 3261 §18.1.1 leaves it to us).
pub const MAX_MESSAGE: usize = 65_535;

/// A SIP method. Unknown methods are a value, not an error (they get 405).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Info,
    Other(String),
}

impl Method {
    /// Methods are case-sensitive (RFC 3261 §7.1): `invite` is an unknown method.
    pub fn parse(token: &str) -> Method {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            other => Method::Other(other.to_string()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compact forms (RFC 3261 §7.3.3 and later RFCs' registrations).
const COMPACT: &[(&str, &str)] = &[
    ("v", "via"),
    ("f", "from"),
    ("t", "to"),
    ("i", "call-id"),
    ("m", "contact"),
    ("l", "content-length"),
    ("c", "content-type"),
    ("k", "supported"),
    ("s", "subject"),
    ("e", "content-encoding"),
    ("o", "event"),
    ("u", "allow-events"),
    ("r", "refer-to"),
    ("b", "referred-by"),
    ("x", "session-expires"),
    ("a", "accept-contact"),
    ("j", "reject-contact"),
    ("d", "request-disposition"),
    ("y", "identity"),
    ("n", "identity-info"),
];

/// The full lower-case name for a compact form, or `name` itself.
fn expand(name: &str) -> &str {
    if name.len() == 1 {
        for (short, long) in COMPACT {
            if name.eq_ignore_ascii_case(short) {
                return long;
            }
        }
    }
    name
}

fn same_header(a: &str, b: &str) -> bool {
    expand(a).eq_ignore_ascii_case(expand(b))
}

/// Headers whose values contain commas that do not separate list elements.
fn is_single_valued(name: &str) -> bool {
    const SINGLE: &[&str] = &[
        "date",
        "authorization",
        "proxy-authorization",
        "www-authenticate",
        "proxy-authenticate",
        "retry-after",
        "subject",
        "user-agent",
        "server",
        "organization",
    ];
    let full = expand(name);
    SINGLE.iter().any(|s| full.eq_ignore_ascii_case(s))
}

/// Splits a header value on commas outside quotes and angle brackets.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    let mut start = 0;
    for (i, ch) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match ch {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                push_trimmed(&mut out, &value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    push_trimmed(&mut out, &value[start..]);
    out
}

fn push_trimmed<'a>(out: &mut Vec<&'a str>, s: &'a str) {
    let s = s.trim();
    if !s.is_empty() {
        out.push(s);
    }
}

/// Header fields in wire order. Lookups are case-insensitive and understand compact forms
/// (`v`, `f`, `t`, `i`, `m`, `l`, `c`, `k`, `s`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<(String, String)>,
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }
    /// First value of `name` (full or compact form).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| same_header(n, name))
            .map(|(_, v)| v.as_str())
    }
    /// All values of `name`, in order; comma-joined values (e.g. two Vias in one line) are split.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        let single = is_single_valued(name);
        let mut out = Vec::new();
        for (n, v) in &self.fields {
            if same_header(n, name) {
                if single {
                    out.push(v.as_str());
                } else {
                    out.extend(split_list(v));
                }
            }
        }
        out
    }
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.fields.push((name.into(), value.into()));
    }
    /// Replaces every field called `name` by one field.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.fields.iter().position(|(n, _)| same_header(n, name)) {
            Some(i) => {
                if let Some(field) = self.fields.get_mut(i) {
                    field.1 = value;
                }
                let mut idx = 0;
                self.fields.retain(|(n, _)| {
                    let keep = idx <= i || !same_header(n, name);
                    idx += 1;
                    keep
                });
            }
            None => self.fields.push((name.to_string(), value)),
        }
    }
    pub fn remove(&mut self, name: &str) {
        self.fields.retain(|(n, _)| !same_header(n, name));
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
    pub fn len(&self) -> usize {
        self.fields.len()
    }
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// Why a message could not be parsed. Each variant names the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("message is not UTF-8 in its start line or headers")]
    NotUtf8,
    #[error("start line is malformed: {0:?}")]
    StartLine(String),
    #[error("header line is malformed: {0:?}")]
    HeaderLine(String),
    #[error("header {0} is missing")]
    MissingHeader(&'static str),
    #[error("header {name} is invalid: {value:?}")]
    InvalidHeader { name: &'static str, value: String },
    #[error("body is shorter than Content-Length ({declared} > {actual})")]
    Truncated { declared: usize, actual: usize },
    #[error("message is larger than {0} bytes")]
    TooLarge(usize),
    #[error("SIP version is not SIP/2.0: {0:?}")]
    Version(String),
    #[error("header section is not ended by an empty line")]
    Unterminated,
    #[error("header {0} appears more than once")]
    Repeated(&'static str),
}

impl ParseError {
    /// Short text for a 400 reason phrase, e.g. `Content-Length exceeds body`.
    pub fn reason_phrase(&self) -> String {
        match self {
            ParseError::NotUtf8 => "Header Not UTF-8".into(),
            ParseError::StartLine(_) => "Malformed Request-Line".into(),
            ParseError::HeaderLine(_) => "Malformed Header Line".into(),
            ParseError::MissingHeader(h) => format!("Missing {h}"),
            ParseError::InvalidHeader { name, .. } => format!("Invalid {name}"),
            ParseError::Truncated { .. } => "Content-Length exceeds body".into(),
            ParseError::TooLarge(_) => "Message Too Large".into(),
            ParseError::Version(_) => "Unsupported SIP Version".into(),
            ParseError::Unterminated => "Header Section Not Terminated".into(),
            ParseError::Repeated(h) => format!("Multiple {h}"),
        }
    }
}

/// The start line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StartLine {
    Request { method: Method, uri: String },
    Response { status: u16, reason: String },
}

/// A request start line that is wrong but names a method and a URI, so the request can be
/// answered (400, or 505 for another SIP version) instead of dropped.
fn salvage_request_line(line: &str) -> Option<StartLine> {
    let mut parts = line.split_ascii_whitespace();
    let method = parts.next()?;
    let uri = parts.next()?;
    (is_token(method) && !method.starts_with("SIP/")).then(|| StartLine::Request {
        method: Method::parse(method),
        uri: uri.to_string(),
    })
}

/// A message parsed as far as possible, with the first problem found.
#[derive(Debug)]
pub(crate) struct Lenient {
    pub message: Message,
    pub error: Option<ParseError>,
}

/// Parses one complete SIP message (a UDP datagram or one framed TCP message).
pub fn parse_message(bytes: &[u8]) -> Result<Message, ParseError> {
    let lenient = parse_lenient(bytes)?;
    match lenient.error {
        Some(e) => Err(e),
        None => Ok(lenient.message),
    }
}

/// Splits at the next LF; the line excludes CR LF / LF.
fn next_line(bytes: &[u8]) -> (&[u8], &[u8], bool) {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => {
            let (line, rest) = bytes.split_at(i);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            (line, rest.get(1..).unwrap_or(&[]), true)
        }
        None => (bytes, &[], false),
    }
}

/// A number written in digits only: RFC 3261's `1*DIGIT` (Rust's `parse` would take `+5`).
pub fn parse_digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// RFC 3261 §25.1 absoluteURI, as far as the start line needs: a scheme (ALPHA then ALPHA,
/// DIGIT, `+`, `-`, `.`), a colon, and a non-empty rest.
fn is_absolute_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    let bad = || ParseError::StartLine(line.chars().take(80).collect());
    if line.chars().any(char::is_control) {
        return Err(bad());
    }
    if let Some(rest) = line.strip_prefix("SIP/") {
        let mut it = rest.splitn(3, ' ');
        let version = it.next().unwrap_or("");
        if version != "2.0" {
            return Err(ParseError::Version(format!("SIP/{version}")));
        }
        let code = it.next().ok_or_else(bad)?;
        if code.len() != 3 {
            return Err(bad());
        }
        let status: u16 = code.parse().map_err(|_| bad())?;
        if !(100..=699).contains(&status) {
            return Err(bad());
        }
        let reason = it.next().unwrap_or("").to_string();
        return Ok(StartLine::Response { status, reason });
    }
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts.as_slice() else {
        return Err(bad());
    };
    if !is_token(method) || !is_absolute_uri(uri) {
        return Err(bad());
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(ParseError::Version(version.chars().take(20).collect()));
    }
    Ok(StartLine::Request {
        method: Method::parse(method),
        uri: uri.to_string(),
    })
}

/// Parses the start line strictly and everything else as far as it goes, so a request with a
/// broken header or body can still be answered with 400 naming the problem.
pub(crate) fn parse_lenient(bytes: &[u8]) -> Result<Lenient, ParseError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(ParseError::TooLarge(MAX_MESSAGE));
    }
    let mut rest = bytes;
    // RFC 3261 §7.5: ignore CRLFs before the start line.
    while let Some(r) = rest
        .strip_prefix(b"\r\n")
        .or_else(|| rest.strip_prefix(b"\n"))
    {
        rest = r;
    }
    let (line, after, _) = next_line(rest);
    rest = after;
    let line = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
    let mut error: Option<ParseError> = None;
    fn note(e: ParseError, error: &mut Option<ParseError>) {
        if error.is_none() {
            *error = Some(e);
        }
    }
    let start = match parse_start_line(line) {
        Ok(start) => start,
        // A request with a broken start line is answered 400 (505 for a version) if its
        // headers let us; responses and garbage are dropped.
        Err(e) => match salvage_request_line(line) {
            Some(start) => {
                note(e, &mut error);
                start
            }
            None => return Err(e),
        },
    };
    let mut headers = Headers::new();
    let mut terminated = false;
    while !rest.is_empty() {
        let (raw, after, had_lf) = next_line(rest);
        rest = after;
        if raw.is_empty() && had_lf {
            terminated = true;
            break;
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            note(ParseError::NotUtf8, &mut error);
            continue;
        };
        if text.starts_with([' ', '\t']) {
            // Folded continuation of the previous header (RFC 3261 §7.3.1).
            match headers.fields.last_mut() {
                Some((_, v)) => {
                    let more = text.trim();
                    if !more.is_empty() {
                        if !v.is_empty() {
                            v.push(' ');
                        }
                        v.push_str(more);
                    }
                }
                None => note(ParseError::HeaderLine(clip(text)), &mut error),
            }
            continue;
        }
        match text.split_once(':') {
            Some((name, value)) if is_token(name.trim_end_matches([' ', '\t'])) => {
                let name = name.trim_end_matches([' ', '\t']);
                headers.push(name, value.trim());
            }
            _ => note(ParseError::HeaderLine(clip(text)), &mut error),
        }
    }
    if !terminated {
        note(ParseError::Unterminated, &mut error);
    }
    // Control characters are judged on the whole (unfolded) value: a quote opened on one line
    // of a folded header is still open on the next.
    // A header with bare control characters is left out, so no answer ever echoes one.
    headers.fields.retain(|(name, value)| {
        let clean = controls_are_quoted_pairs(value);
        if !clean {
            note(
                ParseError::HeaderLine(clip(&format!("{name}: {value}"))),
                &mut error,
            );
        }
        clean
    });
    for (name, shown) in SINGLE_INSTANCE {
        if headers
            .fields
            .iter()
            .filter(|(n, _)| same_header(n, name))
            .count()
            > 1
        {
            note(ParseError::Repeated(shown), &mut error);
        }
    }

    let mut body: &[u8] = rest;
    if let Some(cl) = headers.get("content-length") {
        match parse_digits::<usize>(cl) {
            Some(declared) if declared <= MAX_MESSAGE => {
                if declared > body.len() {
                    note(
                        ParseError::Truncated {
                            declared,
                            actual: body.len(),
                        },
                        &mut error,
                    );
                } else {
                    // Bytes after the declared body are ignored (UDP, §18.3).
                    body = body.get(..declared).unwrap_or(body);
                }
            }
            _ => note(
                ParseError::InvalidHeader {
                    name: "Content-Length",
                    value: clip(cl),
                },
                &mut error,
            ),
        }
    }
    let body = body.to_vec();
    let message = match start {
        StartLine::Request { method, uri } => Message::Request(Request {
            method,
            uri,
            headers,
            body,
        }),
        StartLine::Response { status, reason } => Message::Response(Response {
            status,
            reason,
            headers,
            body,
        }),
    };
    Ok(Lenient { message, error })
}

/// Control characters (other than HTAB) may appear in a header line only as a quoted-pair
/// inside a quoted string (RFC 3261 §25.1: `"\" (%x00-09 / %x0B-0C / %x0E-7F)`), as RFC 4475's
/// `intmeth` has them.
fn controls_are_quoted_pairs(line: &str) -> bool {
    let (mut quoted, mut escaped) = (false, false);
    for c in line.chars() {
        if escaped {
            escaped = false;
            if c == '\r' || c == '\n' {
                return false;
            }
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '\t' => {}
            c if c.is_control() => return false,
            _ => {}
        }
    }
    true
}

/// Headers that carry one value: a second instance makes the request ambiguous (RFC 4475
/// `multi01`, `mcl01`).
const SINGLE_INSTANCE: [(&str, &str); 7] = [
    ("call-id", "Call-ID"),
    ("cseq", "CSeq"),
    ("from", "From"),
    ("to", "To"),
    ("max-forwards", "Max-Forwards"),
    ("content-length", "Content-Length"),
    ("content-type", "Content-Type"),
];

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

fn print(start: &str, headers: &Headers, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(start.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut wrote_length = false;
    for (name, value) in headers.iter() {
        let length = same_header(name, "content-length");
        if length && wrote_length {
            // One Content-Length, from the body; a second would contradict it.
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        if length {
            wrote_length = true;
            out.extend_from_slice(body.len().to_string().as_bytes());
        } else {
            out.extend_from_slice(value.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    if !wrote_length {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

impl Request {
    pub fn new(method: Method, uri: impl Into<String>) -> Self {
        Request {
            method,
            uri: uri.into(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }
    /// Prints the request; Content-Length is (re)written from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        print(
            &format!("{} {} SIP/2.0", self.method, self.uri),
            &self.headers,
            &self.body,
        )
    }
}

impl Response {
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Response {
            status,
            reason: reason.into(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }
    /// Prints the response; Content-Length is (re)written from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        print(
            &format!("SIP/2.0 {} {}", self.status, self.reason),
            &self.headers,
            &self.body,
        )
    }
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

/// The usual reason phrase for a status code (RFC 3261 §21).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match status / 100 {
            1 => "Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

#[cfg(test)]
mod tests;
