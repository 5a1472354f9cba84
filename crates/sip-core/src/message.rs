//! SIP message parse and print.

use thiserror::Error;

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
    pub fn parse(token: &str) -> Method {
        todo!()
    }
    pub fn as_str(&self) -> &str {
        todo!()
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
        todo!()
    }
    /// All values of `name`, in order; comma-joined values (e.g. two Vias in one line) are split.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        todo!()
    }
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.fields.push((name.into(), value.into()));
    }
    /// Replaces every field called `name` by one field.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        todo!()
    }
    pub fn remove(&mut self, name: &str) {
        todo!()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
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
}

/// Parses one complete SIP message (a UDP datagram or one framed TCP message).
pub fn parse_message(bytes: &[u8]) -> Result<Message, ParseError> {
    todo!()
}

impl Request {
    /// Prints the request; Content-Length is (re)written from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        todo!()
    }
}

impl Response {
    /// Prints the response; Content-Length is (re)written from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        todo!()
    }
}

/// `"Display Name" <sip:user@host;params>;tag=x` or a bare URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display_name: Option<String>,
    /// The URI without angle brackets, e.g. `sip:+15551234@example.com`.
    pub uri: String,
    pub tag: Option<String>,
}

impl NameAddr {
    pub fn parse(value: &str) -> Result<NameAddr, ParseError> {
        todo!()
    }
    /// User part of the URI (`+15551234` in `sip:+15551234@host`), if any.
    pub fn user(&self) -> Option<&str> {
        uri_user(&self.uri)
    }
}

/// User part of a SIP URI.
pub fn uri_user(uri: &str) -> Option<&str> {
    todo!()
}

/// Host and port of a SIP URI (`sip:u@h:p;x` → (`h`, Some(p))).
pub fn uri_host_port(uri: &str) -> Option<(&str, Option<u16>)> {
    todo!()
}
